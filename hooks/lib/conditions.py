# Copyright 2026 Flant JSC
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""Condition bookkeeping for the registry-state conditions list."""

from __future__ import annotations

TYPES = (
    "RegistryContainsRequiredImages",
    "ContainerdConfigPreflightReady",
    "NodeServicesReady",
    "InClusterProxyReady",
    "TransitionContainerdConfigReady",
    "DeckhouseRegistrySwitchReady",
    "FinalContainerdConfigReady",
    "CleanupNodeServices",
    "CleanupInClusterProxy",
    "ErrTransitionNotSupported",
    "Ready",
)

REASON_READY = "Ready"
REASON_PROCESSING = "Processing"
REASON_ERROR = "Error"
REASON_INVALID = "InvalidConfiguration"


def find(conditions: list[dict], type_: str) -> dict | None:
    for condition in conditions:
        if condition.get("type") == type_:
            return condition
    return None


def set_condition(
    conditions: list[dict],
    type_: str,
    status: bool,
    reason: str = "",
    message: str = "",
    generation: int | None = None,
    now: str = "",
) -> list[dict]:
    """Return a new canonical list with one condition set.

    lastTransitionTime moves only when the status flips, so the age a user sees is the age of the
    state, not of the last message update. Unknown types are dropped on every write.
    """
    if type_ not in TYPES:
        raise ValueError(f"unknown condition type {type_!r}")
    wanted_status = "True" if status else "False"
    previous = find(conditions, type_)
    if previous is not None and previous.get("status") == wanted_status and previous.get("lastTransitionTime"):
        transition = previous["lastTransitionTime"]
    else:
        transition = now
    updated = {
        "type": type_,
        "status": wanted_status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    if generation is not None:
        updated["observedGeneration"] = generation
    by_type = {c.get("type"): c for c in conditions if c.get("type") in TYPES}
    by_type[type_] = updated
    return [by_type[t] for t in TYPES if t in by_type]

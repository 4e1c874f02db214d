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
"""Taking user input into the orchestrator state: the last valid settings win.

Valid settings become the target; invalid settings leave the target (and everything the cluster
runs) untouched and only turn Ready into InvalidConfiguration with the exact errors.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from . import conditions, hashing, settings

LEGACY = {"mode": "Unmanaged", "legacy": True}


def input_key(raw: object, env: settings.Environment) -> str:
    """Identity of one validation: the raw section, the environment and the shipped schema."""
    return hashing.sha256_hex(
        {"raw": raw, "env": [env.cluster_configuration_present, env.default_cri, env.cluster_type],
         "schema": settings.schema_digest()}
    )


def judge(raw: object, env: settings.Environment, previous: dict) -> tuple[settings.Verdict, dict]:
    """The verdict on the input, reusing the last one when nothing it depends on changed.

    Validation needs jsonschema, whose import costs more than the rest of a hook run; most runs
    are triggered by nodes and pods, not by a settings change, so they skip it.
    """
    key = input_key(raw, env)
    remembered = previous.get("input") or {}
    target = (previous.get("state") or {}).get("params", {}).get("target")
    if remembered.get("key") == key:
        errors = tuple(remembered.get("errors") or ())
        if errors:
            return settings.Verdict(params=None, errors=errors), remembered
        if target is not None:
            return settings.Verdict(params=copy.deepcopy(target), errors=()), remembered
    verdict = settings.evaluate(raw, env)
    return verdict, {"key": key, "errors": list(verdict.errors)}


@dataclass
class Intake:
    state: dict
    hash: str
    ready: bool
    events: list[tuple[str, dict]] = field(default_factory=list)


def target_hash(state: dict) -> str:
    params = state.get("params", {}).get("target", LEGACY)
    return hashing.sha256_hex(
        {"params": params, "target_mode": state.get("target_mode"), "target_legacy": state.get("target_legacy")}
    )


def accept(previous: dict, verdict: settings.Verdict, generation: int | None, now: str) -> Intake:
    state = copy.deepcopy(previous or {})
    events: list[tuple[str, dict]] = []
    if not state.get("mode"):
        events.append(("State has no mode set, will set to Unmanaged", {}))
        state["mode"] = "Unmanaged"

    params = state.setdefault("params", {})
    if verdict.valid:
        params["target"] = copy.deepcopy(verdict.params)
    else:
        events.append(("Invalid registry settings", {"errors": list(verdict.errors)}))
    target = params.setdefault("target", dict(LEGACY))

    target_key = (target["mode"], bool(target["legacy"]))
    if (state.get("target_mode"), state.get("target_legacy")) != target_key:
        if "target_mode" in state:
            events.append(("Mode change", {"mode": state["mode"], "target_mode": target["mode"]}))
        state["target_mode"], state["target_legacy"] = target_key
        state["conditions"] = []
    current = state.setdefault("conditions", [])

    in_target = state["mode"] == target["mode"]
    if not verdict.valid:
        kept = settings.mode_label(target["mode"], target_key[1])
        message = settings.invalid_input_message(generation, verdict.errors, kept)
        current = conditions.set_condition(
            current, "Ready", False, conditions.REASON_INVALID, message, generation, now
        )
    elif in_target:
        current = conditions.set_condition(current, "Ready", True, conditions.REASON_READY, "", generation, now)
    else:
        current = conditions.set_condition(
            current, "Ready", False, conditions.REASON_PROCESSING,
            f"Transitioning to {target['mode']}", generation, now,
        )
    state["conditions"] = current
    ready = conditions.find(current, "Ready")["status"] == "True"
    return Intake(state=state, hash=target_hash(state), ready=ready, events=events)

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
"""Judging user input once per change of the input (validation itself lives in settings.py)."""

from __future__ import annotations

import copy

from . import hashing, settings


def input_key(raw: object, env: settings.Environment) -> str:
    """Identity of one validation: the raw section, the environment and the shipped schema."""
    return hashing.sha256_hex(
        {"raw": raw, "env": [env.cluster_configuration_present, env.default_cri, env.cluster_type],
         "schema": settings.schema_digest()}
    )


def judge(raw: object, env: settings.Environment, previous: dict) -> tuple[settings.Verdict, str]:
    """The verdict on the input, reusing the last one when nothing it depends on changed.

    Validation needs jsonschema, whose import costs more than the rest of a hook run; most runs
    are triggered by nodes and pods, not by a settings change, so they skip it. A valid input is
    reused only when it became the target (a refused transition is judged again every run).
    """
    key = input_key(raw, env)
    remembered = previous.get("input") or {}
    target = (previous.get("state") or {}).get("params", {}).get("target")
    if remembered.get("key") == key:
        errors = tuple(remembered.get("errors") or ())
        if errors:
            return settings.Verdict(params=None, errors=errors), key
        if remembered.get("accepted") and target is not None:
            return settings.Verdict(params=copy.deepcopy(target), errors=()), key
    return settings.evaluate(raw, env), key


def remember(key: str, verdict: settings.Verdict, accepted: bool) -> dict:
    return {"key": key, "errors": list(verdict.errors), "accepted": bool(verdict.valid and accepted)}

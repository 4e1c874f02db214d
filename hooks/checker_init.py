#!/usr/bin/env python3
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
"""Checker init hook: once per addon-operator process, restore the checker's state and params.

Values are lost when Deckhouse restarts; without this the checker would start every queue again.
Binding config and wiring only; the logic lives in hooks/lib/checker.py.
"""

import base64
import binascii
import json

from lib import checker, runner
from lib.log import Logger
from lib.values import get_path, set_path

CHECKER = "registry.internal.checker"

CONFIG = {
    "configVersion": "v1",
    "beforeHelm": 5,
    "kubernetes": [
        {
            "name": "checker_state",
            "apiVersion": "v1",
            "kind": "Secret",
            "namespace": {"nameSelector": {"matchNames": ["d8-system"]}},
            "nameSelector": {"matchNames": ["registry-checker-state"]},
            "keepFullObjectsInMemory": False,
            "executeHookOnEvent": [],
            "executeHookOnSynchronization": False,
            "jqFilter": "{state: (.data.state // null), params: (.data.params // null)}",
        },
    ],
}


def _decode(encoded) -> tuple[object, str | None]:
    """base64 JSON from the Secret, or None (with the reason) when it cannot be read."""
    if not encoded:
        return None, None
    try:
        return json.loads(base64.b64decode(encoded, validate=True)), None
    except (binascii.Error, ValueError) as exc:
        return None, type(exc).__name__


def main(ctx) -> None:
    if get_path(ctx.values, f"{CHECKER}.initialized", False):
        return
    log = Logger("checker_init")
    log.info("Checker state not initialized, trying restore from secret")
    items = ctx.snapshots.get("checker_state") or []
    data = (items[0].get("filterResult") or {}) if items else {}

    raw_state, state_error = _decode(data.get("state"))
    state = checker.normalize_state(raw_state) if raw_state is not None else None
    if state_error or (raw_state is not None and state is None):
        log.warn("Cannot restore checker state from secret, starting over", reason=state_error or "invalid state")
    if state is not None:
        set_path(ctx.values, f"{CHECKER}.state", state)

    params, params_error = _decode(data.get("params"))
    problems = [params_error] if params_error else (checker.validate_params(params) if params is not None else [])
    if problems:
        # the orchestrator writes fresh params on its next run; bad ones must not reach the checker
        log.warn("Dropping invalid checker params from secret", errors=problems)
    elif params is not None:
        set_path(ctx.values, f"{CHECKER}.params", params)

    if items:
        log.info("Checker state restored", state=state is not None, params=params is not None and not problems)
    set_path(ctx.values, f"{CHECKER}.initialized", True)


if __name__ == "__main__":
    runner.run(main, CONFIG)

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
"""Checker loop hook: every 30 s, confirm that the target registries hold every required image.

Binding config and wiring only; the logic lives in hooks/lib/checker.py (queues, message) and
hooks/lib/checker_http.py (registry client).
"""

from lib import checker, clock, runner
from lib.log import Logger
from lib.values import get_path, set_path

QUEUE = "/modules/registry/checker"
CHECKER = "registry.internal.checker"

CONFIG = {
    "configVersion": "v1",
    "schedule": [
        {
            "name": "checker",
            "crontab": "*/30 * * * * *",
            "queue": QUEUE,
            "allowFailure": True,
            "includeSnapshotsFrom": ["deckhouse_deployment"],
        },
    ],
    "kubernetes": [
        {
            "name": "deckhouse_deployment",
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "namespace": {"nameSelector": {"matchNames": ["d8-system"]}},
            "nameSelector": {"matchNames": ["deckhouse"]},
            "keepFullObjectsInMemory": False,
            "executeHookOnEvent": [],
            "executeHookOnSynchronization": False,
            "queue": QUEUE,
            "jqFilter": '[(.spec.template.spec.containers[]? | {kind: "containers", name, image}), '
                        '(.spec.template.spec.initContainers[]? | {kind: "initContainers", name, image})]',
        },
    ],
}


def _deckhouse_containers(ctx) -> list[dict]:
    items = ctx.snapshots.get("deckhouse_deployment") or []
    return checker.deckhouse_images(items[0].get("filterResult")) if items else []


def main(ctx) -> None:
    log = Logger("checker_loop")
    if not get_path(ctx.values, f"{CHECKER}.initialized", False):
        # checker_init restores the saved queues first; running before it would throw them away
        log.info("Checker state not restored yet, skipping this run")
        return
    state = get_path(ctx.values, f"{CHECKER}.state", {}) or {}
    params = get_path(ctx.values, f"{CHECKER}.params", {}) or {}
    result = checker.run(state, params, get_path(ctx.values, "global", {}) or {}, _deckhouse_containers(ctx),
                         clock.now())
    for message, fields in result.events:
        log.info(message, **fields)
    if result.checked or result.state.get("ready") != state.get("ready"):
        log.info("Checker loop done", processed=result.checked, errors=result.errors,
                 duration=round(result.duration, 3), ready=result.state["ready"])
    set_path(ctx.values, f"{CHECKER}.state", result.state)
    for record in checker.metrics(result.state, result.duration):
        ctx.metrics.collect(record)


if __name__ == "__main__":
    runner.run(main, CONFIG)

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
"""Orchestrator hook: reads the registry settings of ModuleConfig 'deckhouse' and keeps the state.

Binding config and wiring only; the logic lives in hooks/lib.
"""

from lib import clock, intake, metrics, runner, settings
from lib.log import Logger
from lib.values import get_path, set_path

QUEUE = "/modules/registry/orchestrator"
GROUP = "orchestrator"

CONFIG = {
    "configVersion": "v1",
    "beforeHelm": 10,
    "kubernetes": [
        {
            "name": "module_config",
            "group": GROUP,
            "queue": QUEUE,
            "apiVersion": "deckhouse.io/v1alpha1",
            "kind": "ModuleConfig",
            "nameSelector": {"matchNames": ["deckhouse"]},
            "keepFullObjectsInMemory": False,
            "jqFilter": "{generation: .metadata.generation, registry: (.spec.settings.registry // null)}",
        },
    ],
}

MODES = ("Unmanaged", "Direct", "Proxy", "Local")


def _module_config(ctx) -> tuple[object, int | None]:
    items = ctx.snapshots.get("module_config") or []
    if not items or not items[0].get("filterResult"):
        return None, None
    result = items[0]["filterResult"]
    return result.get("registry"), result.get("generation")


def _emit_metrics(ctx, state: dict, ready: bool, input_valid: bool) -> None:
    ctx.metrics.collect(metrics.expire())
    for mode in MODES:
        ctx.metrics.collect(metrics.gauge("d8_registry_mode", 1 if state["mode"] == mode else 0, {"mode": mode}))
    ctx.metrics.collect(
        metrics.gauge(
            "d8_registry_target_mode", 1,
            {"mode": state["target_mode"], "legacy": "true" if state["target_legacy"] else "false"},
        )
    )
    ctx.metrics.collect(metrics.gauge("d8_registry_ready", 1 if ready else 0))
    ctx.metrics.collect(metrics.gauge("d8_registry_input_valid", 1 if input_valid else 0))


def main(ctx) -> None:
    log = Logger("orchestrator")
    raw, generation = _module_config(ctx)
    env = settings.environment_from_globals(ctx.values.get("global", {}))
    orchestrator = get_path(ctx.values, "registry.internal.orchestrator", {}) or {}
    verdict, judged = intake.judge(raw, env, orchestrator)
    result = intake.accept(orchestrator.get("state") or {}, verdict, generation, clock.now_rfc3339())
    for message, fields in result.events:
        (log.warn if message == "Invalid registry settings" else log.info)(message, **fields)
    set_path(ctx.values, "registry.internal.orchestrator.input", judged)
    set_path(ctx.values, "registry.internal.orchestrator.state", result.state)
    set_path(ctx.values, "registry.internal.orchestrator.hash", result.hash)
    set_path(ctx.values, "registry.internal.orchestrator.ready", result.ready)
    _emit_metrics(ctx, result.state, result.ready, verdict.valid)


if __name__ == "__main__":
    runner.run(main, CONFIG)

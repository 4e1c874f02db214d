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
"""'simulate': drive the real module through a sequence of registry switches on a simulated cluster."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..cluster import Cluster
from ..redact import redact_assignments
from . import report
from .engine import Faults, Simulator
from .scenario import ScenarioError, load_settings_file, settings_from_set

MODULE_DIR = Path(__file__).resolve().parents[3]


def module_dir(args) -> Path:
    """The module the simulator runs: the checkout, or a bundle tree (--module-dir / D8REGISTRY_MODULE_DIR)."""
    chosen = getattr(args, "module_dir", None) or os.environ.get("D8REGISTRY_MODULE_DIR")
    if not chosen:
        return MODULE_DIR
    path = Path(chosen).resolve()
    if not (path / "module.yaml").is_file() or not (path / "hooks").is_dir():
        raise ScenarioError(f"module dir {chosen!r} has no module.yaml and hooks/ (run 'make bundle' for build/bundle)")
    if getattr(args, "in_process", False) and path != MODULE_DIR.resolve():
        # in process, every hook imports `lib` from sys.modules, where the simulator's own import put the
        # checkout's hooks/lib: the tree's hook files would run with the checkout's logic
        raise ScenarioError(f"--in-process runs this checkout's hooks/lib, not the one in {path}: "
                            "drop --in-process to run that tree's hooks as processes")
    return path


@dataclass
class StepResult:
    request: str
    target: str
    outcome: str          # ready | refused | stuck
    ticks: int
    module_runs: int
    seconds: float
    conditions: list[dict] = field(default_factory=list)


def _hosts(settings: list[dict | None]) -> list[str]:
    hosts = set()
    for registry in settings:
        for section in ("direct", "proxy", "unmanaged"):
            repo = ((registry or {}).get(section) or {}).get("imagesRepo")
            if isinstance(repo, str) and repo:
                netloc = repo.split("/", 1)[0]
                hosts.update({netloc, netloc.split(":", 1)[0]})
    return sorted(hosts)


def parse_fault(value: str) -> tuple[str, int]:
    name, sep, tick = value.rpartition("@")
    if not sep or not tick.isdigit():
        raise ScenarioError(f"fault {value!r} must look like <node>@<tick>")
    return name, int(tick)


def build_faults(args) -> Faults:
    faults = Faults()
    for value in args.node_not_ready or []:
        node, tick = parse_fault(value)
        faults.node_not_ready.setdefault(tick, []).append(node)
    for value in args.node_ready or []:
        node, tick = parse_fault(value)
        faults.node_ready.setdefault(tick, []).append(node)
    for value in args.restart_deckhouse or []:
        if not str(value).isdigit():
            raise ScenarioError(f"--restart-deckhouse takes a tick number, got {value!r}")
        faults.restart_deckhouse.add(int(value))
    faults.custom_containerd = set(args.custom_containerd or [])
    return faults


def steps_from_args(args, cluster: Cluster, default: list[str]) -> list[tuple[str, dict | None]]:
    if args.settings:
        return [(path, load_settings_file(path)) for path in args.settings]
    expressions = args.set or default
    return [(expression, settings_from_set(expression, cluster)) for expression in expressions]


def simulate(args, cluster: Cluster, out, default: list[str]) -> int:
    if getattr(args, "real_dataplane", False):
        from .dataplane import simulate as with_real_dataplane

        return with_real_dataplane(args, cluster, out, default)
    steps = steps_from_args(args, cluster, default)
    faults = build_faults(args)
    printer = report.live_printer(out) if not args.json else (lambda _entry: None)
    sim = Simulator(module_dir(args), cluster, in_process=args.in_process, faults=faults, progress=printer,
                    registry_hosts=_hosts([registry for _label, registry in steps] + [cluster_registry(cluster)]))
    results: list[StepResult] = []
    try:
        for request, registry in steps:
            target = (registry or {}).get("mode", "Unmanaged") if registry is not None else "Unmanaged (non-configurable)"
            if not args.json:
                print(f"\n=== {redact_assignments(request)}: switch to {target}", file=out, flush=True)
            results.append(run_step(sim, request, registry, target, args))
            if not args.json:
                result = results[-1]
                print(f"--- {result.outcome.upper()} after {result.ticks} ticks ({result.ticks * 10} s simulated), "
                      f"{result.module_runs} module runs, {result.seconds:.1f} s wall", file=out)
                print("\n".join(report.node_table(sim)), file=out, flush=True)
        if getattr(args, "dump_to", None):
            import yaml

            Path(args.dump_to).write_text(yaml.safe_dump(
                {"description": f"state after: {', '.join(r.request for r in results)}", "globals": sim.globals,
                 "objects": sim.store.objects()}, sort_keys=False))
    finally:
        sim.close()
    if args.json:
        print(json.dumps([r.__dict__ for r in results], indent=2), file=out)
    if any(r.outcome == "refused" for r in results):
        return 3
    return 0 if all(r.outcome == "ready" for r in results) else 1


def cluster_registry(cluster: Cluster) -> dict:
    from .scenario import current_upstream

    return {"unmanaged": current_upstream(cluster)}


def run_step(sim: Simulator, request: str, registry: dict | None, target: str, args) -> StepResult:
    started, ticks_before, runs_before = time.monotonic(), sim.tick, sim.module_runs
    sim.set_registry(registry)
    if registry is not None and registry.get("mode") == "Local" and not args.no_push:
        push_at = sim.tick + args.push_after
    else:
        push_at = None
    outcome = "stuck"
    for _ in range(args.max_ticks):
        if push_at is not None and sim.tick >= push_at and not sim.registries.local_filled:
            sim.registries.local_filled = True
            sim.note("fault", "d8 mirror push fills the Local replicas")
        sim.step()
        state = sim.state()
        conditions = {c["type"]: c for c in state.get("conditions", [])}
        if conditions.get("ErrTransitionNotSupported", {}).get("status") == "True":
            outcome = "refused"
            break
        wanted = (target.split(" ")[0], target.endswith("(non-configurable)"))
        if sim.ready() and (state.get("target_mode"), bool(state.get("target_legacy"))) == wanted \
                and state.get("mode") == wanted[0]:
            outcome = "ready"
            break
    return StepResult(request=redact_assignments(request), target=target, outcome=outcome, ticks=sim.tick - ticks_before,
                      module_runs=sim.module_runs - runs_before, seconds=time.monotonic() - started,
                      conditions=sim.state().get("conditions", []))

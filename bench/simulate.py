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
"""Benchmark: wall time, ticks and module runs the simulator needs for Unmanaged -> Proxy on the
5-node example cluster, on the same cluster grown to 200 nodes and to 1,000 nodes (one run each, same
machine, one process). Goal (issue #15): 200 nodes within 3x the 5-node wall time.
Usage: python bench/simulate.py [--nodes 200] [--large 1000] [--subprocess]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "hooks"), str(REPO / "cli")]

from d8registry import cluster as cluster_mod  # noqa: E402
from d8registry.sim.engine import Simulator  # noqa: E402
from d8registry.sim.scenario import settings_from_set  # noqa: E402


def grown(cluster: cluster_mod.Cluster, total: int) -> cluster_mod.Cluster:
    clone = copy.deepcopy(cluster)
    template = next(o for o in clone.objects if o["kind"] == "Node" and o["metadata"]["name"] == "worker-0")
    for i in range(total - 5):
        node = copy.deepcopy(template)
        node["metadata"]["name"] = f"worker-x{i:03d}"
        node["status"]["addresses"][0]["address"] = f"10.129.{i // 250}.{i % 250 + 1}"
        clone.objects.append(node)
    return clone


def measure(cluster: cluster_mod.Cluster, in_process: bool) -> tuple[float, int, int, bool, int]:
    sim = Simulator(REPO, cluster, in_process=in_process, registry_hosts=["registry.deckhouse.ru"])
    try:
        sim.set_registry(settings_from_set("mode=Proxy", cluster))
        started = time.perf_counter()
        ready = False
        for _ in range(120):
            sim.step()
            if sim.ready() and sim.state().get("mode") == "Proxy":
                ready = True
                break
        return time.perf_counter() - started, sim.tick, sim.module_runs, ready, sim.bashible.executions
    finally:
        sim.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--large", type=int, default=1000, help="a large cluster simulated end to end (0: skip)")
    parser.add_argument("--subprocess", action="store_true", help="hooks as processes (the CLI default)")
    args = parser.parse_args()
    base = cluster_mod.load()
    mode = "subprocess hooks" if args.subprocess else "in-process hooks"
    results = {}
    sizes = [(5, base), (args.nodes, grown(base, args.nodes))]
    if args.large:
        sizes.append((args.large, grown(base, args.large)))
    for count, cluster in sizes:
        seconds, ticks, runs, ready, executions = measure(cluster, not args.subprocess)
        results[count] = seconds
        print(f"Unmanaged -> Proxy, {count:>4} nodes ({mode}): {'Ready' if ready else 'NOT ready'} after "
              f"{ticks} ticks ({ticks * 10} s simulated), {runs} module runs, {executions} node-step executions, "
              f"{seconds:.1f} s wall", flush=True)
    ratio = results[args.nodes] / results[5]
    print(f"wall-time ratio {args.nodes}/5 nodes: {ratio:.2f} (goal <= 3.0: {'met' if ratio <= 3.0 else 'NOT met'})")
    if args.large:
        print(f"{args.large} nodes simulated end to end in {results[args.large]:.1f} s wall "
              f"({results[args.large] / results[5]:.2f}x the 5-node run)")

if __name__ == "__main__":
    main()

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
"""Benchmark: the orchestrator state machine in-process on 100 / 1,000 / 10,000 nodes, and the
orchestrator hook as a subprocess (real file protocol) on a 1,000-node snapshot next to the bare
interpreter + SDK import. Everything is measured in one run; ratios are what to compare.
Usage: python bench/state_machine.py [--rounds N]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "hooks"), str(REPO / "cli"), str(REPO)]

from d8registry import cluster as cluster_mod  # noqa: E402
from d8registry.operator import bindings  # noqa: E402
from d8registry.operator.module import ModuleHarness  # noqa: E402
from figures import bytecode_env, figure  # noqa: E402
from lib import stages  # noqa: E402
from lib.snapshots import Node  # noqa: E402

from tests.unit.cluster_model import LICENSE, ClusterModel  # noqa: E402

PROXY = {"mode": "Proxy", "proxy": {"imagesRepo": "registry.deckhouse.ru/deckhouse/ee", "license": LICENSE}}


def _nodes(count: int) -> list[Node]:
    masters = [Node(f"master-{i}", f"10.128.0.{10 + i}", True, True, "unknown", "default") for i in range(3)]
    workers = [Node(f"worker-{i:05d}", f"10.129.{i // 250}.{i % 250 + 1}", False, True, "unknown", "default")
               for i in range(count - 3)]
    return masters + workers


def steady_model(count: int) -> ClusterModel:
    model = ClusterModel(nodes=_nodes(count))
    model.switch(PROXY)
    return model


def time_reconcile(model: ClusterModel, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        inputs = model.inputs()
        state = copy.deepcopy(model.state)
        start = time.perf_counter()
        stages.reconcile(state, inputs)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def node_object(i: int) -> dict:
    name = f"worker-{i:05d}"
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"node.deckhouse.io/containerd-config-registry": "default"},
                         "annotations": {"registry.deckhouse.io/version": "unknown"}},
            "status": {"addresses": [{"type": "InternalIP", "address": f"10.129.{i // 250}.{i % 250 + 1}"}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def hook_process(rounds: int, node_count: int) -> tuple[float, float]:
    cluster = cluster_mod.load().with_registry_settings(PROXY)
    cluster.objects += [node_object(i) for i in range(node_count - 5)]
    harness = ModuleHarness(REPO, cluster.objects, cluster.globals, in_process=True)
    harness.before_helm()
    hook = harness.hook("orchestrator")
    contexts = [bindings.helm_phase_context(harness.config(hook), "beforeHelm", cluster.objects)]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        files = {name: str(base / name.lower()) for name in (
            "BINDING_CONTEXT_PATH", "VALUES_PATH", "CONFIG_VALUES_PATH", "VALUES_JSON_PATCH_PATH",
            "KUBERNETES_PATCH_PATH", "METRICS_PATH")}
        Path(files["BINDING_CONTEXT_PATH"]).write_text(json.dumps(contexts))
        Path(files["VALUES_PATH"]).write_text(json.dumps(harness.values))
        Path(files["CONFIG_VALUES_PATH"]).write_text("{}")
        env = bytecode_env(dict(os.environ, **files), str(base / "pycache"))
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        outputs = [files["VALUES_JSON_PATCH_PATH"], files["KUBERNETES_PATCH_PATH"], files["METRICS_PATH"]]

        def timed(command):
            for path in outputs:
                Path(path).unlink(missing_ok=True)
            start = time.perf_counter()
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return time.perf_counter() - start

        timed([str(hook)])  # warm the page cache and .pyc files, on both sides
        timed([sys.executable, "-c", "import deckhouse.hook"])
        baseline, runs = [], []
        for _ in range(rounds):
            baseline.append(timed([sys.executable, "-c", "import deckhouse.hook"]))
            runs.append(timed([str(hook)]))
    return statistics.median(baseline), statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    models = {count: steady_model(count) for count in (100, 1_000, 10_000)}
    for model in models.values():
        time_reconcile(model, 1)  # warm-up: imports, caches
    results = {}
    for count, model in models.items():
        results[count] = time_reconcile(model, args.rounds)
        print(f"state machine, steady Proxy, {count:>6} nodes: median {results[count] * 1000:8.1f} ms")
    print(f"ratio 1k/100: {results[1_000] / results[100]:.2f}   ratio 10k/1k: {results[10_000] / results[1_000]:.2f}"
          "   (linear growth = 10)")
    base, hook = hook_process(max(args.rounds, 10), 1_000)
    print(f"interpreter + SDK import: median {base * 1000:.1f} ms")
    print(f"orchestrator hook, 1,000 nodes, steady state: median {hook * 1000:.1f} ms  ratio {hook / base:.2f}")
    figure("orchestrator hook process, 1,000-node snapshot, ratio to baseline", hook / base, 1.6)


if __name__ == "__main__":
    main()

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
"""Benchmark: one orchestrator hook process (real file protocol) vs the bare interpreter + SDK import.

Hook cases: 'settings changed' (empty values, so the input is validated) and
'steady state' (values from a previous run, as on every node or pod event), and 'converged Proxy' (the
values and objects after the simulator finished Unmanaged -> Proxy on the example cluster). All are measured in
the same run, interleaved, and reported as ratios of medians so machine speed cancels out.
Bytecode is cached for both sides (see figures.bytecode_env). Goals: issue #15.
Usage: python bench/hook_process.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "cli"))

from d8registry import cluster as cluster_mod  # noqa: E402
from d8registry.operator import bindings, protocol  # noqa: E402
from d8registry.operator.module import ModuleHarness  # noqa: E402
from figures import bytecode_env, figure  # noqa: E402

# "converged Proxy" is the steady state of a finished switch; the figure is the run on the values
# of the previous run ("steady state"), and the converged run is held to the same goal.
GOALS = {"steady state": 1.5, "settings changed": 2.5, "converged Proxy": 1.5}


def _hook_files(tmp: Path, contexts: list[dict], values: dict) -> dict[str, str]:
    paths = {
        "BINDING_CONTEXT_PATH": tmp / "ctx.json",
        "VALUES_PATH": tmp / "values.json",
        "CONFIG_VALUES_PATH": tmp / "config.json",
        "VALUES_JSON_PATCH_PATH": tmp / "patch.jsonl",
        "KUBERNETES_PATCH_PATH": tmp / "kube.jsonl",
        "METRICS_PATH": tmp / "metrics.jsonl",
    }
    paths["BINDING_CONTEXT_PATH"].write_text(json.dumps(contexts))
    paths["VALUES_PATH"].write_text(json.dumps(values))
    paths["CONFIG_VALUES_PATH"].write_text("{}")
    return {name: str(path) for name, path in paths.items()}


def _timed(command: list[str], env: dict[str, str], cleanup: list[str]) -> float:
    for path in cleanup:
        Path(path).unlink(missing_ok=True)
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def converged_proxy(cluster: cluster_mod.Cluster) -> tuple[list[dict], dict]:
    """Objects and module values of the example cluster after the simulator finished Unmanaged -> Proxy:
    the run every later node or pod event triggers (node services rendered, certificates in place)."""
    from d8registry.sim.engine import Simulator
    from d8registry.sim.scenario import settings_from_set

    sim = Simulator(REPO, cluster, in_process=True, registry_hosts=["registry.deckhouse.ru"])
    try:
        sim.set_registry(settings_from_set("mode=Proxy", cluster))
        for _ in range(120):
            sim.step()
            if sim.ready() and sim.state().get("mode") == "Proxy":
                return sim.store.objects(), sim.harness.values
        raise SystemExit("the simulator did not reach Proxy")
    finally:
        sim.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    hook = REPO / "hooks" / "orchestrator.py"
    cluster = cluster_mod.load().with_registry_settings(
        {"mode": "Proxy", "proxy": {"imagesRepo": "mirror.example.com/deckhouse/ee", "license": "x"}})
    config = protocol.hook_config(hook)
    contexts = [bindings.helm_phase_context(config, "beforeHelm", cluster.objects)]
    fresh = {"global": cluster.globals, "registry": {"internal": {}}}
    harness = ModuleHarness(REPO, cluster.objects, cluster.globals)
    harness.before_helm()
    steady = harness.values
    objects, converged = converged_proxy(cluster_mod.load())
    converged_contexts = [bindings.helm_phase_context(config, "beforeHelm", objects)]
    with tempfile.TemporaryDirectory() as tmp:
        cases = {}
        for name, values, ctx in (("settings changed", fresh, contexts), ("steady state", steady, contexts),
                                  ("converged Proxy", converged, converged_contexts)):
            case_dir = Path(tmp) / name.replace(" ", "-")
            case_dir.mkdir()
            files = _hook_files(case_dir, ctx, values)
            env = bytecode_env(dict(os.environ, **files), str(Path(tmp) / "pycache"))
            env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
            outputs = [files["VALUES_JSON_PATCH_PATH"], files["KUBERNETES_PATCH_PATH"], files["METRICS_PATH"]]
            cases[name] = (env, outputs, [])
        baseline_cmd = [sys.executable, "-c", "import deckhouse.hook"]
        hook_cmd = [str(hook)]
        baseline_env, baseline_outputs, _ = cases["settings changed"]
        _timed(baseline_cmd, baseline_env, baseline_outputs)
        for env, outputs, _ in cases.values():
            _timed(hook_cmd, env, outputs)  # warm the page cache and .pyc files
        baseline = []
        for _ in range(args.rounds):
            baseline.append(_timed(baseline_cmd, baseline_env, baseline_outputs))
            for env, outputs, samples in cases.values():
                samples.append(_timed(hook_cmd, env, outputs))
    base_ms = statistics.median(baseline) * 1000
    print(f"rounds: {args.rounds} (interleaved)")
    print(f"interpreter + SDK import:             median {base_ms:6.1f} ms")
    for name, (_env, _outputs, samples) in cases.items():
        hook_ms = statistics.median(samples) * 1000
        print(f"orchestrator hook, {name:<17} median {hook_ms:6.1f} ms  ratio to baseline {hook_ms / base_ms:.2f}")
    for name, (_env, _outputs, samples) in cases.items():
        figure(f"orchestrator hook process, {name}, ratio to baseline",
               statistics.median(samples) * 1000 / base_ms, GOALS[name])


if __name__ == "__main__":
    main()

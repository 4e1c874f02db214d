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
"""Benchmark: `d8registry plan` and `d8registry status` on a 1,000-node cluster, as a user runs them.

plan: the example cluster grown to 1,000 nodes (workers cloned from worker-0), `plan --set mode=Proxy`.
status: the example cluster switched to Proxy by the simulator (`simulate --dump-to`), the dump grown to
1,000 nodes the same way, then `status --dump`. Both run as CLI processes; the figures are wall seconds
against the goals of issue #15 (plan <= 10 s, status <= 2 s). A plan that runs past --plan-limit seconds
is stopped and reported as the limit, failing. For context it also prints the same plan on the example
cluster (5 nodes): alike workers play through one of them, so the two should be close.
Usage: python bench/cli_large.py [--nodes 1000] [--plan-limit 120]
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "cli")]

from d8registry import cluster as cluster_mod  # noqa: E402
from figures import figure  # noqa: E402

CLI = [sys.executable, "-m", "d8registry"]


def grown_document(document: dict, total: int) -> dict:
    """The cluster document with worker-0 cloned until it has `total` Nodes (each with its own name and IP)."""
    clone = copy.deepcopy(document)
    nodes = [o for o in clone["objects"] if o.get("kind") == "Node"]
    template = next(o for o in nodes if o["metadata"]["name"] == "worker-0")
    for i in range(total - len(nodes)):
        node = copy.deepcopy(template)
        name = f"worker-x{i:04d}"
        node["metadata"]["name"] = name
        if "kubernetes.io/hostname" in (node["metadata"].get("labels") or {}):
            node["metadata"]["labels"]["kubernetes.io/hostname"] = name
        for address in (node.get("status") or {}).get("addresses") or []:
            if address.get("type") == "InternalIP":
                address["address"] = f"10.129.{i // 250}.{i % 250 + 1}"
            elif address.get("type") == "Hostname":
                address["address"] = name
        clone["objects"].append(node)
    return clone


def _write(document: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "cli"), env.get("PYTHONPATH", "")]))
    return env


def timed_cli(args: list[str], limit: float) -> tuple[float, bool]:
    """Wall seconds of one CLI run and whether it finished (exit 0) within the limit."""
    proc = subprocess.Popen([*CLI, *args], cwd=REPO, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    started = time.perf_counter()
    try:
        code = proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return limit, False
    return time.perf_counter() - started, code == 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--plan-limit", type=float, default=120.0)
    args = parser.parse_args()
    example = yaml.safe_load(cluster_mod.DEFAULT_CLUSTER.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        cluster = _write(grown_document(example, args.nodes), base / "cluster.yaml")
        dump5 = base / "dump-5.yaml"
        _, ok = timed_cli(["simulate", "--in-process", "--set", "mode=Proxy", "--dump-to", str(dump5)], 1800)
        if not ok:
            raise SystemExit("simulate on the example cluster failed; no dump for status")
        dump = _write(grown_document(yaml.safe_load(dump5.read_text(encoding="utf-8")), args.nodes),
                      base / "dump.yaml")
        status_s, status_ok = timed_cli(["status", "--dump", str(dump)], 120)
        plan_s, plan_ok = timed_cli(["plan", "--cluster", str(cluster), "--set", "mode=Proxy"], args.plan_limit)
        plan5_s, plan5_ok = timed_cli(["plan", "--set", "mode=Proxy"], args.plan_limit)
    print(f"status --dump, {args.nodes} nodes: {status_s:.2f} s{'' if status_ok else ' (FAILED)'}")
    print(f"plan --set mode=Proxy, {args.nodes} nodes: {plan_s:.2f} s"
          f"{'' if plan_ok else f' (did not finish within {args.plan_limit:g} s)'}")
    print(f"plan --set mode=Proxy, example cluster (5 nodes), for context: {plan5_s:.2f} s"
          f"{'' if plan5_ok else f' (did not finish within {args.plan_limit:g} s)'}")
    figure(f"status on {args.nodes} nodes, seconds", status_s if status_ok else float("inf"), 2, " s")
    figure(f"plan on {args.nodes} nodes, seconds", plan_s if plan_ok else float("inf"), 10, " s")


if __name__ == "__main__":
    main()

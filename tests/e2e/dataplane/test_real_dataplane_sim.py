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
"""The module's promise, measured: no image pull fails at any moment of a switch (`simulate --real-dataplane`).

One master (containerd 1.6) and one worker (containerd 2.x) go Unmanaged -> Direct -> Proxy -> Direct -> Local ->
Unmanaged through the CLI while each node pulls over CRI from real containerd, fronts, distributions and node LBs
(cli/d8registry/sim/dataplane.py). A module whose transitional containerd config is skipped (the orchestrator's merge
replaced) must be caught: the failed pulls name the node, the stage and containerd's error.

Every node also pulls right after each change (Deckhouse moved, a node step ran), so what is pulled does not
depend on how fast the hooks run: both runs have their hooks in process (the real hook protocol is played by
tests/bundle/test_simulate_from_bundle.py).

Everything runs in the nodes' own network namespaces (127.0.16.x exists only there) and in fresh temp dirs, so
these tests do not collide with the fixed-address data-plane tests.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from d8registry import cluster as cluster_mod
from d8registry import loopback as lo

REPO = Path(__file__).resolve().parents[3]
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("realdataplane")]
ROW = re.compile(r"^(?P<stage>.+?)\s+(?P<pulls>\d+)\s+(?P<failed>\d+)\s+(?P<p95>[\d.]+|-)\s+(?P<max>[\d.]+|-)\s+"
                 r"(?P<retries>\d+)$")


@pytest.fixture(scope="module")
def small_cluster_file(tmp_path_factory) -> Path:
    if os.geteuid() != 0:
        pytest.fail("the real data plane needs root (network and mount namespaces)")
    for tool in ("containerd", "containerd2", "crictl", "nginx", "registry"):
        try:
            lo.binary(tool)
        except lo.Unavailable as exc:
            pytest.fail(str(exc))
    cluster = cluster_mod.load()
    keep = {"master-0", "worker-1"}  # worker-1 runs containerd 2.x (config version 3)
    objects = [o for o in cluster.objects if o["kind"] != "Node" or o["metadata"]["name"] in keep]
    path = tmp_path_factory.mktemp("realdp") / "cluster.yaml"
    path.write_text(yaml.safe_dump({"description": "1 master + 1 worker", "globals": cluster.globals,
                                    "objects": objects}, sort_keys=False))
    return path


def _simulate(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "d8registry", "simulate", "--real-dataplane", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO, stdin=subprocess.DEVNULL)


def _show(result: subprocess.CompletedProcess) -> str:
    """The run's report (visible with -s), and its output for the assertions."""
    out = result.stdout
    print(out[out.find("=== data plane"):] if "=== data plane" in out else out[-4000:])
    return out


def _table(stdout: str) -> dict[str, dict]:
    lines = stdout.split("=== data plane: CRI pulls per stage", 1)[1].splitlines()[2:]
    rows = {}
    for line in lines:
        match = ROW.match(line)
        if not match:
            break
        rows[match["stage"]] = match.groupdict()
    return rows


def test_whole_chain_pulls_never_fail(small_cluster_file):
    result = _simulate("--cluster", str(small_cluster_file), "--in-process")
    out = _show(result)
    assert result.returncode == 0, out[-6000:] + result.stderr[-3000:]
    assert out.count("--- READY") == 5, out[-4000:]
    rows = _table(out)
    assert list(rows) == ["Unmanaged (start)", "1: -> Direct", "2: -> Proxy", "3: -> Direct", "4: -> Local",
                          "5: -> Unmanaged", "after: Unmanaged"], rows
    for stage, row in rows.items():
        assert int(row["pulls"]) > 0, f"no pull during {stage}"
        assert int(row["failed"]) == 0, (stage, out[-4000:])
    # the steps restarted containerd (config_path inserted) while the nodes were pulling: pulls that found the CRI
    # socket silent were retried, as kubelet's sync loop does, and none of them failed
    assert "containerd restarts by the steps: master-0 1, worker-1 1" in out
    assert int(rows["1: -> Direct"]["retries"]) >= 1, rows
    assert "failed pulls: 0" in out
    # besides the loops, each node pulled after every change: at least once per switch and node
    assert int(re.search(r"^pulls right after a change: (\d+)$", out, re.MULTILINE)[1]) >= 2 * 5, out[-4000:]
    # the Local replicas served pulls only after the push
    assert out.index("pushed system/deckhouse@") < out.index("=== mode=Unmanaged")


def test_skipped_transitional_config_is_caught(small_cluster_file, monkeypatch, capsys):
    """Fault: the orchestrator publishes the final mirrors where the transitional (old + new) ones belong. When
    Direct -> Unmanaged drops the fixed name's hosts dir before Deckhouse moved to the upstream, pulls fail.

    The fault replaces the orchestrator's merge in this process and the CLI's entry point runs here with its hooks
    in process, so they run the faulty merge (a patched tree would need hook processes: tests/cli/test_module_dir.py)."""
    from d8registry import __main__ as cli
    from lib import node_config

    monkeypatch.setattr(node_config, "transitional", lambda old, new: copy.deepcopy(new))  # injected fault
    monkeypatch.chdir(REPO)
    capsys.readouterr()
    code = cli.main(["simulate", "--real-dataplane", "--in-process", "--cluster", str(small_cluster_file),
                     "--set", "mode=Direct", "--set", "mode=Unmanaged"])
    captured = capsys.readouterr()
    result = subprocess.CompletedProcess(["d8registry"], code, captured.out, captured.err)
    out = _show(result)
    assert result.returncode == 4, out[-6000:] + result.stderr[-3000:]
    rows = _table(out)
    assert int(rows["2: -> Unmanaged"]["failed"]) > 0, rows
    failures = [line for line in out.splitlines() if line.lstrip().startswith("FAILED ")]
    assert failures, out[-4000:]
    named = re.compile(r"FAILED \d+x node=(master-0|worker-1) stage='2: -> Unmanaged' "
                       r"ref=registry\.d8-system\.svc:5001/system/deckhouse@sha256:[0-9a-f]{64}: containerd: .+")
    assert any(named.search(line) for line in failures), failures

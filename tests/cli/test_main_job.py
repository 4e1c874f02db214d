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
"""The CLI driven as a user would: subprocesses, exit codes and what they print."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml


def _cli(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "d8registry", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _summary(proc) -> list[dict]:
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout)


# the runs of Direct, Proxy and Local also leave a dump that other tests start from (cli_once, tests/cli/conftest.py)
SHARED_RUN = {"mode=Direct": "cli-simulate-direct", "mode=Proxy": "cli-simulate-proxy", "mode=Local": "cli-simulate-local"}


def _simulated(cli_once, request_: str):
    """`simulate --in-process --json --set <request_> --dump-to <file>`, run once for every test that uses it."""
    return cli_once("simulate", "--in-process", "--json", "--set", request_, dump=True)


@pytest.mark.parametrize("request_", [
    pytest.param(r, marks=[pytest.mark.xdist_group(SHARED_RUN[r])] if r in SHARED_RUN else [])
    for r in ["mode=Direct", "mode=Proxy", "mode=Local", "mode=Unmanaged", "mode=Legacy"]])
def test_every_mode_is_reached_from_unmanaged(helm_bin, cli_once, request_):
    proc = _simulated(cli_once, request_).proc
    assert proc.returncode == 0, proc.stderr[-3000:]
    [step] = _summary(proc)
    assert step["outcome"] == "ready"
    ready = next(c for c in step["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"


# The chained scenario's timeline (`simulate --in-process` with D,P,D,L,D,U,Legacy) is checked in
# tests/apiserver/test_rendered_objects.py: the same play gives the renders the API server checks (issue #15).


# The real hook protocol (every hook its own process, no --in-process) is played by
# tests/bundle/test_simulate_from_bundle.py: make sim's five switches with every hook started from the bundle.


@pytest.mark.xdist_group("cli-simulate-proxy")
def test_forbidden_transition_is_refused_and_changes_nothing(helm_bin, cli_once, tmp_path):
    proxy = _simulated(cli_once, "mode=Proxy")
    assert proxy.proc.returncode == 0, proxy.proc.stderr[-3000:]
    proxy_dump = tmp_path / "proxy.yaml"
    proxy_dump.write_bytes(proxy.dump.read_bytes())
    after_dump = tmp_path / "after.yaml"
    proc = _cli("simulate", "--in-process", "--cluster", str(proxy_dump), "--set", "mode=Local",
                "--dump-to", str(after_dump))
    assert proc.returncode == 3
    assert "ErrTransitionNotSupported=True Error mode transition from Proxy to Local not supported" in proc.stdout

    def data_plane(path):
        objects = yaml.safe_load(path.read_text())["objects"]
        keep = ("NodeGroupConfiguration", "Node", "Service")
        return {(o["kind"], o["metadata"]["name"]): (o.get("spec"), (o["metadata"].get("annotations") or {}))
                for o in objects if o["kind"] in keep or o["metadata"]["name"].startswith("registry-node-config")}

    assert data_plane(after_dump) == data_plane(proxy_dump)


@pytest.mark.xdist_group("cli-plan-proxy")
def test_plan_lists_stages_and_each_nodes_hosts_toml(helm_bin, cli_once):
    proc = cli_once("plan", "--set", "mode=Proxy").proc
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "allowed: Unmanaged -> Proxy" in out and "all DKP components restart once" in out
    for stage in ("RegistryContainsRequiredImages", "ContainerdConfigPreflightReady", "NodeServicesReady",
                  "TransitionContainerdConfigReady", "DeckhouseRegistrySwitchReady", "FinalContainerdConfigReady"):
        assert stage in out
    for node in ("master-0", "master-1", "master-2", "worker-0", "worker-1"):
        assert f"  {node}:\n   current -> transitional:" in out, f"{node} gets a transitional config"
    for host in ("https://127.0.0.1:5001", "https://10.128.0.10:5001", "https://10.128.0.11:5001",
                 "https://10.128.0.12:5001"):
        assert f'+[host."{host}"]' in out
    assert "-server = \"https://registry.deckhouse.ru\"" in out, "the old registry dir goes away in the final phase"
    assert "Basic ****" in out and "create Secret d8-system/registry-pki" in out
    assert "Basic cm86" not in out, "the ro credential is never printed"


@pytest.mark.xdist_group("cli-simulate-direct")
def test_status_of_a_dump(helm_bin, cli_once, tmp_path):
    direct = _simulated(cli_once, "mode=Direct")
    assert direct.proc.returncode == 0, direct.proc.stderr[-3000:]
    dump = tmp_path / "dump.yaml"
    dump.write_bytes(direct.dump.read_bytes())
    proc = _cli("status", "--dump", str(dump))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Mode: Direct \u2192 Direct (ready)")
    assert "worker-1" in proc.stdout and " ok" in proc.stdout
    assert "registry.deckhouse.ru:" in proc.stdout and "checked" in proc.stdout
    assert "example-license-not-a-secret" not in proc.stdout


def test_render_and_hook_subcommands(helm_bin):
    proc = _cli("render", "--set", "mode=Direct", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["values"]["registry"]["internal"]["orchestrator"]["state"]["target_mode"] == "Direct"
    assert "example-license-not-a-secret" not in proc.stdout
    proc = _cli("hook", "orchestrator")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) == {"snapshots", "valuesPatch", "kubernetesOperations", "metrics", "logs"}
    assert report["snapshots"]["beforeHelm"]["nodes"][0]["filterResult"]["name"] == "master-0"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cluster", "/nonexistent/cluster.yaml"], "cannot read cluster file"),
        (["simulate", "--set", "mode"], "--set expects key=value"),
        (["simulate", "--settings", "/nonexistent/settings.yaml"], "cannot read settings file"),
        (["simulate", "--node-not-ready", "master-0"], "must look like <node>@<tick>"),
        (["status"], "status needs --dump <file> or --live"),
        (["plan"], "plan needs the target"),
        (["hook", "nope"], "no executable hook named 'nope'"),
    ],
)
def test_bad_input_is_one_clear_line(args, message):
    proc = _cli(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_yaml_cluster(tmp_path):
    bad = tmp_path / "cluster.yaml"
    bad.write_text("objects: [unclosed\n")
    proc = _cli("render", "--cluster", str(bad))
    assert proc.returncode == 2 and "not valid YAML" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


@pytest.mark.xdist_group("cli-plan-proxy-ttl")   # the run test_plan_admission.py also makes
def test_invalid_settings_are_reported_not_crashed(helm_bin, cli_once):
    proc = cli_once("plan", "--set", "mode=Proxy,proxy.ttl=1m").proc
    assert proc.returncode == 2
    assert "registry.proxy: 'ttl' should be at least 5 minutes." in proc.stdout


def test_deckhouse_restart_mid_switch_resumes(helm_bin):
    """Values are wiped at tick 5 (node services already starting): the state comes back from Secrets."""
    proc = _cli("simulate", "--in-process", "--set", "mode=Proxy", "--restart-deckhouse", "5")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Deckhouse restarts: module values are wiped" in proc.stdout
    assert "--- READY after" in proc.stdout


def test_not_ready_node_holds_the_node_stages(helm_bin):
    proc = _cli("simulate", "--in-process", "--set", "mode=Direct",
                "--node-not-ready", "worker-0@2", "--node-ready", "worker-0@9")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    recovered = next(i for i, line in enumerate(lines) if "node worker-0 becomes Ready" in line)
    converged = next(i for i, line in enumerate(lines) if "TransitionContainerdConfigReady=True" in line)
    assert recovered < converged, "nodes converge only after the NotReady node is back"


def test_credential_change_in_direct_converges(helm_bin):
    """A new license in Direct is a real transition (SPEC 4.3.2) that finishes, and the header of the
    switch does not echo the license given on the command line (SPEC 10.1). One run: the text report
    prints each switch's outcome ("--- READY after ..."), which is what the --json summary would say."""
    proc = _cli("simulate", "--in-process", "--max-ticks", "30", "--set", "mode=Direct",
                "--set", "mode=Direct,direct.license=other-license-0001")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.findall(r"^--- (\S+) after ", proc.stdout, re.MULTILINE) == ["READY", "READY"]
    assert "=== mode=Direct,direct.license=<redacted sha256:" in proc.stdout
    assert "other-license-0001" not in proc.stdout + proc.stderr

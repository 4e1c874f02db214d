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
"""`d8registry hook <name> --snapshots`: addon-operator's snapshot dump of a cluster in the middle of a
switch, replayed through the real hook process, gives the decision the simulator made on the same
objects and values; a malformed dump gets one line naming the binding, never a traceback."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from d8registry import cluster as cluster_mod
from d8registry.sim import scenario
from d8registry.sim.engine import Simulator
from d8registry.sim.run import _hosts, cluster_registry
from d8registry.snapshots import build_dump

LICENSE = "example-license-not-a-secret"  # the example cluster's dummy credential
VENV_WARNING = "hooks/venv does not exist"


# mid_switch (module scope) simulates a whole switch: one worker runs the module, so it is built once
pytestmark = pytest.mark.xdist_group("cli-snapshot-replay")


@dataclass
class Recorded:
    dump: dict
    module_values: dict
    global_values: dict
    now: str
    patch: list
    operations: list
    state_after: dict


@pytest.fixture(scope="module")
def mid_switch(repo_root, helm_bin) -> Recorded:
    """Unmanaged -> Direct on the simulated example cluster; the orchestrator run of the latest tick
    that changed something while the switch was still in progress."""
    cluster = cluster_mod.load()
    registry = scenario.settings_from_set("mode=Direct", cluster)
    sim = Simulator(repo_root, cluster, in_process=True,
                    registry_hosts=_hosts([registry, cluster_registry(cluster)]))
    calls = []
    execute = sim.harness.execute

    def recording(hook, contexts):
        objects, values = copy.deepcopy(sim.harness.objects), copy.deepcopy(sim.harness.values)
        now = sim.harness.env["REGISTRY_FAKE_NOW"]
        result = execute(hook, contexts)
        calls.append((hook.name, objects, values, now, result))
        return result

    sim.harness.execute = recording
    try:
        sim.step()
        sim.set_registry(registry)
        picked = None
        for _ in range(60):
            sim.step()
            state = sim.state()
            if sim.ready():
                break
            changed = [c for c in calls if c[0] == "orchestrator.py" and c[4].values_patch]
            if changed and state.get("mode") != state.get("target_mode"):
                picked = (changed[-1], copy.deepcopy(state))
        assert picked is not None, "the simulated switch never had an orchestrator run mid-switch"
        (_name, objects, values, now, result), state = picked
        configs = {hook.name: config for hook, config in sim.hook_configs.items()}
        return Recorded(dump=build_dump(configs, objects), module_values=values["registry"],
                        global_values=values["global"], now=now, patch=result.values_patch,
                        operations=result.kube_operations, state_after=state)
    finally:
        sim.close()


def _files(tmp_path: Path, recorded: Recorded, dump=None, *, suffix: str = "json") -> list[str]:
    dump_file, values_file, globals_file = (tmp_path / f"dump.{suffix}", tmp_path / "values.json",
                                            tmp_path / "globals.json")
    document = recorded.dump if dump is None else dump
    dump_file.write_text(json.dumps(document) if suffix == "json" else yaml.safe_dump(document))
    values_file.write_text(json.dumps(recorded.module_values))
    globals_file.write_text(json.dumps(recorded.global_values))
    return ["--snapshots", str(dump_file), "--values", str(values_file), "--globals", str(globals_file)]


def _hook(*args: str, now: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if now:
        env["REGISTRY_FAKE_NOW"] = now  # the simulated clock of the recorded run
    return subprocess.run([sys.executable, "-m", "d8registry", "hook", *args], capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL, env=env)


def test_the_dump_has_the_debug_server_format(mid_switch):
    """Guard: what the tests replay is shaped like addon-operator's /module/registry/snapshots.json."""
    # every hook with a kubernetes binding, as the debug server lists them
    assert set(mid_switch.dump) == {"registry/hooks/orchestrator.py", "registry/hooks/checker_init.py",
                                    "registry/hooks/checker_loop.py", "registry/hooks/copy_custom_certificate.py"}
    nodes = mid_switch.dump["registry/hooks/orchestrator.py"]["nodes"]
    assert set(nodes) == {"snapshot", "operations"} and set(nodes["operations"]) == {"sinceStart", "sinceLastExecution"}
    assert len(nodes["snapshot"]) == 5 and all(set(item) == {"filterResult"} for item in nodes["snapshot"])


def test_replay_makes_the_decision_the_simulator_made(mid_switch, tmp_path):
    proc = _hook("orchestrator", *_files(tmp_path, mid_switch), "--json", "--show-secrets", now=mid_switch.now)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["contexts"][0]["type"] == "Group" and report["contexts"][0]["binding"] == "orchestrator"
    assert report["valuesPatch"] == mid_switch.patch
    assert report["kubernetesOperations"] == mid_switch.operations
    assert (report["mode"], report["targetMode"]) == (mid_switch.state_after["mode"],
                                                      mid_switch.state_after["target_mode"])
    assert report["conditions"] == mid_switch.state_after["conditions"]
    waiting = next(c for c in mid_switch.state_after["conditions"]
                   if c["type"] not in ("Ready", "ErrTransitionNotSupported") and c["status"] != "True")
    assert report["stage"] == waiting


def test_the_text_report_explains_the_wait_without_secrets(mid_switch, tmp_path):
    proc = _hook("registry/hooks/orchestrator.py", *_files(tmp_path, mid_switch, suffix="yaml"), now=mid_switch.now)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    waiting = next(c for c in mid_switch.state_after["conditions"]
                   if c["type"] not in ("Ready", "ErrTransitionNotSupported") and c["status"] != "True")
    assert f"Waiting in: {waiting['type']} ({waiting['reason']}): {waiting['message'].splitlines()[0]}" in out
    assert "Settings: valid: Direct registry.deckhouse.ru/deckhouse/ee" in out
    assert "Mode: Unmanaged -> Direct (switching)" in out
    for node in ("master-0", "master-1", "master-2", "worker-0", "worker-1"):
        assert f"\n  {node} " in out
    assert f"Values patch ({len(mid_switch.patch)} operations):" in out
    assert "Next render: " in out
    assert LICENSE not in out and "PRIVATE KEY" not in out


def test_a_numbered_module_prefix_and_a_checker_hook(mid_switch, tmp_path):
    """checker_init has no group: it replays with the beforeHelm context addon-operator gives it."""
    dump = {f"040-{name}": section for name, section in mid_switch.dump.items()}
    proc = _hook("checker_init", *_files(tmp_path, mid_switch, dump), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["dumpName"] == "040-registry/hooks/checker_init.py"
    assert report["contexts"] == [{"binding": "beforeHelm", "type": "beforeHelm", "snapshots": {"checker_state": 1}}]


def _orchestrator(dump: dict) -> dict:
    return dump["registry/hooks/orchestrator.py"]


def _break_missing(dump):
    del _orchestrator(dump)["nodes"]


def _break_shape(dump):
    pods = _orchestrator(dump)["deckhouse_pods"]["snapshot"]
    _orchestrator(dump)["nodes"]["snapshot"][1] = copy.deepcopy(pods[0])


def _break_type(dump):
    _orchestrator(dump)["nodes"]["snapshot"][0]["filterResult"]["ready"] = "yes"


def _break_kind(dump):
    _orchestrator(dump)["nodes"]["snapshot"][0]["object"] = {"apiVersion": "v1", "kind": "Pod",
                                                              "metadata": {"name": "x"}}


def _break_list(dump):
    _orchestrator(dump)["nodes"]["snapshot"] = {"filterResult": {}}


def _break_item(dump):
    _orchestrator(dump)["nodes"]["snapshot"][0] = "master-0"


def _break_hook(dump):
    dump.pop("registry/hooks/orchestrator.py")


@pytest.mark.parametrize(("breaker", "message"), [
    (_break_missing, "binding nodes: missing from the snapshot dump"),
    (_break_shape, "binding nodes: snapshot[1].filterResult has another shape"),
    (_break_type, "binding nodes: snapshot[0].filterResult.ready is a string, expected a boolean"),
    (_break_kind, "binding nodes: snapshot[0].object is a Pod, the binding watches Node"),
    (_break_list, "binding nodes: 'snapshot' must be a list"),
    (_break_item, "binding nodes: snapshot[0] must be an object"),
    (_break_hook, "snapshot dump has no hook orchestrator"),
], ids=["missing-binding", "other-shape", "wrong-type", "other-kind", "not-a-list", "not-an-object", "no-hook"])
def test_a_malformed_dump_gets_one_line(mid_switch, tmp_path, breaker, message):
    dump = copy.deepcopy(mid_switch.dump)
    breaker(dump)
    proc = _hook("orchestrator", *_files(tmp_path, mid_switch, dump))
    lines = [line for line in proc.stderr.splitlines() if VENV_WARNING not in line]
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(lines) == 1 and lines[0].startswith(f"d8registry: {message}"), proc.stderr


@pytest.mark.parametrize(("content", "message"), [
    ("{not: [valid", "is neither JSON nor YAML"),
    ("[1, 2]", "snapshot dump must be a mapping of hook names, got a list"),
], ids=["not-json", "a-list"])
def test_an_unreadable_dump_gets_one_line(tmp_path, content, message):
    path = tmp_path / "dump.json"
    path.write_text(content)
    proc = _hook("orchestrator", "--snapshots", str(path))
    lines = [line for line in proc.stderr.splitlines() if VENV_WARNING not in line]
    assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_without_values_the_hook_restores_from_the_snapshots_and_fails_closed(mid_switch, tmp_path):
    """No values: the hook starts as after a Deckhouse restart. With registry-private-state gone from the
    snapshots it refuses, with the message the runbook's 'Cannot restore state from Secret' section names."""
    dump = copy.deepcopy(mid_switch.dump)
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps(dump))
    proc = _hook("orchestrator", "--snapshots", str(ok), "--json", now=mid_switch.now)
    assert proc.returncode == 0, proc.stderr
    assert (json.loads(proc.stdout)["mode"], json.loads(proc.stdout)["targetMode"]) == ("Unmanaged", "Direct")

    secrets = _orchestrator(dump)["state_secrets"]["snapshot"]
    secrets[:] = [item for item in secrets if item["filterResult"]["name"] != "registry-private-state"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(dump))
    proc = _hook("orchestrator", "--snapshots", str(broken), now=mid_switch.now)
    lines = [line for line in proc.stderr.splitlines() if VENV_WARNING not in line]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("d8registry: module run failed: ")
    assert "Cannot restore state from Secret d8-system/registry-state: Secret registry-private-state is missing" \
        in lines[0]
    assert LICENSE not in proc.stderr

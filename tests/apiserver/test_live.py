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
"""`status --live`, `plan --live` and `dump --live` against a real kube-apiserver holding the objects of a
cluster in the middle of a switch (taken from the simulator), read through kubectl and --kubeconfig;
and `simulate --cluster` on the redacted dump reaches Ready."""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from d8registry import cluster as cluster_mod
from d8registry.sim import scenario
from d8registry.sim.engine import Simulator
from d8registry.sim.run import _hosts, cluster_registry

LICENSE = "example-license-not-a-secret"  # the example cluster's dummy credential
READ_KINDS = {"ModuleConfig", "Node", "Secret", "Deployment", "Pod", "NodeGroupConfiguration"}
POLICY_BINDINGS = "validatingadmissionpolicybindings.admissionregistration.k8s.io"


@dataclass
class Midway:
    objects: list[dict]        # what the module reads, as the simulated cluster holds it mid-switch
    globals: dict
    cluster_file: Path         # the same objects in the simulator's cluster format
    env: dict[str, str]        # kubectl for the CLI: the fixture's binary and its own cache dir
    kubeconfig: str
    ca_key: str                # the module CA's private key in registry-pki


def _module_reads(obj: dict) -> bool:
    meta = obj.get("metadata") or {}
    if obj["kind"] not in READ_KINDS:
        return False
    if obj["kind"] == "Secret":
        return meta.get("namespace") == "d8-system"
    if obj["kind"] == "Pod":
        return (meta.get("labels") or {}).get("app") in ("registry", "deckhouse")
    return True


def _for_server(obj: dict) -> dict:
    """A simulator object as `kubectl apply` takes it: no server-owned fields; pods get a container."""
    obj = copy.deepcopy(obj)
    obj.pop("status", None)
    for name in ("resourceVersion", "generation", "uid", "creationTimestamp"):
        obj["metadata"].pop(name, None)
    if obj["kind"] == "Pod":
        obj["spec"].setdefault("containers", [{"name": "main", "image": "registry.example/pause:1"}])
        obj["spec"]["automountServiceAccountToken"] = False
    return obj


def _status_of(obj: dict) -> dict:
    """The status of a simulator object as a server-side apply of the status subresource takes it."""
    meta = {"name": obj["metadata"]["name"]}
    if obj["metadata"].get("namespace"):
        meta["namespace"] = obj["metadata"]["namespace"]
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta, "status": obj["status"]}


def _without_policy_bindings(server):
    """The admission policies of the other tests judge ModuleConfig writes by their own params; set the
    bindings aside while this cluster is written, and give them back exactly as they were."""
    found = json.loads(server.kubectl("get", POLICY_BINDINGS, "-o", "json").stdout)["items"]
    ours = [b for b in found if b["metadata"]["name"].startswith("registry-")]
    if ours:
        server.kubectl("delete", POLICY_BINDINGS, *(binding["metadata"]["name"] for binding in ours))
    return ours


def _restore_policy_bindings(server, bindings: list[dict]) -> None:
    for binding in bindings:
        for name in ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"):
            binding["metadata"].pop(name, None)
        binding.pop("status", None)
    if bindings:
        server.apply(bindings, "--server-side", "--force-conflicts")


def _apply_module_config(server, config: dict) -> None:
    """Deleting a policy binding reaches the admission plugin eventually: retry a bounded number of times."""
    deadline = time.monotonic() + 30
    for _ in range(300):
        proc = server.apply(config, "--server-side", "--force-conflicts", check=False)
        if proc.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def midway(apiserver, repo_root, helm_bin, tmp_path_factory) -> Midway:
    """Unmanaged -> Direct on the simulated example cluster, stopped while the switch is in progress, and
    its objects created on the real API server (Nodes, Pods and Deployments with their status)."""
    workdir = tmp_path_factory.mktemp("live")
    cluster = cluster_mod.load()
    registry = scenario.settings_from_set("mode=Direct", cluster)
    sim = Simulator(repo_root, cluster, in_process=True, registry_hosts=_hosts([registry, cluster_registry(cluster)]))
    try:
        sim.step()
        sim.set_registry(registry)
        for _ in range(6):
            sim.step()
        state = sim.state()
        assert not sim.ready() and state["mode"] == "Unmanaged" and state["target_mode"] == "Direct", state["mode"]
        objects = [o for o in sim.store.objects() if _module_reads(o)]
        globals_ = copy.deepcopy(sim.globals)
    finally:
        sim.close()
    cluster_file = workdir / "sim-cluster.yaml"
    cluster_file.write_text(yaml.safe_dump({"globals": globals_, "objects": objects}))

    server = apiserver
    server.kubectl("create", "serviceaccount", "default", "-n", "d8-system", check=False)
    configuration = base64.b64encode(yaml.safe_dump(globals_["clusterConfiguration"]).encode()).decode()
    server.apply([{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "d8-cluster-configuration",
                                                                      "namespace": "kube-system"},
                   "data": {"cluster-configuration.yaml": configuration}},
                  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d8-cluster-is-bootstrapped",
                                                                         "namespace": "kube-system"}}])
    # one kubectl call per batch: the Nodes (their uids are the owners' of the rest), the ModuleConfigs, the
    # rest with the Pods last, then the status of everything that has one
    nodes = [obj for obj in objects if obj["kind"] == "Node"]
    configs = [obj for obj in objects if obj["kind"] == "ModuleConfig"]
    rest = sorted((obj for obj in objects if obj["kind"] not in ("Node", "ModuleConfig")),
                  key=lambda o: o["kind"] == "Pod")
    set_aside = _without_policy_bindings(server)
    try:
        stored = server.apply_stored([_for_server(obj) for obj in nodes], "--server-side", "--force-conflicts")
        uids = {node["metadata"]["name"]: node["metadata"]["uid"] for node in stored}
        for config in configs:
            _apply_module_config(server, _for_server(config))
        bodies = [_for_server(obj) for obj in rest]
        for body in bodies:
            for owner in body["metadata"].get("ownerReferences") or []:
                owner["uid"] = uids[owner["name"]]
        server.apply(bodies, "--server-side", "--force-conflicts")
        statuses = [_status_of(obj) for obj in [*nodes, *rest] if obj.get("status")]
        server.apply(statuses, "--server-side", "--force-conflicts", "--subresource=status")
    finally:
        _restore_policy_bindings(server, set_aside)
    pki = next(o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == "registry-pki")
    env = {**os.environ, "D8REGISTRY_KUBECTL": server.kubectl_bin, "KUBECACHEDIR": str(workdir / "kubectl-cache")}
    env.pop("KUBECONFIG", None)
    return Midway(objects=objects, globals=globals_, cluster_file=cluster_file, env=env,
                  kubeconfig=str(server.kubeconfig),
                  ca_key=base64.b64decode(pki["data"]["ca.key"]).decode())


def _holds(stored, wanted) -> bool:
    """The stored value carries every wanted field (the server may add defaults, never drop or change)."""
    if wanted is None:
        return True
    if isinstance(wanted, dict):
        return isinstance(stored, dict) and all(_holds(stored.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(stored, list) and len(stored) == len(wanted) and all(
            _holds(a, b) for a, b in zip(stored, wanted, strict=True))
    return stored == wanted


def _cli(midway: Midway, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "d8registry", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=midway.env)


def test_status_live_reads_what_the_dump_holds(midway):
    live = _cli(midway, "status", "--live", "--kubeconfig", midway.kubeconfig)
    assert live.returncode == 0, live.stderr
    from_file = _cli(midway, "status", "--dump", str(midway.cluster_file))
    assert from_file.returncode == 0, from_file.stderr
    assert live.stdout == from_file.stdout
    assert live.stdout.startswith("Mode: Unmanaged \u2192 Direct (switching)")
    for node in ("master-0", "master-1", "master-2", "worker-0", "worker-1"):
        assert f"\n{node} " in live.stdout


def test_status_live_names_a_missing_kubeconfig(midway, tmp_path):
    proc = _cli(midway, "status", "--live", "--kubeconfig", str(tmp_path / "absent"))
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"d8registry: kubeconfig {tmp_path / 'absent'} does not exist"]


def test_plan_live_plans_on_the_live_cluster(midway):
    live = _cli(midway, "plan", "--live", "--kubeconfig", midway.kubeconfig, "--set", "mode=Direct")
    assert live.returncode == 0, live.stdout + live.stderr
    assert "  allowed: Unmanaged -> Direct\n" in live.stdout
    assert "reached Ready." in live.stdout
    assert LICENSE not in live.stdout


def test_dump_live_keeps_everything_with_show_secrets(midway, tmp_path):
    out = tmp_path / "cluster.yaml"
    proc = _cli(midway, "dump", "--live", "--kubeconfig", midway.kubeconfig, "--show-secrets", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    dumped = cluster_mod.load(out)
    assert dumped.globals["clusterConfiguration"] == midway.globals["clusterConfiguration"]
    want = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in midway.objects}
    got = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in dumped.objects}
    assert set(got) == set(want)
    for key, obj in want.items():
        assert got[key].get("data") == obj.get("data"), key
        assert (got[key]["metadata"].get("labels") or {}) == (obj["metadata"].get("labels") or {}), key
        for field in ("spec", "status"):
            if key[0] != "Pod":  # the pods got a container and defaults to be accepted at all
                assert _holds(got[key].get(field), obj.get(field)), (key, field)


def test_a_redacted_dump_holds_no_secret_and_still_simulates_to_ready(midway, tmp_path):
    out = tmp_path / "cluster.yaml"
    proc = _cli(midway, "dump", "--live", "--kubeconfig", midway.kubeconfig, "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    basic = base64.b64encode(f"license-token:{LICENSE}".encode()).decode()
    assert LICENSE not in text and basic not in text
    assert midway.ca_key not in text and base64.b64encode(midway.ca_key.encode()).decode() not in text
    state = next(o for o in cluster_mod.load(out).objects if o["metadata"]["name"] == "registry-state")
    assert base64.b64decode(state["data"]["target_mode"]).decode() == "Direct"

    sim = _cli(midway, "simulate", "--cluster", str(out), "--set", "mode=Direct", "--in-process", "--json",
               timeout=900)
    assert sim.returncode == 0, sim.stdout[-3000:] + sim.stderr[-3000:]
    [result] = json.loads(sim.stdout)
    assert result["outcome"] == "ready"

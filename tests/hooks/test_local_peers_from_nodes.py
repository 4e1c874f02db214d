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
"""Local peers as the orchestrator derives them from Node objects through its own jqFilter (SPEC 5.8, 10.2):
a master whose InternalIP is not a plain IPv4 address never reaches any regsync.yaml, every other master
pulls from exactly its peers, and Node order does not change a byte."""

from __future__ import annotations

import copy

import pytest
import yaml
from d8registry import cluster as cluster_mod
from d8registry.operator.module import ModuleHarness

HOSTILE = ["10.128.0.12\nsync: []", "10.128.0.12; rm -rf /", "{{ .Env.HOME }}", "10.128.0.012", "fe80::1"]


def _local_files(repo_root, objects: list[dict], globals_: dict) -> dict[str, dict]:
    harness = ModuleHarness(repo_root, objects, globals_, in_process=True,
                            env={"REGISTRY_FAKE_NOW": "2026-11-27T10:00:00Z"})
    harness.synchronize()
    harness.before_helm()
    checker = harness.module_values["internal"]["checker"]
    checker["state"] = {"version": checker["params"]["version"], "ready": True, "message": "Mode: Default"}
    harness.before_helm()
    nodes = harness.module_values["internal"]["orchestrator"]["state"]["node_services"]["nodes"]
    return {name: entry["files"] for name, entry in nodes.items()}


def _local_cluster():
    return cluster_mod.load().with_registry_settings({"mode": "Local"})


def _set_ip(objects: list[dict], node: str, ip: str) -> None:
    obj = next(o for o in objects if o.get("kind") == "Node" and o["metadata"]["name"] == node)
    for address in obj["status"]["addresses"]:
        if address["type"] == "InternalIP":
            address["address"] = ip


def test_every_master_pulls_from_the_others(repo_root):
    cluster = _local_cluster()
    files = _local_files(repo_root, cluster.objects, cluster.globals)
    ips = {"master-0": "10.128.0.10", "master-1": "10.128.0.11", "master-2": "10.128.0.12"}
    assert set(files) == set(ips)
    for name, own in ips.items():
        config = yaml.safe_load(files[name]["regsync.yaml"])
        peers = sorted(ip for n, ip in ips.items() if n != name)
        assert [s["source"] for s in config["sync"]] == [f"{p}:5001" for p in peers]
        assert {s["target"] for s in config["sync"]} == {f"{own}:5001"}
    # Node order is not the peers' order: reversed Node objects render the same files (a fresh run has fresh
    # passwords and CA, so those are left out of the comparison)
    reordered = copy.deepcopy(cluster.objects)
    nodes = [o for o in reordered if o.get("kind") == "Node"]
    others = [o for o in reordered if o.get("kind") != "Node"]
    again = _local_files(repo_root, others + nodes[::-1], cluster.globals)
    assert {n: _shape(f["regsync.yaml"]) for n, f in again.items()} == {n: _shape(f["regsync.yaml"])
                                                                          for n, f in files.items()}


def _shape(text: str) -> dict:
    config = yaml.safe_load(text)
    for cred in config["creds"]:
        cred.pop("pass")
        cred.pop("regcert")
    return config


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_hostile_internal_ip_never_reaches_regsync(repo_root, hostile):
    cluster = _local_cluster()
    objects = copy.deepcopy(cluster.objects)
    _set_ip(objects, "master-2", hostile)
    files = _local_files(repo_root, objects, cluster.globals)
    assert "master-2" not in files
    for name, own, peer in (("master-0", "10.128.0.10", "10.128.0.11"), ("master-1", "10.128.0.11", "10.128.0.10")):
        text = files[name]["regsync.yaml"]
        config = yaml.safe_load(text)
        assert config["sync"] == [{"source": f"{peer}:5001", "target": f"{own}:5001", "type": "registry"}]
        assert hostile not in text and "10.128.0.12" not in text

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
"""`plan` plays alike nodes through one of them (cli/d8registry/alike.py); what it prints for every node
is what playing every node (`--all-nodes`) prints, on a cluster with several kinds of workers."""

from __future__ import annotations

import copy
import re
import subprocess
import sys

import pytest
import yaml
from d8registry import cluster as cluster_mod

HEADER = re.compile(r"^  (\S+)(?: and (\d+) alike nodes)?:$")


def _clone(document: dict, source: str, name: str, address: str) -> dict:
    node = copy.deepcopy(next(o for o in document["objects"]
                              if o.get("kind") == "Node" and o["metadata"]["name"] == source))
    node["metadata"]["name"] = name
    node["metadata"]["labels"]["kubernetes.io/hostname"] = name
    node["status"]["addresses"] = [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}]
    document["objects"].append(node)
    return node


@pytest.fixture(scope="module")
def mixed_cluster(tmp_path_factory) -> str:
    """3 masters; workers on containerd 1.6 (config v2) and 2.x (v3); two tainted ones; one with a label of
    its own; one that a Pod names (so it is not interchangeable)."""
    document = yaml.safe_load(cluster_mod.DEFAULT_CLUSTER.read_text())
    _clone(document, "worker-0", "worker-0b", "10.128.1.2")
    _clone(document, "worker-0", "worker-0c", "10.128.1.3")
    _clone(document, "worker-1", "worker-1b", "10.128.1.4")
    for index, name in enumerate(("worker-t0", "worker-t1")):
        node = _clone(document, "worker-0", name, f"10.128.1.{10 + index}")
        node["spec"] = {"taints": [{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]}
    _clone(document, "worker-0", "worker-l0", "10.128.1.20")["metadata"]["labels"]["example.com/rack"] = "r2"
    _clone(document, "worker-0", "worker-p", "10.128.1.30")
    document["objects"].append({"apiVersion": "v1", "kind": "Pod",
                                "metadata": {"name": "app-1", "namespace": "default", "labels": {"app": "app"}},
                                "spec": {"nodeName": "worker-p"}, "status": {}})
    path = tmp_path_factory.mktemp("alike") / "cluster.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def _plan(cluster: str, *extra: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "d8registry", "plan", "--cluster", cluster, "--set", "mode=Proxy",
                           *extra], capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _expanded(text: str) -> tuple[str, dict[str, list[str]]]:
    """The plan with each group written out node by node (sorted by name, as --all-nodes prints them),
    the closing 'Played' note dropped; and the groups found."""
    head, rest = text.split("Nodes (files under /etc/containerd/registry.d and static pods):\n", 1)
    nodes_part, tail = rest.split("Objects rendered by the chart:\n", 1)
    blocks: dict[str, list[str]] = {}
    groups: dict[str, list[str]] = {}
    current: list[str] = []
    for line in nodes_part.splitlines():
        match = HEADER.match(line)
        if match:
            current = [match.group(1)]
            blocks[match.group(1)] = []
            if match.group(2):
                groups[match.group(1)] = []
        elif line.startswith("    alike: ") and current[0] in groups:
            groups[current[0]] += line[len("    alike: "):].split()
        else:
            blocks[current[0]].append(line)
    body = {}
    for name, lines in blocks.items():
        for member in [name, *groups.get(name, [])]:
            body[member] = [f"  {member}:", *lines]
    for name, members in groups.items():
        assert len(members) == int(HEADER.match(f"  {name} and {len(members)} alike nodes:").group(2))
    tail = "".join(line for line in tail.splitlines(keepends=True) if not line.startswith("Played "))
    nodes = "".join(line + "\n" for name in sorted(body) for line in body[name])
    return head + "Nodes (files under /etc/containerd/registry.d and static pods):\n" + nodes + \
        "Objects rendered by the chart:\n" + tail, groups


def test_alike_nodes_plan_as_every_node_played_on_its_own(helm_bin, mixed_cluster):
    reduced = _plan(mixed_cluster)
    full = _plan(mixed_cluster, "--all-nodes")
    expanded, groups = _expanded(reduced)
    assert groups == {"worker-0": ["worker-0b", "worker-0c"], "worker-1": ["worker-1b"],
                      "worker-t0": ["worker-t1"]}, reduced
    assert "Played 8 of 12 nodes: each group of alike nodes through its first node" in reduced
    assert "alike" not in full and "Played" not in full
    assert expanded == full

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
"""cli/d8registry/alike.py: which nodes `plan` may play through one of them, and when a played switch
shows that it may not. The whole plan against --all-nodes is tests/cli/test_plan_alike_nodes.py."""

from __future__ import annotations

import base64
import copy
from pathlib import Path

import pytest
import yaml
from d8registry import alike
from d8registry.cluster import DEFAULT_CLUSTER, Cluster

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def filters() -> list[str]:
    return alike.node_filters(REPO)


def _cluster(*workers: tuple[str, str], extra: list[dict] = ()) -> Cluster:
    """The example cluster's masters and worker-0 cloned under each (name, InternalIP)."""
    document = yaml.safe_load(DEFAULT_CLUSTER.read_text())
    template = next(o for o in document["objects"] if o.get("kind") == "Node" and o["metadata"]["name"] == "worker-0")
    objects = [o for o in document["objects"] if not (o.get("kind") == "Node" and o["metadata"]["name"].startswith("w"))]
    for name, address in workers:
        node = copy.deepcopy(template)
        node["metadata"]["name"] = name
        node["metadata"]["labels"]["kubernetes.io/hostname"] = name
        node["status"]["addresses"] = [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}]
        objects.append(node)
    return Cluster(globals=document["globals"], objects=objects + list(extra))


def _node(cluster: Cluster, name: str) -> dict:
    return next(o for o in cluster.objects if o.get("kind") == "Node" and o["metadata"]["name"] == name)


def test_workers_equal_but_for_name_and_address_form_one_group_and_masters_never_do(filters):
    cluster = _cluster(("w-a", "10.0.0.2"), ("w-b", "10.0.0.3"), ("w-c", "10.0.0.4"))
    assert alike.groups(cluster, filters) == {"w-a": ["w-b", "w-c"]}
    assert [n["metadata"]["name"] for n in alike.reduced(cluster, {"w-a": ["w-b", "w-c"]}).objects
            if n.get("kind") == "Node"] == ["master-0", "master-1", "master-2", "w-a"]


def test_a_label_annotation_or_taint_of_its_own_keeps_a_node_apart(filters):
    cluster = _cluster(("w-a", "10.0.0.2"), ("w-b", "10.0.0.3"), ("w-c", "10.0.0.4"), ("w-d", "10.0.0.5"))
    _node(cluster, "w-b")["metadata"]["labels"]["node.deckhouse.io/group"] = "frontend"
    _node(cluster, "w-c")["metadata"]["annotations"]["node.deckhouse.io/containerd-config-version"] = "3"
    _node(cluster, "w-d")["spec"] = {"taints": [{"key": "dedicated", "effect": "NoSchedule"}]}
    assert alike.groups(cluster, filters) == {}


def test_a_node_named_or_addressed_elsewhere_is_played_on_its_own(filters):
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "registry-node-config-w-b",
                                                                 "namespace": "d8-system"}}
    cluster = _cluster(("w-a", "10.0.0.2"), ("w-b", "10.0.0.3"), ("w-c", "10.0.0.4"), ("w-d", "10.0.0.20"),
                       extra=[secret])
    _node(cluster, "w-c")["metadata"]["annotations"]["example.com/peer"] = "10.0.0.4:7000"   # its own address
    # 10.0.0.2 is named nowhere: 10.0.0.20 (another node's address) does not count as naming it
    assert alike.groups(cluster, filters) == {"w-a": ["w-d"]}
    assert alike.groups(cluster, filters, single={"w-d"}) == {}


def test_a_played_switch_that_names_the_representative_is_a_leak():
    cluster = _cluster(("w-a", "10.0.0.2"))
    node = _node(cluster, "w-a")
    mirror = {"kind": "Pod", "metadata": {"name": "registry-lb-w-a", "namespace": "kube-system",
                                          "ownerReferences": [{"kind": "Node", "name": "w-a"}]}}
    clean = {"etc/containerd/registry.d/x/hosts.toml": 'server = "https://10.0.0.20:5001"\n# 10.0.0.21.\n'}
    assert not alike.leaks(node, [clean], [[node, mirror]])
    assert alike.leaks(node, [{"etc/containerd/registry.d/x/hosts.toml": 'server = "https://10.0.0.2:5001"\n'}], [])
    config = {"kind": "ConfigMap", "metadata": {"name": "peers"}, "data": {"w-a": "yes"}}
    assert alike.leaks(node, [clean], [[node, config]])
    state = {"kind": "Secret", "metadata": {"name": "registry-state", "namespace": "d8-system"},
             "data": {"state": base64.b64encode(b'{"waiting": ["w-a"]}').decode()}}
    assert alike.leaks(node, [clean], [[node, state]])

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
"""Snapshot selection and binding-context shapes, following shell-operator's rules."""

from __future__ import annotations

from d8registry.operator import bindings

SECRET_BINDING = {
    "name": "secrets",
    "apiVersion": "v1",
    "kind": "Secret",
    "namespace": {"nameSelector": {"matchNames": ["d8-system"]}},
    "labelSelector": {"matchExpressions": [{"key": "type", "operator": "In", "values": ["a", "b"]}]},
    "jqFilter": ".metadata.name",
}


def _secret(name, namespace="d8-system", labels=None, type_="Opaque"):
    return {"apiVersion": "v1", "kind": "Secret", "type": type_,
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}}}


def test_jq_results_follow_shell_operator_rule():
    obj = {"items": [1, 2], "one": 5}
    assert bindings.apply_jq_filter(".missing | select(. != null)", obj) is None
    assert bindings.apply_jq_filter(".one", obj) == 5
    assert bindings.apply_jq_filter(".items[]", obj) == [1, 2]


def test_selectors_filter_objects():
    objects = [
        _secret("keep-a", labels={"type": "a"}),
        _secret("keep-b", labels={"type": "b"}),
        _secret("wrong-label", labels={"type": "c"}),
        _secret("wrong-ns", namespace="default", labels={"type": "a"}),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "d8-system", "labels": {"type": "a"}}},
    ]
    snap = bindings.snapshot(SECRET_BINDING, objects)
    assert [item["filterResult"] for item in snap] == ["keep-a", "keep-b"]


def test_field_and_name_selectors():
    binding = {"name": "tls", "apiVersion": "v1", "kind": "Secret",
               "nameSelector": {"matchNames": ["x", "y"]},
               "fieldSelector": {"matchExpressions": [{"field": "type", "operator": "Equals", "value": "kubernetes.io/tls"}]}}
    objects = [_secret("x", type_="kubernetes.io/tls"), _secret("y"), _secret("z", type_="kubernetes.io/tls")]
    assert [i["object"]["metadata"]["name"] for i in bindings.snapshot(binding, objects)] == ["x"]


def test_grouped_bindings_synchronize_as_one_group_context():
    config = {"configVersion": "v1", "kubernetes": [
        {**SECRET_BINDING, "group": "g"},
        {"name": "nodes", "apiVersion": "v1", "kind": "Node", "group": "g", "jqFilter": ".metadata.name"},
        {"name": "solo", "apiVersion": "v1", "kind": "Node", "jqFilter": ".metadata.name"},
        {"name": "quiet", "apiVersion": "v1", "kind": "Node", "executeHookOnSynchronization": False},
    ]}
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    contexts = bindings.synchronization_contexts(config, [node, _secret("s", labels={"type": "a"})])
    assert [(c["binding"], c["type"]) for c in contexts] == [("g", "Group"), ("solo", "Synchronization")]
    assert set(contexts[0]["snapshots"]) == {"secrets", "nodes"}
    assert contexts[1]["objects"] == [{"object": node, "filterResult": "n1"}]


def test_event_contexts_respect_execute_hook_on_event():
    config = {"configVersion": "v1", "kubernetes": [
        {"name": "restore_only", "apiVersion": "v1", "kind": "Secret", "executeHookOnEvent": []},
        {"name": "live", "apiVersion": "v1", "kind": "Secret", "jqFilter": ".metadata.name"},
    ]}
    secret = _secret("s")
    assert bindings.event_context(config, "restore_only", "Added", secret, [secret]) is None
    context = bindings.event_context(config, "live", "Modified", secret, [secret])
    assert context["type"] == "Event" and context["watchEvent"] == "Modified" and context["filterResult"] == "s"


def test_before_helm_context_carries_every_kubernetes_snapshot():
    config = {"configVersion": "v1", "beforeHelm": 10, "kubernetes": [
        {"name": "a", "apiVersion": "v1", "kind": "Secret"}, {"name": "b", "apiVersion": "v1", "kind": "Node"}]}
    context = bindings.helm_phase_context(config, "beforeHelm", [])
    assert context == {"binding": "beforeHelm", "snapshots": {"a": [], "b": []}}


# -- the real hooks' bindings against the spec's tables (SPEC 7.1, 7.2) ----------------------------
# Each hook's --config is read through the real protocol; selectors are compared exactly, and each
# jqFilter is run (with the jq package, as shell-operator would) on objects whose expected result
# the spec's table spells out.

import pytest  # noqa: E402

D8 = {"nameSelector": {"matchNames": ["d8-system"]}}
ORCHESTRATOR_QUEUE = "/modules/registry/orchestrator"
READY_POD_STATUS = {"conditions": [{"type": "Ready", "status": "True"}]}

SPEC_7_2 = {
    "module_config": {
        "apiVersion": "deckhouse.io/v1alpha1", "kind": "ModuleConfig", "nameSelector": {"matchNames": ["deckhouse"]},
        "jqFilter": "{generation: .metadata.generation, registry: (.spec.settings.registry // null)}",
    },
    "state_secrets": {
        "apiVersion": "v1", "kind": "Secret", "namespace": D8, "executeHookOnEvent": [],
        "nameSelector": {"matchNames": ["registry-state", "registry-private-state", "registry-pki", "registry-user-ro",
                                        "registry-user-rw", "registry-user-mirror-puller",
                                        "registry-user-mirror-pusher", "registry-init"]},
        "jqFilter": '{name: .metadata.name, data: .data, '
                    'applied: ((.metadata.annotations // {}) | has("registry.deckhouse.io/is-applied"))}',
    },
    "reusable_certs": {
        "apiVersion": "v1", "kind": "Secret", "namespace": D8, "executeHookOnEvent": [],
        "labelSelector": {"matchLabels": {"app": "registry"}, "matchExpressions": [
            {"key": "type", "operator": "In",
             "values": ["registry-node-services-config", "registry-incluster-proxy-config"]}]},
        "jqFilter": '{name: .metadata.name, crt: .data["front.crt"], key: .data["front.key"]}',
    },
    "deckhouse_registry": {
        "apiVersion": "v1", "kind": "Secret", "namespace": D8, "nameSelector": {"matchNames": ["deckhouse-registry"]},
        "jqFilter": ".data",
    },
    "nodes": {"apiVersion": "v1", "kind": "Node"},
    "nodeservices_pods": {
        "apiVersion": "v1", "kind": "Pod", "namespace": D8,
        "labelSelector": {"matchLabels": {"app": "registry", "component": "registry-service", "type": "node-services"}},
    },
    "incluster_proxy": {
        "apiVersion": "apps/v1", "kind": "Deployment", "namespace": D8,
        "nameSelector": {"matchNames": ["registry-incluster-proxy"]},
    },
    "deckhouse_pods": {
        "apiVersion": "v1", "kind": "Pod", "namespace": D8,
        "labelSelector": {"matchLabels": {"app": "deckhouse", "leader": "true"}},
    },
    "node_group_configurations": {
        "apiVersion": "deckhouse.io/v1alpha1", "kind": "NodeGroupConfiguration",
        "nameSelector": {"matchNames": ["d8-registry-containerd.sh", "d8-registry-node-lb.sh",
                                        "d8-registry-nodeservices.sh"]},
    },
}
SELECTOR_FIELDS = ("apiVersion", "kind", "namespace", "nameSelector", "labelSelector", "fieldSelector",
                   "executeHookOnEvent", "executeHookOnSynchronization")

# (binding, object, the result the spec's table describes)
SPEC_7_2_RESULTS = [
    ("nodes", {"metadata": {"name": "m0", "labels": {"node-role.kubernetes.io/control-plane": "",
                                                     "node.deckhouse.io/containerd-config-registry": "default"},
                            "annotations": {"registry.deckhouse.io/version": "v1"}},
               "status": {"addresses": [{"type": "Hostname", "address": "m0"},
                                        {"type": "InternalIP", "address": "10.0.0.1"},
                                        {"type": "InternalIP", "address": "10.0.0.2"}], **READY_POD_STATUS}},
     {"name": "m0", "ip": "10.0.0.1", "master": True, "ready": True, "version": "v1", "containerdConfig": "default"}),
    ("nodes", {"metadata": {"name": "w0"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}},
     {"name": "w0", "ip": "", "master": False, "ready": False, "version": "unknown", "containerdConfig": ""}),
    ("nodeservices_pods", {"metadata": {"name": "p", "annotations": {"registry.deckhouse.io/config-version": "c"},
                                        "ownerReferences": [{"kind": "Node", "name": "m0"}]},
                           "spec": {"nodeName": "m0"}, "status": READY_POD_STATUS},
     {"node": "m0", "ready": True, "configVersion": "c", "mirror": True}),
    ("nodeservices_pods", {"metadata": {"name": "p"}, "spec": {"nodeName": "m1"}},
     {"node": "m1", "ready": False, "configVersion": "", "mirror": False}),
    ("incluster_proxy", {"metadata": {"name": "registry-incluster-proxy", "generation": 4,
                                      "annotations": {"registry.deckhouse.io/version": "pv"}},
                         "spec": {"replicas": 3},
                         "status": {"observedGeneration": 3, "replicas": 4, "updatedReplicas": 2, "readyReplicas": 3,
                                    "availableReplicas": 1}},
     {"version": "pv", "generation": 4, "observedGeneration": 3, "replicas": 3, "total": 4, "updated": 2, "ready": 3,
      "available": 1}),
    ("deckhouse_pods", {"metadata": {"name": "deckhouse-1", "annotations": {"checksum/registry-version": "h"}},
                        "status": READY_POD_STATUS},
     {"name": "deckhouse-1", "ready": True, "registryVersion": "h"}),
    ("node_group_configurations", {"metadata": {"name": "d8-registry-containerd.sh",
                                                "annotations": {"registry.deckhouse.io/config-version": "n"}}},
     {"name": "d8-registry-containerd.sh", "version": "n"}),
    ("state_secrets", {"metadata": {"name": "registry-init", "annotations": {"registry.deckhouse.io/is-applied": ""}},
                       "data": {"config": "e30="}},
     {"name": "registry-init", "data": {"config": "e30="}, "applied": True}),
]


@pytest.fixture(scope="module")
def orchestrator_config(repo_root):
    from d8registry.operator import protocol

    return protocol.hook_config(repo_root / "hooks" / "orchestrator.py")


def test_orchestrator_has_exactly_the_spec_bindings(orchestrator_config):
    assert orchestrator_config["beforeHelm"] == 10
    assert [b["name"] for b in orchestrator_config["kubernetes"]] == list(SPEC_7_2)
    for binding in orchestrator_config["kubernetes"]:
        assert binding["group"] == "orchestrator" and binding["queue"] == ORCHESTRATOR_QUEUE, binding["name"]
        assert binding["keepFullObjectsInMemory"] is False, binding["name"]
        wanted = SPEC_7_2[binding["name"]]
        for key in SELECTOR_FIELDS:
            assert binding.get(key) == wanted.get(key), (binding["name"], key)
        if "jqFilter" in wanted:
            assert binding["jqFilter"] == wanted["jqFilter"], binding["name"]


@pytest.mark.parametrize(("name", "obj", "expected"), SPEC_7_2_RESULTS,
                         ids=[f"{name}-{i}" for i, (name, _o, _e) in enumerate(SPEC_7_2_RESULTS)])
def test_orchestrator_jq_filters_give_the_spec_results(orchestrator_config, name, obj, expected):
    binding = next(b for b in orchestrator_config["kubernetes"] if b["name"] == name)
    assert bindings.apply_jq_filter(binding["jqFilter"], obj) == expected


def test_checker_hooks_have_exactly_the_spec_bindings(repo_root):
    from d8registry.operator import protocol

    init = protocol.hook_config(repo_root / "hooks" / "checker_init.py")
    (state,) = init["kubernetes"]
    assert {k: state.get(k) for k in SELECTOR_FIELDS} == {
        "apiVersion": "v1", "kind": "Secret", "namespace": D8,
        "nameSelector": {"matchNames": ["registry-checker-state"]}, "labelSelector": None, "fieldSelector": None,
        "executeHookOnEvent": [], "executeHookOnSynchronization": False}
    encoded = {"metadata": {"name": "registry-checker-state"}, "data": {"state": "cw==", "params": "cA=="}}
    assert bindings.apply_jq_filter(state["jqFilter"], encoded) == {"state": "cw==", "params": "cA=="}
    loop = protocol.hook_config(repo_root / "hooks" / "checker_loop.py")
    (deployment,) = loop["kubernetes"]
    assert {k: deployment.get(k) for k in SELECTOR_FIELDS} == {
        "apiVersion": "apps/v1", "kind": "Deployment", "namespace": D8,
        "nameSelector": {"matchNames": ["deckhouse"]}, "labelSelector": None, "fieldSelector": None,
        "executeHookOnEvent": [], "executeHookOnSynchronization": False}
    deckhouse = {"metadata": {"name": "deckhouse"}, "spec": {"template": {"spec": {
        "containers": [{"name": "deckhouse", "image": "r/d:v1", "args": ["x"]}],
        "initContainers": [{"name": "init", "image": "r/i@sha256:" + "a" * 64}]}}}}
    assert bindings.apply_jq_filter(deployment["jqFilter"], deckhouse) == [
        {"kind": "containers", "name": "deckhouse", "image": "r/d:v1"},
        {"kind": "initContainers", "name": "init", "image": "r/i@sha256:" + "a" * 64}]

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

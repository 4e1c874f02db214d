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
"""Bootstrap adoption (SPEC 4.10.3) through the real hooks: what the installer leaves behind is
`registry-init` and a `deckhouse-registry` already at the fixed address, and no `registry-state`."""

from __future__ import annotations

import base64
import copy

import pytest
import yaml
from d8registry import helm
from d8registry.operator.module import ModuleHarness

UPSTREAM = {"imagesRepo": "registry.deckhouse.ru/deckhouse/ee", "license": "adoption-license"}
SETTINGS = {
    "Direct": {"mode": "Direct", "direct": UPSTREAM},
    "Proxy": {"mode": "Proxy", "proxy": UPSTREAM},
    "Local": {"mode": "Local"},
}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _key(obj):
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def _installed(cluster, mode: str):
    """The example cluster as the installer leaves it for `mode`."""
    from lib import deckhouse_registry, pki, users
    from lib.clock import parse_rfc3339

    ca, _ = pki.ensure_ca(None, parse_rfc3339("2026-11-27T09:00:00Z"))
    ro = users.ensure_user("ro", None)
    rw = users.ensure_user("rw", None)
    if mode == "Direct":
        data = deckhouse_registry.managed(ca.cert, "license-token", UPSTREAM["license"])
    else:
        data = deckhouse_registry.managed(ca.cert, ro["name"], ro["password"])
    clone = cluster.with_registry_settings(SETTINGS[mode])
    for obj in clone.objects:
        if obj["kind"] == "Secret" and obj["metadata"]["name"] == "deckhouse-registry":
            obj["data"] = {k: _b64(v) for k, v in data.items()}
    config = {"ca": {"cert": ca.cert, "key": ca.key},
              "ro_user": {"name": ro["name"], "password": ro["password"], "password_hash": ro["password_hash"]},
              "rw_user": {"name": rw["name"], "password": rw["password"], "password_hash": rw["password_hash"]}}
    clone.objects.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                          "metadata": {"name": "registry-init", "namespace": "d8-system"},
                          "data": {"config": _b64(yaml.safe_dump(config))}})
    return clone, ca, ro


def _apply(objects: list[dict], rendered: list[dict], operations: list[dict]) -> list[dict]:
    """Objects after Helm applied the chart and the hook's merge patches went through."""
    from d8registry.sim.store import _merge

    store = {_key(o): copy.deepcopy(o) for o in objects}
    store.update({_key(o): o for o in rendered})
    for op in operations:
        key = (op["kind"], op.get("namespace") or "", op["name"])
        if op.get("operation") == "MergePatch" and key in store:
            store[key] = _merge(store[key], op["mergePatch"])
    return list(store.values())


def _state(harness):
    return harness.module_values["internal"]["orchestrator"]["state"]


@pytest.mark.parametrize("mode", ["Direct", "Proxy", "Local"])
def test_installer_hand_off_is_adopted_and_survives_a_restart(example_cluster, repo_root, helm_bin, mode):
    cluster, ca, ro = _installed(example_cluster, mode)
    env = {"REGISTRY_FAKE_NOW": "2026-11-27T10:00:00Z"}
    harness = ModuleHarness(repo_root, cluster.objects, cluster.globals, in_process=False, env=env)
    harness.before_helm()   # through the hook processes: restore must not refuse the hand-off
    state = _state(harness)
    assert (state["mode"], state["target_mode"]) == (mode, mode)
    assert state["pki"]["ca"]["cert"] == ca.cert, "the installer's CA is kept"
    if mode != "Direct":
        assert state["users"]["ro"]["password"] == ro["password"], "the installer's ro password is kept"
    assert {"operation": "MergePatch", "kind": "Secret", "name": "registry-init"}.items() <= {
        k: v for k, v in harness.kube_operations[-1].items() if k in ("operation", "kind", "name")}.items()
    harness.assert_converged(harness.hook("orchestrator"))

    rendered = helm.render(repo_root, harness.helm_values())
    names = {o["metadata"]["name"] for o in rendered}
    if mode == "Direct":
        assert "registry-incluster-proxy" in names, "the adopted in-cluster proxy keeps running"
    else:
        assert {f"registry-node-config-master-{i}" for i in range(3)} <= names, "adopted node services keep running"

    restarted = ModuleHarness(repo_root, _apply(harness.objects, rendered, harness.kube_operations),
                              harness.global_values, in_process=True, env=env)
    restarted.before_helm()
    after = _state(restarted)
    for key in ("mode", "target_mode", "pki", "users", "http_secret", "params", "node_config",
                "incluster_proxy", "node_services"):
        assert after.get(key) == state.get(key), key
    assert helm.render(repo_root, restarted.helm_values()) == rendered, "a restart renders exactly the same"


def test_adopted_proxy_can_switch_before_its_first_finalisation(example_cluster, repo_root, helm_bin):
    cluster, _ca, _ro = _installed(example_cluster, "Proxy")
    env = {"REGISTRY_FAKE_NOW": "2026-11-27T10:00:00Z"}
    harness = ModuleHarness(repo_root, cluster.objects, cluster.globals, in_process=True, env=env)
    harness.before_helm()
    rendered = helm.render(repo_root, harness.helm_values())
    objects = _apply(harness.objects, rendered, harness.kube_operations)
    for target in ({"mode": "Direct", "direct": UPSTREAM},
                   {"mode": "Unmanaged", "unmanaged": UPSTREAM}):
        harness.objects = [o for o in objects if o["kind"] != "ModuleConfig"] + [
            cluster.with_registry_settings(target).module_config()]
        harness.before_helm()    # used to raise: Proxy node services need the upstream registry
        state = _state(harness)
        assert state["target_mode"] == target["mode"] and state["mode"] == "Proxy"
        assert state["node_services"]["flavour"] == "Proxy" and state["node_services"]["nodes"], \
            "the adopted node services keep running while the switch starts"

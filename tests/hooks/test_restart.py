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
"""A Deckhouse restart mid-switch: values are gone, only the rendered Secrets remain."""

from __future__ import annotations

import copy
import json

import yaml
from d8registry import helm
from d8registry.operator.module import ModuleHarness

PROXY = {"mode": "Proxy", "proxy": {"imagesRepo": "registry.deckhouse.ru/deckhouse/ee", "license": "restart-license"}}


def _key(obj):
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def _apply(objects: list[dict], rendered: list[dict]) -> list[dict]:
    store = {_key(o): o for o in objects}
    store.update({_key(o): o for o in rendered})
    return list(store.values())


def _checker_ready(harness: ModuleHarness) -> None:
    """Stand in for the checker hooks: report the current params as fully checked."""
    checker = harness.module_values["internal"]["checker"]
    checker["state"] = {"version": checker["params"]["version"], "ready": True, "message": "Mode: Default"}


def _state(harness):
    return harness.module_values["internal"]["orchestrator"]["state"]


def test_restart_mid_switch_restores_identical_state(make_harness, repo_root, helm_bin):
    harness = make_harness(PROXY, in_process=True)
    harness.before_helm()
    _checker_ready(harness)
    harness.before_helm()
    before = copy.deepcopy(_state(harness))
    assert before["target_mode"] == "Proxy" and before["mode"] == "Unmanaged"
    assert before["node_services"]["nodes"], "the switch got as far as starting node services"
    rendered = helm.render(repo_root, harness.helm_values())
    leaked = json.dumps([o for o in rendered if o["kind"] != "Secret"])
    assert before["pki"]["ca"]["key"] not in leaked

    restarted = ModuleHarness(repo_root, _apply(harness.objects, rendered), harness.global_values,
                              in_process=True, env=dict(harness.env))
    restarted.module_values["internal"]["checker"] = copy.deepcopy(harness.module_values["internal"]["checker"])
    restarted.before_helm()
    after = _state(restarted)
    for key in ("mode", "target_mode", "target_legacy", "params", "pki", "http_secret", "users", "node_config",
                "registry_service", "ingress_enabled"):
        assert after.get(key) == before.get(key), key
    assert {n: e["version"] for n, e in after["node_services"]["nodes"].items()} == \
        {n: e["version"] for n, e in before["node_services"]["nodes"].items()}
    assert [c["type"] for c in after["conditions"]] == [c["type"] for c in before["conditions"]]
    restarted.assert_converged(restarted.hook("orchestrator"))


def test_corrupted_state_secret_fails_closed(make_harness, repo_root, helm_bin):
    import pytest
    from d8registry.operator.protocol import HookFailed

    harness = make_harness(PROXY, in_process=True)
    harness.before_helm()
    rendered = helm.render(repo_root, harness.helm_values())
    for obj in rendered:
        if obj["metadata"]["name"] == "registry-state":
            obj["data"]["mode"] = "!!!not-base64"
    restarted = ModuleHarness(repo_root, _apply(harness.objects, rendered), harness.global_values, in_process=True)
    with pytest.raises(HookFailed, match="Cannot restore state from Secret d8-system/registry-state"):
        restarted.before_helm()


def test_state_secret_never_holds_secret_material(make_harness, repo_root, helm_bin):
    harness = make_harness(PROXY, in_process=True)
    harness.before_helm()
    _checker_ready(harness)
    harness.before_helm()
    result = harness.results[-1][1]
    state = _state(harness)
    secrets = ["restart-license", state["pki"]["ca"]["key"], state["http_secret"],
               *(u["password"] for u in state["users"].values()), *(u["password_hash"] for u in state["users"].values())]
    for files in state["node_services"]["nodes"].values():
        secrets.append(files["files"]["front.key"])
    rendered = helm.render(repo_root, harness.helm_values())
    state_secret = next(o for o in rendered if o["metadata"]["name"] == "registry-state")
    import base64

    visible = [base64.b64decode(v).decode() for v in state_secret["data"].values()]
    visible += [yaml.safe_dump(o) for o in rendered if o["kind"] != "Secret"]
    visible += [result.stderr, json.dumps(result.metrics)]
    for secret in secrets:
        for text in visible:
            assert secret not in text



def test_restart_after_the_upgrade_reads_old_enum_spellings(repo_root, helm_bin):
    """The Secrets of a module version before the CamelCase enums: lower-case containerd kind (and the payload
    version computed with it) and a dashed registry_service. A restart on them resumes the finished Proxy switch:
    the values carry the current spellings, the config is published again under the new spelling, every node
    applies it and the module is Ready, with the data plane untouched."""
    import base64

    from d8registry import cluster as cluster_mod
    from d8registry.operator.values_rules import validate_module_values
    from d8registry.sim.engine import Simulator
    from d8registry.sim.run import _hosts, cluster_registry
    from lib.hashing import version_of

    cluster = cluster_mod.load()
    sim = Simulator(repo_root, cluster, in_process=True, registry_hosts=_hosts([PROXY, cluster_registry(cluster)]))
    try:
        sim.set_registry(PROXY)
        assert sim.run_until_ready(max_ticks=80)
        before = copy.deepcopy(sim.state())
        assert before["registry_service"] == "NodeServices" and before["node_config"]["containerd"]["kind"] == "Final"
        hosts = before["node_config"]["containerd"]["hosts"]
        old_version = version_of({"kind": "final", "hosts": hosts})

        def rewrite(name, key, change):
            secret = sim.store.get("Secret", "d8-system", name)
            value = json.loads(base64.b64decode(secret["data"][key]))
            change(value)
            secret["data"][key] = base64.b64encode(json.dumps(value).encode()).decode()
            sim.store.apply(secret)

        def old_summary(summary):
            summary["registry_service"] = "node-services"
            summary["containerd_config"] = {"kind": "final", "version": old_version}

        def old_node_config(node_config):
            node_config["containerd"] = {"kind": "final", "hosts": hosts, "version": old_version}

        rewrite("registry-state", "state", old_summary)
        rewrite("registry-private-state", "node_config", old_node_config)
        pods_before = {p["metadata"]["name"]: p["metadata"].get("annotations") for p in sim.store.list("Pod")
                       if p["metadata"]["name"].startswith("registry-nodeservices-")}
        # Deckhouse restarts with the new module version: values are wiped, only the Secrets remain
        sim.harness.module_values = validate_module_values(sim.harness.openapi_dir, {})
        sim._started = False
        assert sim.run_until_ready(max_ticks=80, min_ticks=3)
        after = sim.state()
        assert after["registry_service"] == "NodeServices" and after["mode"] == "Proxy"
        assert after["node_config"]["containerd"] == before["node_config"]["containerd"]
        assert after["node_services"] == before["node_services"]
        assert {p["metadata"]["name"]: p["metadata"].get("annotations") for p in sim.store.list("Pod")
                if p["metadata"]["name"].startswith("registry-nodeservices-")} == pods_before
    finally:
        sim.close()

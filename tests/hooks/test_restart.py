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


OLD_KIND = {"None": "none", "Transitional": "transitional", "Final": "final"}
OLD_SERVICE = {"NodeServices": "node-services", "InClusterProxy": "incluster-proxy", "": ""}


def _with_old_spellings(rendered: list[dict]) -> list[dict]:
    """The state Secrets as a module version before the CamelCase enums wrote them."""
    import base64

    def recode(obj, key, change):
        value = json.loads(base64.b64decode(obj["data"][key]))
        change(value)
        obj["data"][key] = base64.b64encode(json.dumps(value).encode()).decode()

    def old_summary(summary):
        summary["registry_service"] = OLD_SERVICE[summary["registry_service"]]
        summary["containerd_config"]["kind"] = OLD_KIND[summary["containerd_config"]["kind"]]

    def old_node_config(node_config):
        node_config["containerd"]["kind"] = OLD_KIND[node_config["containerd"]["kind"]]

    rendered = copy.deepcopy(rendered)
    for obj in rendered:
        if obj["kind"] == "Secret" and obj["metadata"]["name"] == "registry-state":
            recode(obj, "state", old_summary)
        if obj["kind"] == "Secret" and obj["metadata"]["name"] == "registry-private-state":
            recode(obj, "node_config", old_node_config)
    return rendered


def test_restart_reads_state_persisted_with_old_enum_spellings(make_harness, repo_root, helm_bin):
    """A restart right after the upgrade finds lower-case/dashed enum values in the Secrets: it resumes with the
    CamelCase ones, keeps the published config version the nodes applied, and renders the same chart."""
    harness = make_harness(PROXY, in_process=True)
    harness.before_helm()
    _checker_ready(harness)
    harness.before_helm()
    before = copy.deepcopy(_state(harness))
    assert before["registry_service"] == "NodeServices"
    rendered = helm.render(repo_root, harness.helm_values())
    old = _with_old_spellings(rendered)
    assert old != rendered, "the fixture must actually hold old spellings"

    restarted = ModuleHarness(repo_root, _apply(harness.objects, old), harness.global_values,
                              in_process=True, env=dict(harness.env))
    restarted.module_values["internal"]["checker"] = copy.deepcopy(harness.module_values["internal"]["checker"])
    restarted.before_helm()
    after = _state(restarted)
    assert after["registry_service"] == before["registry_service"]
    assert after["node_config"] == before["node_config"]
    restarted.assert_converged(restarted.hook("orchestrator"))
    again = helm.render(repo_root, restarted.helm_values())
    assert {_key(o): o for o in again if o["kind"] != "Secret"} == \
        {_key(o): o for o in rendered if o["kind"] != "Secret"}

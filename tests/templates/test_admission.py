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
"""The admission objects (SPEC 3.7) as Helm renders them: one source for every refusal message, and the
params ConfigMap equal to what `plan` computes. Their behaviour is tested on a real API server
(tests/apiserver/test_admission.py)."""

from __future__ import annotations

import copy

import pytest
import yaml
from d8registry import helm
from lib import admission, messages

from .conftest import run_module

ADMISSION_MESSAGES = {value for name, value in vars(messages).items() if name.startswith("ADMISSION_")}


def _openapi_messages(repo_root) -> set[str]:
    schema = yaml.safe_load((repo_root / "openapi" / "registry-settings.yaml").read_text())
    found = {rule["message"] for rule in schema["x-deckhouse-validations"]}
    for section in ("direct", "proxy", "unmanaged"):
        found |= {rule["message"] for rule in schema["properties"][section]["x-deckhouse-validations"]}
    return found


@pytest.fixture(scope="module")
def values(repo_root, helm_bin):
    return run_module(repo_root, None).helm_values()


def _by_name(objects: list[dict], kind: str) -> dict[str, dict]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def test_policies_render_only_when_the_api_is_served(repo_root, values):
    without = {obj["kind"] for obj in helm.render(repo_root, values, api_versions=())}
    assert not without & {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    assert "ConfigMap" in without, "the params are rendered either way"


def test_policy_messages_are_the_spec_messages(repo_root, values):
    policies = _by_name(helm.render(repo_root, values), "ValidatingAdmissionPolicy")
    assert set(policies) == {"registry-moduleconfig-deckhouse", "registry-moduleconfig-registry"}
    deckhouse = [v["message"] for v in policies["registry-moduleconfig-deckhouse"]["spec"]["validations"]]
    registry = [v["message"] for v in policies["registry-moduleconfig-registry"]["spec"]["validations"]]
    assert len(deckhouse) == len(set(deckhouse)), "one validation per message"
    assert set(deckhouse) == (ADMISSION_MESSAGES - {messages.ADMISSION_DISABLE}) | _openapi_messages(repo_root)
    assert registry == [messages.ADMISSION_DISABLE]


def test_every_deckhouse_rule_is_guarded_by_changed(repo_root, values):
    """Unrelated edits of the deckhouse ModuleConfig are never blocked by an old value (SPEC 3.7)."""
    [policy] = [obj for obj in helm.render(repo_root, values) if obj["kind"] == "ValidatingAdmissionPolicy"
                and obj["metadata"]["name"] == "registry-moduleconfig-deckhouse"]
    for validation in policy["spec"]["validations"]:
        assert validation["expression"].startswith("!variables.changed || "), validation["message"]


def test_bindings_deny_with_the_params_configmap(repo_root, values):
    bindings = _by_name(helm.render(repo_root, values), "ValidatingAdmissionPolicyBinding")
    assert set(bindings) == {"registry-moduleconfig-deckhouse", "registry-moduleconfig-registry"}
    for name, binding in bindings.items():
        assert binding["spec"]["policyName"] == name
        assert binding["spec"]["validationActions"] == ["Deny"]
        assert binding["spec"]["paramRef"] == {"name": "registry-admission-params", "namespace": "d8-system",
                                               "parameterNotFoundAction": "Allow"}


@pytest.mark.parametrize(("state", "cluster_type", "bootstrapped"), [
    ({}, "Static", True),
    ({"mode": "Direct", "target_mode": "Proxy", "target_legacy": False}, "Static", True),
    ({"mode": "Local", "target_mode": "Unmanaged", "target_legacy": True}, "Cloud", False),
    ({"mode": "Unmanaged", "target_mode": "Unmanaged", "target_legacy": False}, "", True),
])
def test_params_configmap_is_what_plan_computes(repo_root, values, state, cluster_type, bootstrapped):
    values = copy.deepcopy(values)
    orchestrator = values["registry"]["internal"]["orchestrator"]
    orchestrator["state"] = {**{k: v for k, v in orchestrator.get("state", {}).items()
                                if k not in ("mode", "target_mode", "target_legacy")}, **state}
    values["global"]["clusterConfiguration"]["clusterType"] = cluster_type
    values["global"]["clusterIsBootstrapped"] = bootstrapped
    [params] = [obj for obj in helm.render(repo_root, values, api_versions=())
                if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "registry-admission-params"]
    assert params["metadata"]["namespace"] == "d8-system"
    assert params["data"] == admission.params(orchestrator["state"], values["global"])
    assert params["data"]["bootstrapped"] == ("true" if bootstrapped else "false")

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
"""The state machine against a model cluster: matrix, scenario, every stage's waiting and ready path."""

from __future__ import annotations

import copy
import json

import pytest
from lib import deckhouse_registry, stages
from lib.snapshots import Node

from .cluster_model import LICENSE, ClusterModel

REPO = "registry.deckhouse.ru/deckhouse/ee"
SETTINGS = {
    "unmanaged": {"mode": "Unmanaged", "unmanaged": {"imagesRepo": REPO, "license": LICENSE}},
    "legacy": None,
    "direct": {"mode": "Direct", "direct": {"imagesRepo": REPO, "license": LICENSE}},
    "proxy": {"mode": "Proxy", "proxy": {"imagesRepo": REPO, "license": LICENSE}},
    "local": {"mode": "Local"},
}
MODE_OF = {"unmanaged": "Unmanaged", "legacy": "Unmanaged", "direct": "Direct", "proxy": "Proxy", "local": "Local"}
REFUSED = {("proxy", "local"), ("local", "proxy"), ("local", "legacy")}


def reach(source: str) -> ClusterModel:
    model = ClusterModel()
    if source == "legacy":
        model.run()
    else:
        model.switch(SETTINGS[source])
    assert model.state["mode"] == MODE_OF[source]
    return model


def run_until(model: ClusterModel, condition: str, limit: int = 20) -> None:
    """Run until the pipeline has reached (evaluated) the given stage."""
    for _ in range(limit):
        model.run()
        if condition in model.conditions():
            return
    raise AssertionError(f"{condition} never reached: {model.conditions()}")


def assert_converged(model: ClusterModel) -> None:
    """A run on unchanged inputs changes nothing and asks for no Kubernetes operation."""
    before = copy.deepcopy(model.state)
    outcome = stages.reconcile(model.state, model.inputs())
    assert outcome.state == before
    assert outcome.registry_patch is None


@pytest.mark.parametrize("source", list(SETTINGS))
@pytest.mark.parametrize("target", list(SETTINGS))
def test_transition_matrix(source, target):
    model = reach(source)
    model.set_settings(SETTINGS[target])
    if (source, target) in REFUSED:
        outcome = model.run()
        text = f"mode transition from {MODE_OF[source]} to {MODE_OF[target]} not supported"
        assert model.conditions()["ErrTransitionNotSupported"] == ("True", "Error", text)
        assert model.conditions()["Ready"] == ("False", "Error", text)
        assert outcome.transition_not_supported
        assert model.state["mode"] == MODE_OF[source] and model.state["target_mode"] == MODE_OF[source]
        assert_converged(model)
        return
    model.run_until_ready()
    assert model.state["mode"] == MODE_OF[target]
    assert model.conditions()["Ready"] == ("True", "Ready", "")
    assert "ErrTransitionNotSupported" not in model.conditions()
    assert_converged(model)


def test_in_progress_rule_checks_the_running_target_too():
    model = reach("direct")
    model.checker = False            # keep Direct -> Proxy in progress
    model.set_settings(SETTINGS["proxy"])
    model.run()
    assert model.state["target_mode"] == "Proxy" and model.state["mode"] == "Direct"
    model.set_settings(SETTINGS["local"])
    model.run()
    assert model.conditions()["ErrTransitionNotSupported"][2] == "mode transition from Proxy to Local not supported"
    assert model.state["target_mode"] == "Proxy"


SCENARIO = ["direct", "proxy", "direct", "local", "direct", "unmanaged", "legacy"]
FINAL_CONDITIONS = {
    "direct": ["RegistryContainsRequiredImages", "ContainerdConfigPreflightReady", "TransitionContainerdConfigReady",
               "InClusterProxyReady", "DeckhouseRegistrySwitchReady", "FinalContainerdConfigReady", "Ready"],
    "proxy": ["RegistryContainsRequiredImages", "ContainerdConfigPreflightReady", "NodeServicesReady",
              "TransitionContainerdConfigReady", "DeckhouseRegistrySwitchReady", "FinalContainerdConfigReady",
              "CleanupInClusterProxy", "Ready"],
    "local": ["RegistryContainsRequiredImages", "ContainerdConfigPreflightReady", "NodeServicesReady",
              "TransitionContainerdConfigReady", "DeckhouseRegistrySwitchReady", "FinalContainerdConfigReady",
              "CleanupInClusterProxy", "Ready"],
    "unmanaged": ["RegistryContainsRequiredImages", "ContainerdConfigPreflightReady", "TransitionContainerdConfigReady",
                  "DeckhouseRegistrySwitchReady", "FinalContainerdConfigReady", "CleanupInClusterProxy", "Ready"],
    "legacy": ["RegistryContainsRequiredImages", "ContainerdConfigPreflightReady", "TransitionContainerdConfigReady",
               "DeckhouseRegistrySwitchReady", "FinalContainerdConfigReady", "Ready"],
}


def test_chained_scenario_walks_every_mode():
    model = ClusterModel()
    previous = "legacy"
    for step in SCENARIO:
        model.switch(SETTINGS[step])
        conditions = model.conditions()
        expected = list(FINAL_CONDITIONS[step])
        if step == "direct" and previous in ("proxy", "local"):
            expected.insert(expected.index("Ready"), "CleanupNodeServices")
        from lib.conditions import TYPES

        assert list(conditions) == sorted(expected, key=TYPES.index), step
        assert all(status == "True" for status, _, _ in conditions.values()), (step, conditions)
        assert model.state["mode"] == MODE_OF[step]
        assert_converged(model)
        live = model.live_registry
        if step in ("direct", "proxy", "local"):
            assert live["address"] == "registry.d8-system.svc:5001" and live["path"] == "/system/deckhouse"
        else:
            assert live["address"] == "registry.deckhouse.ru" and live["path"] == "/deckhouse/ee"
        previous = step
    # back in legacy Unmanaged the module keeps publishing the final node config of the stored upstream
    assert model.state["node_config"]["containerd"]["kind"] == "Final"
    assert "registry.deckhouse.ru" in model.state["node_config"]["containerd"]["hosts"]
    assert "pki" not in model.state and "users" not in model.state


def test_every_switch_goes_through_transitional_config_before_final():
    model = reach("direct")
    model.set_settings(SETTINGS["proxy"])
    offset = len(model.history)
    kinds = []
    for _ in range(40):
        outcome = model.run()
        kinds.append(outcome.state["node_config"]["containerd"]["kind"])
        if outcome.ready:
            break
    assert "Transitional" in kinds and kinds[-1] == "Final"
    first = kinds.index("Transitional")
    assert set(kinds[:first]) <= {"Final"} and "Final" in kinds[first:]
    hosts = model.history[offset + kinds.index("Transitional")].state["node_config"]["containerd"]["hosts"]
    toml = hosts["registry.d8-system.svc:5001"]["hosts.toml"]
    # old path first: the proven Direct upstream keeps serving while the new path comes up
    assert toml.index("registry.deckhouse.ru") < toml.index("127.0.0.1:5001")


def test_fresh_cluster_in_legacy_stays_untouched():
    model = ClusterModel()
    outcome = model.run()
    assert outcome.ready and model.state["mode"] == "Unmanaged"
    assert model.state["node_config"]["containerd"]["kind"] == "None"
    assert outcome.registry_patch is None
    assert list(model.conditions()) == ["Ready"]


# -- not-ready paths with their exact messages -------------------------------------------------------

def test_checker_waits_with_initializing_then_its_message():
    model = ClusterModel(checker=False)
    model.set_settings(SETTINGS["direct"])
    model.run()
    assert model.conditions()["RegistryContainsRequiredImages"] == ("False", "Processing", "Initializing")
    version = model.history[-1].checker_params["version"]
    model.checker_state = {"version": version, "ready": False,
                           "message": "Mode: Default\nregistry.deckhouse.ru: 1 of 2 items processed, 0 items with errors:"}
    model.run()
    assert model.conditions()["RegistryContainsRequiredImages"][2].startswith("Mode: Default\nregistry.deckhouse.ru: 1 of 2")
    assert model.conditions()["Ready"] == ("False", "Processing", "Transitioning to Direct")
    assert list(model.conditions()) == ["RegistryContainsRequiredImages", "Ready"]


def test_checker_params_name_the_target_registry():
    model = ClusterModel()
    model.set_settings(SETTINGS["direct"])
    outcome = model.run()
    entry = outcome.checker_params["registries"]["registry.deckhouse.ru"]
    assert entry["address"] == REPO and entry["username"] == "license-token" and entry["password"] == LICENSE


def test_preflight_names_custom_and_unknown_nodes():
    model = ClusterModel()
    model.nodes[1] = Node("master-1", "10.128.0.11", True, True, "unknown", "custom")
    model.nodes[4] = Node("worker-1", "10.128.0.21", False, True, "unknown", "")
    model.set_settings(SETTINGS["direct"])
    run_until(model, "ContainerdConfigPreflightReady")
    assert model.conditions()["ContainerdConfigPreflightReady"] == ("False", "Processing", (
        "Check current nodes configuration\n2/5 node(s) Unready:\n"
        "- master-1: has custom toml merge containerd configuration\n"
        "- worker-1: unknown containerd configuration, waiting..."))


def test_preflight_ready_texts():
    model = ClusterModel()
    model.set_settings(SETTINGS["direct"])
    run_until(model, "ContainerdConfigPreflightReady")
    assert model.conditions()["ContainerdConfigPreflightReady"] == (
        "True", "Ready", "Check current nodes configuration\nAll 5 node(s) Ready to configure.")
    model.run_until_ready()
    model.switch(SETTINGS["proxy"])
    assert model.conditions()["ContainerdConfigPreflightReady"] == (
        "True", "Ready", "Check current nodes configuration\nConfiguration from registry module already exists.")


def test_node_services_waiting_messages():
    model = ClusterModel(kubelet=False)
    model.nodes[0] = Node("master-0", "10.128.0.10", True, False, "unknown", "default")
    model.nodes[1] = Node("master-1", "", True, True, "unknown", "default")
    model.set_settings(SETTINGS["proxy"])
    run_until(model, "NodeServicesReady")
    version = model.state["node_services"]["nodes"]["master-2"]["version"]
    assert set(model.state["node_services"]["nodes"]) == {"master-0", "master-2"}
    assert model.conditions()["NodeServicesReady"] == ("False", "Processing", (
        "0/3 node(s) ready. Waiting:\n"
        "- master-0: node is not Ready\n"
        "- master-1: node has no IPv4 InternalIP\n"
        f'- master-2: services pod(s) is not Ready or config version mismatch (!= "{version[:8]}\u2026")'))


def test_transition_waits_for_the_ngc_then_names_waiting_nodes():
    model = ClusterModel(bashible=False)
    model.set_settings(SETTINGS["direct"])
    model.run()  # the checker reports after this run
    model.ngc_versions = {}
    outcome = stages.reconcile(model.state, model.inputs())
    model.state = outcome.state
    assert model.conditions()["TransitionContainerdConfigReady"] == (
        "False", "Processing", "Applying configuration to nodes\nCreating Managed configuration...")
    model.react(outcome)
    model.run()
    version = model.state["node_config"]["containerd"]["version"]
    lines = model.conditions()["TransitionContainerdConfigReady"][2].splitlines()
    assert lines[:2] == ["Applying configuration to nodes", "0/5 node(s) ready. Waiting:"]
    assert lines[2] == f'- master-0: "unknown" \u2192 "{version[:8]}\u2026"'


def test_node_lists_are_capped_at_ten():
    model = ClusterModel(bashible=False)
    model.nodes = [Node(f"worker-{i:02d}", f"10.0.1.{i + 1}", False, True, "unknown", "default") for i in range(13)]
    model.nodes.insert(0, Node("master-0", "10.0.0.1", True, True, "unknown", "default"))
    model.set_settings(SETTINGS["direct"])
    for _ in range(3):
        model.run()
    lines = model.conditions()["TransitionContainerdConfigReady"][2].splitlines()
    assert len(lines) == 2 + 10 + 1 and lines[-1] == "\t...and 4 more"


def test_incluster_proxy_messages():
    model = ClusterModel(controllers=False)
    model.set_settings(SETTINGS["direct"])
    for _ in range(4):
        model.run()
    assert model.conditions()["InClusterProxyReady"] == ("False", "Processing", "Deploying incluster-proxy...")
    expected = model.state["incluster_proxy"]["version"]
    from lib.snapshots import InClusterDeployment

    model.incluster = InClusterDeployment("0123456789abcdef", 2, 2, 3, 3, 3, 3, 3)
    model.run()
    assert model.conditions()["InClusterProxyReady"][2] == (
        f"Incluster-proxy deployment version mismatch: current 01234567\u2026, expected {expected[:8]}\u2026.")
    for status, text in [
        ((3, 2, 3, 3, 3, 3), "Deployment update is not yet observed by the controller"),
        ((2, 2, 3, 3, 1, 1), 'Deployment "registry-incluster-proxy": 1 of 3 Pods have been updated to the latest specification'),
        ((2, 2, 3, 4, 3, 3), 'Deployment "registry-incluster-proxy": 1 outdated Pods are still running'),
        ((2, 2, 3, 3, 3, 2), 'Deployment "registry-incluster-proxy": 2 of 3 updated Pods are currently available'),
    ]:
        generation, observed, replicas, total, updated, available = status
        model.incluster = InClusterDeployment(expected, generation, observed, replicas, total, updated, 0, available)
        model.run()
        assert model.conditions()["InClusterProxyReady"][2] == f"Incluster-proxy deploying in progress: {text}."


def test_switch_messages_follow_deckhouse():
    model = ClusterModel(deckhouse=False)
    model.set_settings(SETTINGS["direct"])
    for _ in range(6):
        model.run()
        if "DeckhouseRegistrySwitchReady" in model.conditions():
            break
    assert model.conditions()["DeckhouseRegistrySwitchReady"][2] == "Updating registry for deckhouse components"
    model.run()
    assert model.conditions()["DeckhouseRegistrySwitchReady"][2] == "Applying new registry to deckhouse-controller"
    model.deckhouse_pods = []
    model.run()
    assert model.conditions()["DeckhouseRegistrySwitchReady"][2] == "Waiting for deckhouse-controller pod"
    from lib.snapshots import DeckhousePod

    model.deckhouse_pods = [DeckhousePod("d", False, deckhouse_registry.checksum(model.live_registry))]
    model.run()
    assert model.conditions()["DeckhouseRegistrySwitchReady"][2] == "Waiting for deckhouse-controller to become ready"


def test_cleanup_waits_for_node_services_pods_and_the_deployment():
    model = reach("proxy")
    model.kubelet = False
    model.set_settings(SETTINGS["direct"])
    for _ in range(10):
        model.run()
        if "CleanupNodeServices" in model.conditions():
            break
    assert model.conditions()["CleanupNodeServices"] == (
        "False", "Processing", "Waiting for nodes cleanup:\n- master-0\n- master-1\n- master-2")
    assert model.state["node_services"] == {"run": True, "nodes": {}}
    model.kubelet = True
    model.run_until_ready()
    assert model.state["node_services"] == {"run": False, "nodes": {}}

    model.controllers = False
    model.set_settings(SETTINGS["proxy"])
    for _ in range(12):
        model.run()
        if "CleanupInClusterProxy" in model.conditions():
            break
    assert model.conditions()["CleanupInClusterProxy"] == ("False", "Processing", "Stopping incluster-proxy...")
    assert "incluster_proxy" not in model.state


def test_lb_endpoints_follow_node_config():
    model = reach("proxy")
    lb = model.state["node_config"]["lb"]
    assert lb["endpoints"] == ["10.128.0.10:5001", "10.128.0.11:5001", "10.128.0.12:5001"]
    model.switch(SETTINGS["direct"])
    assert model.state["node_config"]["lb"]["endpoints"] == []


def test_parameter_change_within_proxy_skips_node_transition():
    model = reach("proxy")
    containerd_version = model.state["node_config"]["containerd"]["version"]
    node_versions = {n: e["version"] for n, e in model.state["node_services"]["nodes"].items()}
    model.switch({"mode": "Proxy", "proxy": {"imagesRepo": "mirror.example.com/deckhouse/ee", "username": "u",
                                               "password": "p"}})
    assert model.state["node_config"]["containerd"]["version"] == containerd_version
    assert all(model.state["node_services"]["nodes"][n]["version"] != v for n, v in node_versions.items())
    assert "mirror.example.com" in model.state["node_services"]["nodes"]["master-0"]["files"]["config.yaml"]


def test_invalid_input_changes_only_ready():
    model = reach("proxy")
    before = copy.deepcopy(model.state)
    model.set_settings({"mode": "Proxy", "proxy": {}})
    outcome = model.run()
    assert model.conditions()["Ready"][1] == "InvalidConfiguration"
    strip = lambda s: {k: v for k, v in s.items() if k != "conditions"}  # noqa: E731
    assert strip(outcome.state) == strip(before)
    assert outcome.registry_patch is None


def test_bootstrap_freeze_holds_the_switch():
    model = ClusterModel()
    model.set_settings(SETTINGS["direct"])
    inputs = model.inputs()
    inputs.bootstrapped = False
    outcome = stages.reconcile(model.state, inputs)
    ready = {c["type"]: c for c in outcome.state["conditions"]}["Ready"]
    assert ready["message"] == "Waiting for the cluster bootstrap to complete before switching to Direct"
    assert outcome.state["node_config"]["containerd"]["kind"] == "None"


def test_no_secret_in_conditions_or_events():
    model = ClusterModel()
    for step in ("direct", "proxy", "direct", "local", "direct"):
        model.switch(SETTINGS[step])
    secrets = [LICENSE, model.state["pki"]["ca"]["key"], model.state["http_secret"]]
    for outcome in model.history:
        secrets += [u["password"] for u in outcome.state.get("users", {}).values()]
    visible = json.dumps([o.state["conditions"] for o in model.history]) + json.dumps([o.events for o in model.history])
    for secret in secrets:
        assert secret not in visible


def test_bootstrap_adoption_starts_in_the_installed_mode():
    from lib import pki, users
    from lib.clock import parse_rfc3339

    ca, _ = pki.ensure_ca(None, parse_rfc3339("2026-11-27T10:00:00Z"))
    ro = users.ensure_user("ro", None)
    model = ClusterModel()
    model.set_settings(SETTINGS["proxy"])
    inputs = model.inputs()
    inputs.adopt = {"pki": {"ca": {"cert": ca.cert, "key": ca.key}}, "users": {"ro": ro}}
    outcome = stages.reconcile({}, inputs)
    assert outcome.adopted
    state = outcome.state
    assert (state["mode"], state["target_mode"]) == ("Proxy", "Proxy")
    assert state["pki"]["ca"]["cert"] == ca.cert and state["users"]["ro"]["password"] == ro["password"]
    assert state["params"]["actual"]["username"] == "ro"
    model.state = state
    model.react(outcome)
    model.run_until_ready()
    assert model.state["pki"]["ca"]["cert"] == ca.cert, "the installer's CA is kept"
    assert "TransitionContainerdConfigReady" in model.conditions()


def test_checksum_ignores_json_layout_of_the_pull_secret():
    data = deckhouse_registry.unmanaged({"host": "r.example.com", "path": "d8", "username": "u", "password": "p"})
    relaid = dict(data)
    relaid[".dockerconfigjson"] = json.dumps(json.loads(data[".dockerconfigjson"]), indent=4)
    assert deckhouse_registry.checksum(relaid) == deckhouse_registry.checksum(data)
    relaid["address"] = "other.example.com"
    assert deckhouse_registry.checksum(relaid) != deckhouse_registry.checksum(data)

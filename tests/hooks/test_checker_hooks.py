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
"""checker_init and checker_loop through the addon-operator harness (snapshots via their own jqFilters,
strict values patches, values schema), plus the state Secret's Helm round trip."""

from __future__ import annotations

import base64
import json
import socket

import pytest
from d8registry import helm
from d8registry.operator import bindings
from d8registry.operator.module import ModuleHarness
from d8registry.operator.protocol import HookFailed
from lib import checker_http

from tests.e2e.conftest import CheckerHarness, metric

SECRET = "Chk-pa55-value-42"
PARAMS = {"registries": {"registry.example.com": {"address": "registry.example.com/deckhouse/ee", "scheme": "HTTPS",
                                                  "username": "license-token", "password": SECRET}},
          "checkMode": "Default", "version": "v1"}
IDLE = {"registries": {}, "checkMode": "Default", "version": "idle"}


def _secret(state=None, params=None, raw=None):
    data = raw or {}
    if state is not None:
        data["state"] = base64.b64encode(json.dumps(state).encode()).decode()
    if params is not None:
        data["params"] = base64.b64encode(json.dumps(params).encode()).decode()
    return {"apiVersion": "v1", "kind": "Secret", "type": "registry-checker/state",
            "metadata": {"name": "registry-checker-state", "namespace": "d8-system"}, "data": data}


@pytest.fixture
def init(repo_root, example_cluster):
    """Run checker_init (beforeHelm) on the example cluster plus extra objects."""

    def run(objects=(), in_process=True):
        harness = ModuleHarness(repo_root, list(example_cluster.objects) + list(objects), example_cluster.globals,
                                in_process=in_process)
        hook = harness.hook("checker_init")
        harness.run(hook, [bindings.helm_phase_context(harness.config(hook), "beforeHelm", harness.objects)])
        return harness, hook

    return run


def _checker(harness):
    return harness.module_values["internal"]["checker"]


class FakeClient:
    """Stands in for the registry client in in-process runs: every image present except `missing`."""

    missing: set[str] = set()
    asked: list[str] = []

    def __init__(self, params, overrides=None):
        self.params = params

    def session(self):
        return self

    def check(self, image, deadline):
        FakeClient.asked.append(image)
        if image in FakeClient.missing:
            raise checker_http.CheckError("404 Not Found: the registry does not have this image")

    def close(self):
        pass


@pytest.fixture
def fake_registry(monkeypatch):
    FakeClient.missing, FakeClient.asked = set(), []
    monkeypatch.setattr(checker_http, "RegistryClient", FakeClient)
    return FakeClient


# -- configs -----------------------------------------------------------------------------------

def test_checker_init_config(make_harness):
    harness = make_harness()
    config = harness.config(harness.hook("checker_init"))
    assert config["beforeHelm"] == 5
    (binding,) = config["kubernetes"]
    assert binding["name"] == "checker_state" and binding["kind"] == "Secret"
    assert binding["nameSelector"] == {"matchNames": ["registry-checker-state"]}
    assert binding["namespace"] == {"nameSelector": {"matchNames": ["d8-system"]}}
    assert binding["executeHookOnEvent"] == [] and binding["executeHookOnSynchronization"] is False
    assert binding["keepFullObjectsInMemory"] is False


def test_checker_loop_config(make_harness):
    harness = make_harness()
    config = harness.config(harness.hook("checker_loop"))
    assert config["schedule"] == [{"name": "checker", "crontab": "*/30 * * * * *", "queue": "/modules/registry/checker",
                                   "allowFailure": True, "includeSnapshotsFrom": ["deckhouse_deployment"]}]
    (binding,) = config["kubernetes"]
    assert binding["name"] == "deckhouse_deployment" and binding["kind"] == "Deployment"
    assert binding["executeHookOnEvent"] == [] and binding["executeHookOnSynchronization"] is False
    assert binding["queue"] == "/modules/registry/checker"
    assert "beforeHelm" not in config and "afterHelm" not in config
    assert bindings.synchronization_contexts(config, harness.objects) == [], "no run on informer start"


def test_deckhouse_deployment_filter_on_the_example_cluster(make_harness):
    harness = make_harness()
    config = harness.config(harness.hook("checker_loop"))
    context = bindings.schedule_context(config, "checker", harness.objects)
    assert context["type"] == "Schedule"
    (item,) = context["snapshots"]["deckhouse_deployment"]
    assert item["filterResult"] == [
        {"kind": "containers", "name": "deckhouse", "image": "registry.deckhouse.ru/deckhouse/ee:v1.71.3"},
        {"kind": "containers", "name": "kube-rbac-proxy",
         "image": "registry.deckhouse.ru/deckhouse/ee@sha256:7be743572ab530d6d226dc7ee23577368812ab699fd0942eaa21f540b738744c"},
        {"kind": "initContainers", "name": "init-downloaded-modules",
         "image": "registry.deckhouse.ru/deckhouse/ee@sha256:5dcddffc08e7cb5a6ad7320172f86a9e173ee6261f2729f43ae62e3fa8efa67f"},
    ]
    assert "object" not in item


# -- checker_init ------------------------------------------------------------------------------

def test_init_without_secret_only_marks_initialized(init):
    harness, hook = init()
    assert _checker(harness) == {"initialized": True, "params": {"checkMode": "Default"}, "state": {"ready": False}}
    harness.assert_converged(hook)


def test_init_restores_state_and_params_once(init, example_cluster):
    state = {"version": "v1", "ready": False, "message": "Mode: Default\nregistry.example.com: 1 of 3 items processed, "
                                                          "0 items with errors:",
             "queues": {"registry.example.com": {"processed": 1, "params_hash": "h", "retry": [],
                                                 "items": [{"image": "registry.example.com/deckhouse/ee:v1", "info": "l"}]}}}
    harness, hook = init([_secret(state, PARAMS)], in_process=False)
    checker = _checker(harness)
    assert checker["initialized"] is True
    assert checker["params"] == PARAMS
    assert checker["state"]["queues"] == state["queues"] and checker["state"]["version"] == "v1"
    result = harness.results[-1][1]
    assert [r["msg"] for r in result.logs] == ["Checker state not initialized, trying restore from secret",
                                               "Checker state restored"]
    assert SECRET not in result.stderr
    harness.assert_converged(hook)

    # once per process: a later Secret content is not read again
    harness.objects = list(example_cluster.objects) + [_secret({"ready": True}, IDLE)]
    assert harness.pending_patch(hook) == []


@pytest.mark.parametrize("params", [
    {"registries": {"r": {"scheme": "HTTPS", "password": SECRET}}},               # no address
    {"registries": {"r": {"address": "r.example.com/x", "username": SECRET}}},    # username without password
    {"checkMode": "Paranoid"},
])
def test_init_drops_invalid_params(init, params):
    harness, _hook = init([_secret({"ready": True, "message": "Stopped"}, params)])
    checker = _checker(harness)
    assert checker["params"] == {"checkMode": "Default"}, "defaults only: the invalid params are gone"
    assert checker["state"] == {"ready": True, "message": "Stopped"}
    result = harness.results[-1][1]
    warning = next(r for r in result.logs if r["msg"] == "Dropping invalid checker params from secret")
    assert warning["level"] == "warn" and SECRET not in result.stderr


def test_init_survives_undecodable_secret(init):
    raw = {"state": "not base64!", "params": base64.b64encode(b"{broken json").decode()}
    harness, _hook = init([_secret(raw=raw)])
    assert _checker(harness) == {"initialized": True, "params": {"checkMode": "Default"}, "state": {"ready": False}}
    messages = [r["msg"] for r in harness.results[-1][1].logs]
    assert "Cannot restore checker state from secret, starting over" in messages
    assert "Dropping invalid checker params from secret" in messages


def test_init_drops_a_state_of_the_wrong_shape(init):
    harness, _hook = init([_secret({"queues": {"r": {"processed": "many"}}}, IDLE)])
    assert _checker(harness)["state"] == {"ready": False}
    assert _checker(harness)["params"] == IDLE


def test_state_secret_round_trip_through_helm(init, repo_root, example_cluster, helm_bin, fake_registry):
    """What the loop wrote is rendered into the Secret and restored by checker_init after a restart."""
    FakeClient.missing = {"registry.example.com/deckhouse/ee:v1.71.3"}
    loop = CheckerHarness(example_cluster.globals, example_cluster.objects, PARAMS)
    loop.run()
    before = _checker(loop.harness)
    assert before["state"]["ready"] is False

    rendered = helm.render(repo_root, loop.harness.helm_values())
    secret = next(o for o in rendered if o["metadata"]["name"] == "registry-checker-state")
    assert secret["type"] == "registry-checker/state" and set(secret["data"]) == {"state", "params"}
    assert secret["metadata"]["labels"]["app"] == "registry" and secret["metadata"]["labels"]["module"] == "registry"

    restarted, _hook = init([secret])
    assert _checker(restarted)["state"] == before["state"]
    assert _checker(restarted)["params"] == before["params"]


def test_state_secret_renders_on_a_fresh_module(repo_root, example_cluster, helm_bin):
    harness = ModuleHarness(repo_root, example_cluster.objects, example_cluster.globals, in_process=True)
    rendered = helm.render(repo_root, harness.helm_values())
    secret = next(o for o in rendered if o["metadata"]["name"] == "registry-checker-state")
    decoded = {k: json.loads(base64.b64decode(v)) for k, v in secret["data"].items()}
    assert decoded == {"state": {"ready": False}, "params": {"checkMode": "Default"}}


# -- checker_loop ------------------------------------------------------------------------------

def test_loop_waits_for_init(example_cluster):
    loop = CheckerHarness(example_cluster.globals, example_cluster.objects, PARAMS)
    loop.harness.module_values["internal"]["checker"]["initialized"] = False
    result = loop.run()
    assert result.values_patch == [] and result.metrics == []


def test_loop_without_registries_is_stopped(example_cluster):
    loop = CheckerHarness(example_cluster.globals, example_cluster.objects, IDLE, in_process=False)
    result = loop.run()
    assert loop.state == {"ready": True, "message": "Stopped", "version": "idle"}
    assert metric(result, "d8_registry_checker_ready") == 1
    assert result.stdout == ""
    assert loop.pending_patch() == []


def test_loop_checks_the_example_cluster_image_set(example_cluster, fake_registry):
    loop = CheckerHarness(example_cluster.globals, example_cluster.objects, PARAMS)
    missing = "registry.example.com/deckhouse/ee@sha256:891527e1e14bea97136843eafbcda61947a11b8a2da1fb1cd33fb1415039ef78"
    FakeClient.missing = {missing}
    result = loop.run()
    total = len(FakeClient.asked)
    assert total == len(set(FakeClient.asked)) > 30
    assert loop.state["message"] == (
        f"Mode: Default\nregistry.example.com: {total - 1} of {total} items processed, 1 items with errors:\n"
        f"- source: module/cert-manager/cert-manager-controller\n  image: {missing}\n"
        f"  error: 404 Not Found: the registry does not have this image")
    assert loop.state["ready"] is False and loop.state["version"] == "v1"
    assert metric(result, "d8_registry_checker_items_failed", {"registry": "registry.example.com"}) == 1
    assert [r["msg"] for r in result.logs] == ["Added queue", "Checker loop done"]
    assert SECRET not in result.stderr + repr(result.metrics)

    FakeClient.missing = set()
    loop.run()  # retries move back
    loop.run()  # and pass
    assert loop.state["ready"] is True
    assert loop.pending_patch() == []


def test_loop_as_a_process_reports_an_unreachable_registry(example_cluster):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    loop = CheckerHarness(example_cluster.globals, example_cluster.objects, PARAMS, in_process=False,
                          env={"REGISTRY_CHECKER_HOST_OVERRIDES": f"registry.example.com=127.0.0.1:{closed}",
                               "HTTPS_PROXY": "", "https_proxy": ""})
    result = loop.run()
    assert "connection to the registry registry.example.com refused" in loop.state["message"]
    assert all(r["hook"] == "checker_loop" for r in result.logs) and result.stdout == ""
    assert SECRET not in result.stderr + repr(loop.state)


def test_loop_without_the_deckhouse_deployment_fails_clearly(example_cluster):
    objects = [o for o in example_cluster.objects if o["kind"] != "Deployment"]
    loop = CheckerHarness(example_cluster.globals, objects, PARAMS)
    with pytest.raises(HookFailed, match="Deployment d8-system/deckhouse"):
        loop.run()

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
"""The orchestrator hook (first form): settings in, accepted params and Ready out, through the harness."""

from __future__ import annotations

import os
import stat

import pytest
import yaml

DIRECT = {"mode": "Direct", "direct": {"imagesRepo": "registry.example.com/deckhouse/ee", "license": "s3cr3t-license-value"}}
PROXY = {"mode": "Proxy", "proxy": {"imagesRepo": "mirror.example.com:5000/d8/ee", "username": "puller",
                                    "password": "pa55-word-value", "ttl": "24h"}}


def _state(harness):
    return harness.module_values["internal"]["orchestrator"]["state"]


def _ready(harness):
    return next(c for c in _state(harness)["conditions"] if c["type"] == "Ready")


def _run(harness, now=None):
    if now:
        harness.env["REGISTRY_FAKE_NOW"] = now
    hook = harness.hook("orchestrator")
    harness.before_helm()
    harness.assert_converged(hook)
    return harness.results[-1][1]


def _metric(result, name, labels=None):
    for record in result.metrics:
        if record.get("name") == name and (labels is None or record.get("labels") == labels):
            return record["value"]
    raise KeyError(name)


def test_hook_files_follow_addon_operator_rules(repo_root):
    hook = repo_root / "hooks" / "orchestrator.py"
    assert hook.read_text().startswith("#!/usr/bin/env python3\n")
    assert os.stat(hook).st_mode & stat.S_IXUSR
    for path in (repo_root / "hooks" / "lib").glob("*.py"):
        assert not os.stat(path).st_mode & stat.S_IXUSR, f"{path.name} must not be executable"


def test_config_is_valid_and_bindings_are_lean(make_harness):
    harness = make_harness()
    config = harness.config(harness.hook("orchestrator"))
    assert config["beforeHelm"] == 10
    for binding in config["kubernetes"]:
        assert binding["keepFullObjectsInMemory"] is False
        assert binding["queue"] == "/modules/registry/orchestrator"
        assert binding["group"] == "orchestrator"


def test_fresh_cluster_without_settings_is_legacy_unmanaged_and_ready(make_harness):
    harness = make_harness(in_process=False)
    result = _run(harness)
    state = _state(harness)
    assert (state["mode"], state["target_mode"], state["target_legacy"]) == ("Unmanaged", "Unmanaged", True)
    assert state["params"]["target"] == {"mode": "Unmanaged", "legacy": True}
    assert _ready(harness)["status"] == "True" and _ready(harness)["reason"] == "Ready"
    assert harness.module_values["internal"]["orchestrator"]["ready"] is True
    assert _metric(result, "d8_registry_input_valid") == 1
    assert _metric(result, "d8_registry_mode", {"mode": "Unmanaged"}) == 1
    assert any(r["msg"] == "State has no mode set, will set to Unmanaged" for r in result.logs)


def test_subprocess_and_in_process_runs_agree(make_harness):
    patches = []
    for in_process in (False, True):
        harness = make_harness(DIRECT, in_process=in_process)
        hook = harness.hook("orchestrator")
        harness.synchronize()
        patches.append(harness.execute(hook, [{"binding": "beforeHelm", "snapshots": {}}]).values_patch)
    assert patches[0] == patches[1]


def test_valid_settings_become_the_target_params(make_harness):
    harness = make_harness(DIRECT)
    _run(harness)
    state = _state(harness)
    assert state["params"]["target"] == {
        "mode": "Direct", "legacy": False, "scheme": "HTTPS", "host": "registry.example.com",
        "path": "deckhouse/ee", "username": "license-token", "password": "s3cr3t-license-value",
        "checkMode": "Default",
    }
    assert (state["target_mode"], state["target_legacy"]) == ("Direct", False)
    ready = _ready(harness)
    assert (ready["status"], ready["reason"], ready["message"]) == ("False", "Processing", "Transitioning to Direct")
    assert ready["observedGeneration"] == 2


def test_invalid_settings_keep_last_valid_params_and_say_why(make_harness, example_cluster):
    harness = make_harness(DIRECT)
    _run(harness, "2026-11-27T10:00:00Z")
    accepted = _state(harness)["params"]["target"]
    hash_before = harness.module_values["internal"]["orchestrator"]["hash"]

    broken = example_cluster.with_registry_settings(DIRECT).with_registry_settings(
        {"mode": "Proxy", "proxy": {"imagesRepo": "Mirror.example.com/D8", "password": "hunter2-secret"}})
    harness.objects = broken.objects
    result = _run(harness, "2026-11-27T10:05:00Z")

    state = _state(harness)
    assert state["params"]["target"] == accepted
    assert (state["target_mode"], state["target_legacy"]) == ("Direct", False)
    assert harness.module_values["internal"]["orchestrator"]["hash"] == hash_before
    ready = _ready(harness)
    assert ready["reason"] == "InvalidConfiguration" and ready["status"] == "False"
    assert ready["message"] == (
        "Invalid registry settings in ModuleConfig 'deckhouse' (generation 3):\n"
        "- registry.proxy: 'username' is required when 'password' is provided.\n"
        "- registry.proxy: 'imagesRepo' repository path must be lowercase letters, digits and single '.', '_' or '-' separators.\n"
        "Keeping the last valid settings (mode Direct)."
    )
    # status did not flip (False -> False), so the transition time stays
    assert ready["lastTransitionTime"] == "2026-11-27T10:00:00Z"
    assert _metric(result, "d8_registry_input_valid") == 0
    assert "hunter2-secret" not in result.stderr and "hunter2-secret" not in str(result.metrics)
    assert any(r["msg"] == "Invalid registry settings" for r in result.logs)

    harness.objects = broken.with_registry_settings(PROXY).objects
    _run(harness, "2026-11-27T10:10:00Z")
    assert _state(harness)["params"]["target"]["host"] == "mirror.example.com:5000"
    assert _ready(harness)["reason"] == "Processing"


def test_mode_change_clears_conditions_but_parameter_change_does_not(make_harness, example_cluster):
    harness = make_harness(DIRECT)
    _run(harness, "2026-11-27T10:00:00Z")
    first = _ready(harness)

    other_repo = {"mode": "Direct", "direct": {"imagesRepo": "other.example.com/deckhouse/ee"}}
    harness.objects = example_cluster.with_registry_settings(other_repo).objects
    result = _run(harness, "2026-11-27T10:01:00Z")
    assert _ready(harness)["lastTransitionTime"] == first["lastTransitionTime"]
    assert not any(r["msg"] == "Mode change" for r in result.logs)

    harness.objects = example_cluster.with_registry_settings(None).objects
    result = _run(harness, "2026-11-27T10:02:00Z")
    assert any(r["msg"] == "Mode change" and r["target_mode"] == "Unmanaged" for r in result.logs)
    assert [c["type"] for c in _state(harness)["conditions"]] == ["Ready"]
    assert _ready(harness)["lastTransitionTime"] == "2026-11-27T10:02:00Z"


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"clusterType": "Cloud"}, "registry.mode: mode 'Proxy' is supported only in static clusters (clusterType is 'Cloud')."),
        ({"defaultCRI": "NotManaged"},
         "registry.mode: mode 'Proxy' requires containerd or containerd v2 (defaultCRI is 'NotManaged')."),
    ],
)
def test_environment_rules_reject_unsupported_clusters(make_harness, example_cluster, patch, message):
    cluster = example_cluster.with_registry_settings(None)
    cluster.globals["clusterConfiguration"].update(patch)
    harness = make_harness(PROXY, cluster=cluster)
    _run(harness)
    assert f"- {message}" in _ready(harness)["message"].splitlines()
    assert _state(harness)["target_mode"] == "Unmanaged"


def test_no_secret_reaches_logs_metrics_or_state_secret(make_harness, repo_root):
    from d8registry import helm

    harness = make_harness(PROXY, in_process=False)
    result = _run(harness)
    rendered = helm.render(repo_root, harness.helm_values())
    state_secret = next(o for o in rendered if o["metadata"]["name"] == "registry-state")
    import base64

    decoded = {k: base64.b64decode(v).decode() for k, v in state_secret["data"].items()}
    assert yaml.safe_load(decoded["conditions"])[-1]["type"] == "Ready"
    for artefact in (result.stderr, str(result.metrics), str(decoded)):
        assert "pa55-word-value" not in artefact

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
"""The chart as Helm renders it for values produced by the hooks on fixture clusters."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from .conftest import SCENARIOS, validate_object


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_object_is_valid_kubernetes(rendered, scenario):
    objects = rendered[scenario]
    assert objects, "the chart must render its state objects in every scenario"
    for obj in objects:
        validate_object(obj)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_object_carries_module_labels(rendered, scenario):
    for obj in rendered[scenario]:
        labels = obj["metadata"].get("labels", {})
        assert labels.get("heritage") == "deckhouse", obj["metadata"]["name"]
        assert labels.get("module") == "registry", obj["metadata"]["name"]


def _decoded(obj):
    return {key: base64.b64decode(value).decode() for key, value in (obj.get("data") or {}).items()}


def _by_name(objects, name):
    return next(o for o in objects if o["metadata"]["name"] == name)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_state_secret_is_readable_and_secret_free(rendered, scenario):
    state = _by_name(rendered[scenario], "registry-state")
    assert state["type"] == "registry/state"
    data = _decoded(state)
    assert set(data) == {"mode", "target_mode", "conditions", "hash", "state"}
    conditions = yaml.safe_load(data["conditions"])
    assert [c["type"] for c in conditions][-1] == "Ready"
    summary = json.loads(data["state"])
    assert summary["format"] == 1
    assert state["metadata"]["annotations"]["registry.deckhouse.io/config-hash"] == data["hash"]
    private = _decoded(_by_name(rendered[scenario], "registry-private-state"))
    for secret_value in ("lic-123456", "p4ss"):
        assert secret_value not in json.dumps(data)
    if scenario == "direct":
        assert json.loads(private["target_params"])["password"] == "lic-123456"


def test_invalid_input_renders_the_last_valid_target(rendered):
    data = _decoded(_by_name(rendered["invalid"], "registry-state"))
    assert data["target_mode"] == "Unmanaged"
    ready = yaml.safe_load(data["conditions"])[-1]
    assert ready["reason"] == "InvalidConfiguration"
    assert "registry: when mode is 'Proxy', 'proxy' section must be specified." in ready["message"]


def test_target_mode_follows_settings(rendered):
    modes = {name: _decoded(_by_name(objs, "registry-state"))["target_mode"] for name, objs in rendered.items()}
    assert modes == {"legacy": "Unmanaged", "direct": "Direct", "proxy": "Proxy", "local": "Local",
                     "unmanaged": "Unmanaged", "invalid": "Unmanaged"}


def test_later_stage_objects_are_rendered_and_validated(rendered):
    """The scenarios reach past the image check, so the data-plane objects are part of the validation."""
    names = {mode: {(o["kind"], o["metadata"]["name"]) for o in objects} for mode, objects in rendered.items()}
    assert ("Secret", "registry-node-config-master-0") in names["proxy"]
    assert ("Secret", "registry-node-config-master-0") in names["local"]
    assert ("Secret", "registry-pki") in names["direct"]
    for mode in ("legacy", "direct", "proxy", "local", "unmanaged"):
        for ngc in ("d8-registry-containerd.sh", "d8-registry-node-lb.sh", "d8-registry-nodeservices.sh"):
            assert ("NodeGroupConfiguration", ngc) in names[mode]

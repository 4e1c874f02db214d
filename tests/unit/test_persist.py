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
"""Restore from Secrets: round trip, fail-closed cases, installer adoption seed."""

from __future__ import annotations

import base64
import json

import pytest
import yaml
from lib import persist


def _secret(name, data, applied=False):
    return {"name": name, "applied": applied,
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def _state_secret(mode="Proxy", kind="Final"):
    return _secret("registry-state", {
        "mode": mode, "target_mode": mode, "hash": "h",
        "conditions": yaml.safe_dump([{"type": "Ready", "status": "True"}]),
        "state": json.dumps({"format": 1, "target_legacy": False, "registry_service": "NodeServices",
                             "ingress_enabled": False, "node_services_run": True,
                             "containerd_config": {"kind": kind, "version": "v"}}),
    })


def _private(kind="Final"):
    return _secret("registry-private-state", {
        "target_params": json.dumps({"mode": "Proxy", "legacy": False, "host": "h", "path": "p"}),
        "actual_params": json.dumps({"mode": "Proxy", "ca": "c", "username": "ro", "password": "x"}),
        "node_config": json.dumps({"containerd": {"kind": kind, "version": "v", "hosts": {}}}),
    })


def test_round_trip_of_a_running_proxy():
    secrets = {s["name"]: s for s in (_state_secret(), _private(),
                                      _secret("registry-pki", {"ca.crt": "C", "ca.key": "K", "http_secret": "S"}),
                                      _secret("registry-user-ro", {"name": "ro", "password": "P", "passwordHash": "H"}))}
    state = persist.restore(secrets, None)
    # written before the source was persisted: the Proxy in force with its target upstream
    assert state["mode"] == "Proxy" and state["node_services"] == {
        "run": True, "nodes": {}, "flavour": "Proxy", "upstream": {"host": "h", "path": "p"}}
    assert state["params"]["actual"]["username"] == "ro"
    assert state["pki"] == {"ca": {"cert": "C", "key": "K"}} and state["http_secret"] == "S"
    assert state["users"] == {"ro": {"name": "ro", "password": "P", "password_hash": "H"}}


def test_stored_sources_of_the_running_data_plane_are_restored():
    private = _private()
    private["data"]["node_services_source"] = base64.b64encode(json.dumps(
        {"flavour": "Proxy", "upstream": {"host": "old", "path": "q"}}).encode()).decode()
    private["data"]["incluster_proxy_upstream"] = base64.b64encode(json.dumps(
        {"host": "up", "path": "r", "username": "u", "password": "p"}).encode()).decode()
    state_secret = _state_secret()
    summary = json.loads(base64.b64decode(state_secret["data"]["state"]))
    summary["incluster_proxy_version"] = "pv"
    state_secret["data"]["state"] = base64.b64encode(json.dumps(summary).encode()).decode()
    secrets = {s["name"]: s for s in (state_secret, private,
                                      _secret("registry-pki", {"ca.crt": "C", "ca.key": "K", "http_secret": "S"}))}
    state = persist.restore(secrets, None)
    assert state["node_services"]["upstream"] == {"host": "old", "path": "q"}
    assert state["incluster_proxy"] == {"version": "pv", "upstream": {"host": "up", "path": "r", "username": "u",
                                                                      "password": "p"}}
    del secrets["registry-pki"]
    with pytest.raises(persist.RestoreError, match="registry-pki is missing"):
        persist.restore(secrets, None)


def test_installer_hand_off_at_the_fixed_address_is_not_refused():
    init = _secret("registry-init", {"config": yaml.safe_dump({"ca": {"cert": "C", "key": "K"}})})
    assert persist.restore({"registry-init": init}, {"address": "registry.d8-system.svc:5001"}) == {}
    init["applied"] = True
    with pytest.raises(persist.RestoreError, match="fixed address"):
        persist.restore({"registry-init": init}, {"address": "registry.d8-system.svc:5001"})


def test_fresh_start_without_state():
    assert persist.restore({}, {"address": "registry.deckhouse.ru"}) == {}


@pytest.mark.parametrize(
    ("secrets", "live", "reason"),
    [
        ({}, {"address": "registry.d8-system.svc:5001"}, "points at the module's fixed address"),
        ({"registry-state": {"name": "registry-state", "data": {"mode": "%%%"}}}, None, "cannot be decoded"),
        ({"registry-state": _state_secret()}, None, "registry-private-state is missing"),
        ({"registry-state": _state_secret(), "registry-private-state": _private(kind="None")}, None,
         "published node configuration is missing"),
    ],
)
def test_inconsistent_secrets_fail_closed(secrets, live, reason):
    with pytest.raises(persist.RestoreError, match=reason) as info:
        persist.restore(secrets, live)
    assert "refusing to continue to avoid deleting the running data plane" in str(info.value)


def test_bootstrap_seed_only_once_and_only_without_state():
    config = yaml.safe_dump({"ca": {"cert": "C", "key": "K"}, "ro_user": {"name": "ro", "password": "p" * 24,
                                                                       "password_hash": "h"}})
    init = _secret("registry-init", {"config": config})
    assert persist.bootstrap_seed({"registry-init": init})["users"]["ro"]["name"] == "ro"
    assert persist.bootstrap_seed({"registry-init": {**init, "applied": True}}) is None
    assert persist.bootstrap_seed({"registry-init": init, "registry-state": _state_secret()}) is None
    assert persist.bootstrap_seed({"registry-init": _secret("registry-init", {"config": "[: not yaml"})}) is None

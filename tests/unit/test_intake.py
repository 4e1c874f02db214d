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
"""Input intake: last valid settings win; unchanged input is not validated twice."""

from __future__ import annotations

import pytest
from lib import intake, settings

ENV = settings.Environment(cluster_configuration_present=True, default_cri="Containerd", cluster_type="Static")
DIRECT = {"mode": "Direct", "direct": {"imagesRepo": "r.example.com/deckhouse/ee"}}
NOW = "2026-11-27T10:00:00Z"


def _run(raw, orchestrator, env=ENV, generation=1, now=NOW):
    verdict, judged = intake.judge(raw, env, orchestrator)
    result = intake.accept(orchestrator.get("state") or {}, verdict, generation, now)
    return {"input": judged, "state": result.state, "hash": result.hash}, verdict, result


def _refuse_evaluate(monkeypatch):
    def boom(*_args, **_kwargs):
        raise AssertionError("settings were validated again")

    monkeypatch.setattr(settings, "evaluate", boom)


def test_unchanged_valid_input_reuses_the_accepted_params(monkeypatch):
    orchestrator, verdict, _ = _run(DIRECT, {})
    assert verdict.valid
    _refuse_evaluate(monkeypatch)
    again, reused, _ = _run(DIRECT, orchestrator)
    assert reused.params == verdict.params and again == orchestrator


def test_unchanged_invalid_input_reuses_the_errors(monkeypatch):
    orchestrator, first, _ = _run({"mode": "Proxy"}, {})
    assert not first.valid
    _refuse_evaluate(monkeypatch)
    _, reused, result = _run({"mode": "Proxy"}, orchestrator)
    assert reused.errors == first.errors
    assert result.state["conditions"][-1]["reason"] == "InvalidConfiguration"


@pytest.mark.parametrize(
    "env",
    [
        settings.Environment(True, "Containerd", "Cloud"),
        settings.Environment(True, "Docker", "Static"),
        settings.Environment(False, None, None),
    ],
)
def test_environment_change_forces_revalidation(env):
    orchestrator, _, _ = _run({"mode": "Proxy", "proxy": {"imagesRepo": "m.example.com/d8"}}, {})
    _, verdict, _ = _run({"mode": "Proxy", "proxy": {"imagesRepo": "m.example.com/d8"}}, orchestrator, env=env)
    assert not verdict.valid


def test_settings_change_forces_revalidation():
    orchestrator, _, _ = _run(DIRECT, {})
    _, verdict, _ = _run({"mode": "Direct", "direct": {"imagesRepo": "other.example.com/x"}}, orchestrator)
    assert verdict.params["host"] == "other.example.com"


def test_invalid_input_keeps_target_and_hash():
    orchestrator, _, first = _run(DIRECT, {})
    _, _, second = _run({"mode": "Direct"}, orchestrator, generation=2)
    assert second.state["params"]["target"] == first.state["params"]["target"]
    assert second.hash == first.hash
    assert second.ready is False


def test_fresh_state_starts_in_legacy_unmanaged_and_is_ready():
    _, _, result = _run(None, {})
    assert result.state["mode"] == "Unmanaged" and result.state["target_legacy"] is True
    assert result.ready is True
    assert ("State has no mode set, will set to Unmanaged", {}) in result.events

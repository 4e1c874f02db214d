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
"""Input intake: unchanged input is not validated twice, and a refused target is judged every run."""

from __future__ import annotations

import pytest
from lib import intake, settings

ENV = settings.Environment(cluster_configuration_present=True, default_cri="Containerd", cluster_type="Static")
DIRECT = {"mode": "Direct", "direct": {"imagesRepo": "r.example.com/deckhouse/ee"}}


def _judge(raw, orchestrator, env=ENV, accepted=True):
    verdict, key = intake.judge(raw, env, orchestrator)
    remembered = intake.remember(key, verdict, accepted)
    state = {"params": {"target": verdict.params}} if verdict.valid and accepted else orchestrator.get("state", {})
    return {"input": remembered, "state": state}, verdict


@pytest.fixture
def no_validation(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("settings were validated again")

    return lambda: monkeypatch.setattr(settings, "evaluate", refuse)


def test_unchanged_valid_input_reuses_the_accepted_params(no_validation):
    orchestrator, verdict = _judge(DIRECT, {})
    assert verdict.valid
    no_validation()
    _, reused = _judge(DIRECT, orchestrator)
    assert reused.params == verdict.params


def test_unchanged_invalid_input_reuses_the_errors(no_validation):
    orchestrator, first = _judge({"mode": "Proxy"}, {})
    assert not first.valid
    no_validation()
    _, reused = _judge({"mode": "Proxy"}, orchestrator)
    assert reused.errors == first.errors


def test_refused_target_is_judged_again():
    orchestrator, verdict = _judge(DIRECT, {}, accepted=False)
    assert orchestrator["input"]["accepted"] is False
    _, again = _judge(DIRECT, {**orchestrator, "state": {"params": {"target": {"mode": "Local", "legacy": False}}}})
    assert again.params["mode"] == "Direct", "must not reuse the unrelated stored target"


@pytest.mark.parametrize(
    "env",
    [
        settings.Environment(True, "Containerd", "Cloud"),
        settings.Environment(True, "Docker", "Static"),
        settings.Environment(False, None, None),
    ],
)
def test_environment_change_forces_revalidation(env):
    proxy = {"mode": "Proxy", "proxy": {"imagesRepo": "m.example.com/d8"}}
    orchestrator, _ = _judge(proxy, {})
    _, verdict = _judge(proxy, orchestrator, env=env)
    assert not verdict.valid


def test_settings_change_forces_revalidation():
    orchestrator, _ = _judge(DIRECT, {})
    _, verdict = _judge({"mode": "Direct", "direct": {"imagesRepo": "other.example.com/x"}}, orchestrator)
    assert verdict.params["host"] == "other.example.com"

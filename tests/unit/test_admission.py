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
"""hooks/lib/admission.py, the Python twin of the admission policy that `plan` reports: its transition
verdicts agree with the matrix of the hooks (SPEC 2.4). Parity with the real API server is in
tests/apiserver/test_admission.py."""

from __future__ import annotations

import itertools

import pytest
from lib import admission, messages, transitions

MODES = ("Unmanaged", "Direct", "Proxy", "Local")
REQUESTS = {
    ("Unmanaged", True): {},
    ("Unmanaged", False): {"mode": "Unmanaged", "unmanaged": {"imagesRepo": "r.example.com/d8/ee"}},
    ("Direct", False): {"mode": "Direct", "direct": {"imagesRepo": "r.example.com/d8/ee"}},
    ("Proxy", False): {"mode": "Proxy", "proxy": {"imagesRepo": "r.example.com/d8/ee"}},
    ("Local", False): {"mode": "Local"},
}
OLD = {"mode": "Direct", "direct": {"imagesRepo": "old.example.com/d8/ee"}}


def data(mode: str, target: str, bootstrapped: str = "true", cluster_type: str = "Static") -> dict[str, str]:
    return {"mode": mode, "targetMode": target, "targetLegacy": "false", "clusterType": cluster_type,
            "bootstrapped": bootstrapped}


@pytest.mark.parametrize(("mode", "target", "request_"), list(itertools.product(MODES, MODES, REQUESTS)))
def test_transition_verdict_agrees_with_the_matrix(mode, target, request_):
    blocker = transitions.blocking_source(mode, target if target != mode else None, *request_)
    refusal = admission.refusal(OLD, REQUESTS[request_], data(mode, target))
    assert (refusal is None) == (blocker is None)
    if refusal is not None:
        assert refusal in (messages.ADMISSION_LOCAL_PROXY, messages.ADMISSION_LEGACY_FROM_LOCAL)


def test_unchanged_section_is_always_accepted():
    frozen = data("Local", "Local", bootstrapped="false")
    assert admission.refusal(OLD, OLD, frozen) is None
    assert admission.refusal(OLD, {"mode": "Local"}, frozen) == messages.ADMISSION_BOOTSTRAP
    assert admission.refusal(None, OLD, frozen) == messages.ADMISSION_BOOTSTRAP, "a create is always a change"


def test_no_params_configmap_means_allowed():
    assert admission.refusal(OLD, {"mode": "Bogus"}, None) is None
    assert admission.disable_refusal(None) is None


def test_first_failing_rule_wins_in_policy_order():
    assert admission.refusal(OLD, {"mode": "Proxy"}, data("Local", "Local", cluster_type="Cloud")) \
        == messages.ADMISSION_STATIC
    assert admission.refusal(OLD, {"mode": "Proxy"}, data("Local", "Local")) == messages.ADMISSION_LOCAL_PROXY

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
"""Condition bookkeeping: canonical order, unknown types dropped, transition time moves with status only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lib import conditions


def test_transition_time_changes_only_with_status():
    first = conditions.set_condition([], "Ready", False, "Processing", "a", 1, "2026-01-01T00:00:00Z")
    same = conditions.set_condition(first, "Ready", False, "Processing", "b", 2, "2026-01-01T00:01:00Z")
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert (same[0]["message"], same[0]["observedGeneration"]) == ("b", 2)
    flipped = conditions.set_condition(same, "Ready", True, "Ready", "", 2, "2026-01-01T00:02:00Z")
    assert flipped[0]["lastTransitionTime"] == "2026-01-01T00:02:00Z"


def test_canonical_order_and_unknown_types_dropped():
    current = [{"type": "Bogus", "status": "True"}]
    for type_ in ("Ready", "NodeServicesReady", "RegistryContainsRequiredImages"):
        current = conditions.set_condition(current, type_, True, now="t")
    assert [c["type"] for c in current] == ["RegistryContainsRequiredImages", "NodeServicesReady", "Ready"]


def test_unknown_type_cannot_be_set():
    with pytest.raises(ValueError):
        conditions.set_condition([], "Nope", True)


@given(st.lists(st.booleans(), min_size=1, max_size=30))
def test_transition_time_tracks_status_flips(statuses):
    current: list[dict] = []
    expected_time = None
    previous = None
    for tick, status in enumerate(statuses):
        now = f"2026-01-01T00:00:{tick:02d}Z"
        current = conditions.set_condition(current, "Ready", status, now=now)
        if status != previous:
            expected_time = now
        previous = status
        assert current[0]["lastTransitionTime"] == expected_time

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
"""Times read as whole seconds (issue #15: a converged run compares times without importing datetime)
give exactly the answers the datetime readings give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lib import clock, settings, stages

# from year 1000: strftime prints earlier years without their leading zeros
moments = st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 30),
                       timezones=st.just(UTC)).map(lambda m: m.replace(microsecond=0))


@given(moments)
def test_the_utc_forms_the_module_writes_read_as_their_epoch_seconds(moment):
    seconds = int(moment.timestamp())
    for text in (moment.isoformat(), clock.rfc3339(moment)):
        assert clock.utc_seconds(text) == seconds
        assert clock.timestamp(text) == clock.parse_rfc3339(text).timestamp()
    assert clock.rfc3339_seconds(seconds) == clock.rfc3339(moment)
    assert clock.from_seconds(seconds) == moment


@pytest.mark.parametrize("text", [
    "2026-02-29T10:00:00Z", "2100-02-29T10:00:00Z", "2026-13-01T10:00:00Z", "2026-00-10T10:00:00Z",
    "2026-11-31T10:00:00Z", "2026-11-27T24:00:00Z", "2026-11-27T10:60:00Z", "2026-11-27T10:00:60Z",
    "0000-01-01T00:00:00Z", "2026-11-27T10:00:00", "2026-11-27T10:00:00.5Z", "2026-11-27T10:00:00+01:00",
    "2026-11-27 10:00:00Z", " 2026-11-27T10:00:00Z", "2026-11-27T10:00:00Z\n", "２０２６-11-27T10:00:00Z", "",
])
def test_anything_else_is_left_to_datetime(text):
    assert clock.utc_seconds(text) is None


@pytest.mark.parametrize("text", ["2024-02-29T23:59:59Z", "2000-02-29T00:00:00+00:00", "1970-01-01T00:00:00Z"])
def test_leap_days_and_the_epoch(text):
    assert clock.utc_seconds(text) == int(datetime.fromisoformat(text).timestamp())


def test_the_fake_clock_gives_the_same_moment_both_ways(monkeypatch):
    for fake in ("2026-11-27T10:00:00Z", "2026-11-27T12:30:15+02:00", "2026-11-27T10:00:00.900Z"):
        monkeypatch.setenv(clock.FAKE_NOW_ENV, fake)
        assert clock.now_seconds() == int(clock.now().timestamp())


START, RENEW = "2026-11-27T10:00:00+00:00", "2027-11-27T10:00:00+00:00"


@pytest.mark.parametrize(("window", "offset", "inside"), [
    ([START, RENEW], timedelta(0), True),
    ([START, RENEW], timedelta(seconds=-1), False),
    ([START, RENEW], timedelta(days=365), True),
    ([START, RENEW], timedelta(days=365, seconds=1), False),
    (["2026-11-27T11:00:00+01:00", RENEW], timedelta(0), True),       # another offset: read by datetime
    (["2026-11-27T10:00:00.5+00:00", RENEW], timedelta(0), False),    # a fraction: read by datetime
    (["2026-11-27T10:00:00", RENEW], timedelta(0), False),            # no offset at all
    (["not a time", RENEW], timedelta(0), False),
    ([START], timedelta(0), False),
    (None, timedelta(0), False),
])
def test_a_window_holds_exactly_when_the_datetime_comparison_does(window, offset, inside):
    now = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC) + offset
    assert stages._within(window, int(now.timestamp())) is inside


def test_inputs_give_one_moment_whichever_form_the_caller_has():
    verdict = settings.Verdict(params=None, errors=("x",))
    moment = datetime(2026, 11, 27, 10, 0, 0, 700000, tzinfo=UTC)
    given_datetime = stages.Inputs(verdict=verdict, generation=1, now=moment)
    given_seconds = stages.Inputs(verdict=verdict, generation=1, now_seconds=int(moment.timestamp()))
    assert given_datetime.now_seconds == given_seconds.now_seconds
    assert given_datetime.now_text() == given_seconds.now_text() == "2026-11-27T10:00:00Z"
    assert given_seconds.now == moment.replace(microsecond=0)
    with pytest.raises(TypeError):
        stages.Inputs(verdict=verdict, generation=1)

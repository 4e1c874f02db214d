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
"""The master address check without ipaddress (issue #15) accepts and orders exactly what ipaddress does."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lib import validate

# dotted texts near the boundary: leading zeros, 256, signs, spaces, non-ASCII digits, too few/many octets
near = st.lists(st.sampled_from(["0", "00", "01", "1", "9", "10", "99", "100", "199", "249", "250", "255", "256",
                                 "300", "999", "1000", "+1", "-1", " 1", "1 ", "١", "0x1", ""]),
                min_size=3, max_size=5).map(".".join)
anything = st.text(alphabet="0123456789.x :\n", max_size=20)
canonical = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))


def _ipaddress_accepts(text: str) -> bool:
    try:
        return str(ipaddress.IPv4Address(text)) == text
    except ValueError:
        return False


@given(st.one_of(near, anything, canonical))
def test_the_pattern_accepts_exactly_what_ipaddress_prints_back(text):
    if _ipaddress_accepts(text):
        assert validate.ipv4_text(text) == text
    else:
        with pytest.raises(ValueError, match="invalid IPv4 address"):
            validate.ipv4_text(text)


@pytest.mark.parametrize("value", [None, 167772161, b"10.0.0.1", ["10.0.0.1"]])
def test_a_non_string_is_refused(value):
    with pytest.raises(ValueError, match="IPv4 address"):
        validate.ipv4_text(value)


@given(st.lists(canonical, min_size=2, max_size=8))
def test_the_sort_key_orders_as_ipaddress_does(texts):
    assert sorted(texts, key=validate.ipv4_key) == sorted(texts, key=ipaddress.IPv4Address)


def test_the_sort_key_refuses_what_the_check_refuses():
    with pytest.raises(ValueError, match="invalid IPv4 address"):
        validate.ipv4_key("10.0.0.01")

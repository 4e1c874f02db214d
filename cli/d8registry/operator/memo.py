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
"""Helpers for the operator emulation's caches: results are keyed by their input's content, so a changed
input is always checked again, and a caller only ever gets its own copy of a cached result."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def clone(value: Any) -> Any:
    """A deep copy of a JSON-like tree (dicts, lists, immutable scalars); what copy.deepcopy gives for
    such data, several times faster."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any) -> bool:
    kind = type(value)
    if kind is dict:
        return all(type(key) is str and _plain(item) for key, item in value.items())
    if kind is list:
        return all(_plain(item) for item in value)
    return kind in _SCALARS


def digest(value: Any) -> str | None:
    """A digest of a JSON value's content, equal for equal data whatever the key order; None when the value
    is not plain JSON data (a tuple, a non-string key, ...), whose JSON text would hide what it is: such a
    value is never looked up in a cache."""
    if not _plain(value):
        return None
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except ValueError:   # NaN or an infinity: not JSON either
        return None
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

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
"""Dotted-path access to plain-dict values.

Values are always plain dicts/lists (never DotMap): the SDK diffs them with dictdiffer and
serialises them with json, and a wrapper object would silently turn into '{}'.
"""

from __future__ import annotations

import json
from typing import Any

_MISSING = object()


def plain_copy(data: Any) -> Any:
    """An independent copy of `data`, equal to copy.deepcopy's.

    Values and the state in them are plain JSON data, which the C codec copies an order of magnitude
    faster than copy.deepcopy (issue #15); anything the round trip would change (a tuple, a non-string
    key, NaN) is deep-copied instead.
    """
    try:
        copied = json.loads(json.dumps(data))
    except (TypeError, ValueError):
        copied = _MISSING
    if copied is not _MISSING and copied == data:
        return copied
    import copy

    return copy.deepcopy(data)


def _split(path: str) -> list[str]:
    if not path:
        raise ValueError("empty values path")
    return path.split(".")


def get_path(values: dict, path: str, default: Any = None) -> Any:
    """Read without creating anything (reading 'global' must never produce a patch)."""
    node: Any = values
    for key in _split(path):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def set_path(values: dict, path: str, value: Any) -> None:
    """Set a value, creating missing parent dicts."""
    keys = _split(path)
    node = values
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value


def del_path(values: dict, path: str) -> None:
    """Delete a key if present; deleting an absent key is a no-op (strict patches forbid double removal)."""
    keys = _split(path)
    node: Any = values
    for key in keys[:-1]:
        if not isinstance(node, dict) or key not in node:
            return
        node = node[key]
    if isinstance(node, dict):
        node.pop(keys[-1], None)

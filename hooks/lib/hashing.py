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
"""Canonical JSON and the sha256 versions used for every payload and state hash."""

from __future__ import annotations

import json
from typing import Any

try:
    # CPython's built-in SHA-256 computes the same digests as hashlib's OpenSSL one, without loading
    # libcrypto, which took several milliseconds of every hook run (issue #15).
    from _sha2 import sha256  # Python 3.12+
except ImportError:  # pragma: no cover - depends on the interpreter
    try:
        from _sha256 import sha256  # Python 3.11
    except ImportError:
        from hashlib import sha256


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(obj: Any) -> str:
    return sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def version_of(payload: dict) -> str:
    """Version of a payload = hash of the payload without its own 'version' field."""
    return sha256_hex({k: v for k, v in payload.items() if k != "version"})

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
"""Hiding secret material in anything the CLI prints."""

from __future__ import annotations

import hashlib
from typing import Any

SECRET_KEYS = {
    "password", "password_hash", "license", "key", "http_secret", "dockerconfigjson", ".dockerconfigjson",
    "dockercfg", "tls.key", "ca.key", "front.key", "htpasswd",
}


def marker(value: str) -> str:
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]
    return f"<redacted sha256:{digest}>"


def redact(data: Any, key: str | None = None) -> Any:
    """Deep copy with secret-looking fields replaced by a short hash marker."""
    if isinstance(data, dict):
        if data.get("kind") == "Secret" and isinstance(data.get("data"), dict):
            out = {k: redact(v, k) for k, v in data.items() if k != "data"}
            out["data"] = {k: marker(str(v)) for k, v in data["data"].items()}
            return out
        return {k: redact(v, k) for k, v in data.items()}
    if isinstance(data, list):
        return [redact(item, key) for item in data]
    if isinstance(data, str) and key in SECRET_KEYS:
        return marker(data)
    return data


def redact_assignments(expression: str) -> str:
    """A `--set` expression (`key=value,...`) with the values of secret keys replaced by markers."""
    pairs = []
    for pair in expression.split(","):
        key, sep, value = pair.partition("=")
        if sep and key.strip().rsplit(".", 1)[-1] in SECRET_KEYS:
            value = marker(value)
        pairs.append(f"{key}{sep}{value}")
    return ",".join(pairs)

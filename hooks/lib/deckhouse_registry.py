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
"""The desired content of Secret d8-system/deckhouse-registry and the checksum Deckhouse pods carry.

The checksum function lives only here; the simulator's Deckhouse model imports it, so the hook and
the model can never disagree about what "Deckhouse picked up the new registry" means.
"""

from __future__ import annotations

import binascii
import json

from . import hashing

# binascii directly, as the base64 module calls it: importing base64 cost every hook run about a millisecond
# (issue #15). a2b_base64 refuses non-ASCII text with ValueError, as b64decode does.


def _b64encode(text: str) -> str:
    return binascii.b2a_base64(text.encode(), newline=False).decode()


def _b64decode(data, *, validate: bool = False) -> bytes:
    return binascii.a2b_base64(data, strict_mode=validate)

FIXED_ADDRESS = "registry.d8-system.svc:5001"
FIXED_PATH = "/system/deckhouse"
KEYS = ("address", "path", "scheme", "ca", ".dockerconfigjson")


def _auth_entry(username: str | None, password: str | None) -> dict:
    if not username:
        return {}
    token = _b64encode(f"{username}:{password or ''}")
    return {"username": username, "password": password or "", "auth": token}


def dockerconfigjson(address: str, username: str | None, password: str | None) -> str:
    return json.dumps({"auths": {address: _auth_entry(username, password)}}, sort_keys=True, separators=(",", ":"))


def managed(module_ca: str, username: str | None, password: str | None) -> dict:
    return {
        "address": FIXED_ADDRESS,
        "path": FIXED_PATH,
        "scheme": "https",
        "ca": module_ca,
        ".dockerconfigjson": dockerconfigjson(FIXED_ADDRESS, username, password),
    }


def unmanaged(params: dict) -> dict:
    data = {
        "address": params["host"],
        "path": "/" + params["path"],
        "scheme": params.get("scheme", "HTTPS").lower(),
        ".dockerconfigjson": dockerconfigjson(params["host"], params.get("username"), params.get("password")),
    }
    if params.get("ca"):
        data["ca"] = params["ca"]
    return data


def checksum(data: dict) -> str:
    """What the Deckhouse leader pod's checksum/registry-version annotation must equal.

    .dockerconfigjson counts by meaning, not by formatting: the live Secret is not patched when it
    differs only in JSON layout, so the checksum must not differ for that reason either.
    """
    canonical = dict(data)
    try:
        canonical[".dockerconfigjson"] = json.loads(canonical[".dockerconfigjson"])
    except (KeyError, ValueError, TypeError):
        pass
    return hashing.sha256_hex(canonical)


def to_values(data: dict) -> dict:
    """Values keys cannot contain a leading dot cleanly; store .dockerconfigjson as dockerconfigjson."""
    return {("dockerconfigjson" if k == ".dockerconfigjson" else k): v for k, v in data.items()}


def from_values(values: dict) -> dict:
    return {(".dockerconfigjson" if k == "dockerconfigjson" else k): v for k, v in values.items()}


def decode_live(raw_data: dict | None) -> dict | None:
    """Decode the live Secret's data; undecodable entries read as absent (never raise)."""
    if raw_data is None:
        return None
    decoded = {}
    for key, value in (raw_data or {}).items():
        try:
            decoded[key] = _b64decode(str(value), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
    return decoded


def _same_value(key: str, live: str | None, desired: str | None) -> bool:
    if key == ".dockerconfigjson" and live is not None and desired is not None:
        try:
            return json.loads(live) == json.loads(desired)
        except ValueError:
            return False
    return live == desired


def equal(live: dict | None, desired: dict) -> bool:
    if live is None:
        return False
    return all(_same_value(k, live.get(k), desired.get(k)) for k in KEYS)


def merge_patch(live: dict | None, desired: dict) -> dict | None:
    """The data merge patch that makes the live Secret equal the desired one; None when equal."""
    if equal(live, desired):
        return None
    live = live or {}
    data: dict[str, str | None] = {}
    for key in KEYS:
        if key in desired:
            if not _same_value(key, live.get(key), desired[key]):
                data[key] = _b64encode(desired[key])
        elif key in live:
            data[key] = None
    return {"data": data}


def credentials_for(live: dict | None) -> tuple[str | None, str | None]:
    """Credentials of the live address from .dockerconfigjson; garbage reads as no credentials."""
    if not live:
        return None, None
    try:
        auths = json.loads(live.get(".dockerconfigjson", "") or "{}").get("auths", {})
        entry = auths.get(live.get("address", ""), {})
        username, password = entry.get("username"), entry.get("password")
        if not username and entry.get("auth"):
            username, _, password = _b64decode(entry["auth"]).decode().partition(":")
    except (ValueError, AttributeError, TypeError, binascii.Error, UnicodeDecodeError):
        return None, None
    if not isinstance(username, str) or not username:
        return None, None
    return username, password if isinstance(password, str) else ""

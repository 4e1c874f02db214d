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
"""Producer-side validators (SPEC 10.2).

Every value that ends up in a path, a TOML/nginx/YAML/regsync file or a Secret name passes one of these
before anything is rendered. Each raises `ValueError` naming the kind of input and the rule; the value
itself is never quoted back, because some callers validate secrets and the rest may be hostile text that
would end up in logs and conditions.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lib.patterns import lazy
from lib.settings import is_valid_host, is_valid_path_segment

if TYPE_CHECKING:
    import ipaddress

# A single path component on Linux (NAME_MAX); longer names cannot be created at all.
NAME_MAX = 255
NODE_NAME_MAX = 253
USERNAME_MAX = 256

_NODE_NAME_RE = lazy(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*", re.ASCII)
_FILE_NAME_RE = lazy(r"[A-Za-z0-9._:-]+", re.ASCII)
_PORT_DIGITS_RE = lazy(r"[0-9]{1,5}", re.ASCII)
_CONTROL_RE = lazy(r"[\x00-\x1f\x7f-\x9f]")
# Characters that carry syntax in at least one of the formats the module writes without an escaping
# serializer (nginx, regsync templates, shell); control characters cover newline and NUL.
_CONFIG_UNSAFE_RE = lazy(r"[;{}\"'`$\\\x00-\x1f\x7f-\x9f]")
_PEM_BLOCK_RE = lazy(
    r"-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----", re.ASCII
)
CA_BUNDLE_MAX_BYTES = 64 * 1024
# Exactly the texts ipaddress.IPv4Address accepts and prints back unchanged: four decimal octets 0-255
# without leading zeros. Lets a run check master addresses without importing ipaddress (issue #15).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_RE = lazy(rf"{_OCTET}(?:\.{_OCTET}){{3}}", re.ASCII)


def _require_str(value: object, kind: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"invalid {kind}: must be a string")
    return value


def node_name(value: str) -> str:
    """A Kubernetes node name: DNS-1123 subdomain, at most 253 characters."""
    _require_str(value, "node name")
    if not value or len(value) > NODE_NAME_MAX or _NODE_NAME_RE.fullmatch(value) is None:
        raise ValueError(
            "invalid node name: must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', "
            f"starting and ending with a letter or digit) of at most {NODE_NAME_MAX} characters"
        )
    return value


def ipv4(value: str) -> ipaddress.IPv4Address:
    """A dotted-quad IPv4 address; callers render the returned object, never the input text."""
    _require_str(value, "IPv4 address")
    # ipaddress is strict already (no leading zeros, no whitespace, ASCII digits only); the round trip
    # additionally guarantees that what gets rendered is exactly what was checked.
    import ipaddress  # imported on use: most hook runs never need it (issue #15)

    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        address = None
    if address is None or str(address) != value:
        raise ValueError("invalid IPv4 address: must be four decimal octets such as 10.0.0.1")
    return address


def ipv4_text(value: str) -> str:
    """The same check as `ipv4`, returning the text (which then equals str(ipv4(value)))."""
    if isinstance(value, str) and _IPV4_RE.fullmatch(value) is not None:
        return value
    return str(ipv4(value))  # raises for anything the pattern refused, with the same message


def ipv4_key(value: str) -> tuple[int, int, int, int]:
    """Sort key ordering checked IPv4 texts as ipaddress.IPv4Address orders the addresses."""
    a, b, c, d = (int(octet) for octet in ipv4_text(value).split("."))
    return a, b, c, d


def port(value: int) -> int:
    # bool is an int subclass; `True` as a port is always a bug upstream.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError("invalid port: must be an integer between 1 and 65535")
    return value


def host_dir(value: str) -> str:
    """A containerd hosts directory name: `host[:port]` with a DNS-name or IPv4 host."""
    _require_str(value, "host directory name")
    if not value or len(value) > NAME_MAX or "/" in value or value in (".", ".."):
        raise ValueError("invalid host directory name: must be host[:port] without '/' and not '.' or '..'")
    host, has_port, digits = value.partition(":")
    if not is_valid_host(host):
        raise ValueError("invalid host directory name: host must be a DNS name or an IPv4 address")
    if has_port:
        if _PORT_DIGITS_RE.fullmatch(digits) is None:
            raise ValueError("invalid host directory name: port must be an integer between 1 and 65535")
        try:
            port(int(digits))
        except ValueError:
            raise ValueError(
                "invalid host directory name: port must be an integer between 1 and 65535"
            ) from None
    return value


def file_name(value: str) -> str:
    """A file name written on nodes: a safe character class, never hidden, never a path."""
    _require_str(value, "file name")
    if not value or len(value) > NAME_MAX or value.startswith(".") or _FILE_NAME_RE.fullmatch(value) is None:
        raise ValueError(
            "invalid file name: must consist of letters, digits, '.', '_', ':' or '-', must not start with '.' "
            f"and must be at most {NAME_MAX} characters"
        )
    return value


def repo_path(value: str) -> str:
    """A repository path (SPEC 3.3): lowercase segments with single separators, no '.'/'..'."""
    _require_str(value, "repository path")
    segments = value.split("/")
    if not value or len(value) > NAME_MAX:
        raise ValueError("invalid repository path: must be 1 to 255 characters")
    if any(segment in (".", "..") for segment in segments):
        raise ValueError("invalid repository path: segments must not be '.' or '..'")
    if not all(is_valid_path_segment(segment) for segment in segments):
        raise ValueError(
            "invalid repository path: segments must be lowercase letters, digits and single '.', '_' or '-' "
            "separators"
        )
    return value


def username(value: str) -> str:
    """A user name for htpasswd and HTTP Basic, where ':' separates it from the password."""
    _require_str(value, "username")
    if not value or len(value) > USERNAME_MAX:
        raise ValueError(f"invalid username: must be 1 to {USERNAME_MAX} characters")
    if ":" in value:
        raise ValueError("invalid username: must not contain ':'")
    if _CONTROL_RE.search(value):
        raise ValueError("invalid username: must not contain control characters")
    return value


def config_string(value: str) -> str:
    """A string for formats without escaping (nginx, regsync): no quoting or expansion characters."""
    _require_str(value, "configuration string")
    if _CONFIG_UNSAFE_RE.search(value):
        raise ValueError(
            "invalid configuration string: must not contain ';', '{', '}', quotes, '`', '$', '\\' "
            "or control characters"
        )
    return value


def ca_bundle(value: str) -> str:
    """PEM text made only of CERTIFICATE blocks (structure only; settings.py parses user CAs as X.509)."""
    _require_str(value, "CA bundle")
    if not value.isascii() or len(value) > CA_BUNDLE_MAX_BYTES:
        raise ValueError("invalid CA bundle: must be ASCII PEM of at most 64 KiB")
    if not _PEM_BLOCK_RE.search(value) or _PEM_BLOCK_RE.sub("", value).strip():
        raise ValueError("invalid CA bundle: must be one or more PEM CERTIFICATE blocks and nothing else")
    return value

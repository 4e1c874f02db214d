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
"""containerd node configuration: node params, mirrors, the transitional merge and hosts.toml (SPEC 4.6, 6.2, 6.3).

Data flows in three pure steps, each usable on its own by the orchestrator and the simulator:

    node_params(params, ro_user, module_ca)  ->  what nodes must use (compared for equality between runs)
    mirrors(node_params, master_ips)         ->  {hosts dir: [mirror, ...]}, ordered by preference
    render_hosts(mirror_map)                 ->  {hosts dir: {file name: content}}, the containerd payload body

A mirror is a dict with these keys (only `scheme` and `host` are mandatory):

    scheme        "http" | "https"
    host          "host[:port]" the mirror is reached at
    ca            PEM bundle trusted for that host (written next to hosts.toml)
    auth          {"username", "password"}: Deckhouse containerd extension, credentials per host
    header        {"Authorization": ["Basic ..."]}: vanilla containerd, sent with every request
    dial_timeout  "1s": vanilla containerd (ignored by builds that predate it)
    rewrite       {regex: replacement}: Deckhouse containerd extension, repository path rewrite

Everything that reaches a path or a TOML key is validated here (SPEC 10.2) even when it was validated
before: mirror maps are also built from `params.actual`, which may come from the live cluster.
"""

from __future__ import annotations

import binascii
import copy
import re
from typing import Any

from lib import validate
from lib.enums import CONTAINERD_KINDS, KIND_NONE
from lib.hashing import sha256, version_of
from lib.patterns import lazy

FIXED_DIR = "registry.d8-system.svc:5001"
LB_ENDPOINT = "127.0.0.1:5001"
HOSTS_ROOT = "/etc/containerd/registry.d"
MARKER = "# managed by d8 registry module"

HOSTS_FILE = "hosts.toml"
NODE_SERVICES_PORT = 5001
REWRITE_REGEX = "^system/deckhouse"
CAPABILITIES = ("pull", "resolve")
DIAL_TIMEOUT = "1s"
PAYLOAD_KINDS = CONTAINERD_KINDS

_UPSTREAM_MODES = ("Direct", "Unmanaged")
_NODE_SERVICES_MODES = ("Proxy", "Local")
_SCHEMES = ("http", "https")
_MIRROR_KEYS = frozenset({"scheme", "host", "ca", "auth", "header", "dial_timeout", "rewrite"})
_HEADER_NAME_RE = lazy(r"[A-Za-z0-9-]+", re.ASCII)
_DURATION_RE = lazy(r"[0-9]{1,4}(?:ms|s|m)", re.ASCII)


# ---------------------------------------------------------------------------------------------------------
# Node params and mirrors (SPEC 4.6)


UPSTREAM_KEYS = ("scheme", "host", "path", "ca", "username", "password", "ttl")


def upstream_of(params: dict | None) -> dict | None:
    """The upstream registry named by params (what a proxy pulls from), or None when there is none."""
    if not isinstance(params, dict):
        return None
    out = {k: params[k] for k in UPSTREAM_KEYS if k in params}
    return out if "host" in out else None


def node_params(params: dict, ro_user: dict | None, module_ca: str | None) -> dict:
    """The part of params that decides node configuration; equal node params mean "nothing to roll out".

    Master endpoints are deliberately left out: they are re-derived on every run, so a master joining or
    leaving updates the final config in place instead of starting a transition.
    """
    mode = params.get("mode")
    if mode in _UPSTREAM_MODES:
        result: dict[str, Any] = {"mode": mode}
        if "host" not in params:
            # Legacy Unmanaged: nodes are configured by node-manager, the module has nothing to say.
            return result
        # Upper case as in params (SPEC 3.4); `actual` rebuilt from deckhouse-registry may carry either case.
        result["scheme"] = str(params.get("scheme") or "HTTPS").upper()
        for key in ("host", "path", "ca", "username", "password"):
            if params.get(key) is not None:
                result[key] = params[key]
        return result
    if mode in _NODE_SERVICES_MODES:
        if not ro_user or not module_ca:
            raise ValueError(f"node params for mode {mode} need the module CA and the ro user")
        return {"mode": mode, "ca": module_ca, "username": ro_user["name"], "password": ro_user["password"]}
    raise ValueError("node params: unknown mode")


def mirrors(node_params: dict, master_ips: list[str], lb_endpoint: str = LB_ENDPOINT) -> dict[str, list[dict]]:
    """Hosts dirs and their mirrors, most preferred first, for one set of node params.

    `lb_endpoint` is where nodes reach their local LB; only loopback tests move it off the production port.
    """
    mode = node_params.get("mode")
    if mode in _UPSTREAM_MODES:
        if "host" not in node_params:
            return {}
        host = validate.host_dir(node_params["host"])
        mirror: dict[str, Any] = {"scheme": _scheme(node_params.get("scheme", "https")), "host": host}
        if node_params.get("ca"):
            mirror["ca"] = node_params["ca"]
        if node_params.get("username") is not None or node_params.get("password") is not None:
            mirror["auth"] = {
                "username": node_params.get("username"),
                "password": node_params.get("password"),
            }
        if mode == "Unmanaged":
            # The dir is named after the real registry, so image references need no rewriting.
            return {host: [mirror]}
        mirror["rewrite"] = {REWRITE_REGEX: validate.repo_path(node_params.get("path", ""))}
        return {FIXED_DIR: [mirror]}
    if mode in _NODE_SERVICES_MODES:
        if not node_params.get("ca"):
            # Without the module CA no node could verify the node-services front.
            raise ValueError(f"mirrors for mode {mode} need the module CA")
        header = {"Authorization": [_basic(node_params.get("username"), node_params.get("password"))]}
        endpoints = [lb_endpoint] + [f"{ip}:{NODE_SERVICES_PORT}" for ip in sorted_master_ips(master_ips)]
        return {
            FIXED_DIR: [
                {
                    "scheme": "https",
                    "host": endpoint,
                    "ca": node_params["ca"],
                    "header": copy.deepcopy(header),
                    "dial_timeout": DIAL_TIMEOUT,
                }
                for endpoint in endpoints
            ]
        }
    raise ValueError("mirrors: unknown mode")


def sorted_master_ips(master_ips: list[str]) -> list[str]:
    """Unique master IPv4 addresses in numeric order, each checked to be exactly what its parsed address prints."""
    if isinstance(master_ips, str):
        # A bare string would otherwise be iterated character by character.
        raise ValueError("master IPs must be a list of IPv4 addresses")
    return sorted({validate.ipv4_text(ip) for ip in master_ips}, key=validate.ipv4_key)


def transitional(old: dict[str, list[dict]], new: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Old mirrors then new ones, per hosts dir, one entry per scheme://host.

    Old first: containerd keeps pulling through the path that is known to work while the new one comes
    up. A mirror present in both keeps its old position but takes the new content (credentials, CA), so
    the merge of identical node params is exactly the final config.
    """
    merged: dict[str, list[dict]] = {}
    positions: dict[str, dict[str, int]] = {}
    for mirror_map in (old, new):
        for directory, entries in mirror_map.items():
            slots = merged.setdefault(directory, [])
            index = positions.setdefault(directory, {})
            for mirror in entries:
                identity = _identity(mirror)
                if identity in index:
                    slots[index[identity]] = copy.deepcopy(mirror)
                else:
                    index[identity] = len(slots)
                    slots.append(copy.deepcopy(mirror))
    return merged


# ---------------------------------------------------------------------------------------------------------
# hosts.toml (SPEC 6.3)


def render_hosts(mirror_map: dict[str, list[dict]], hosts_root: str = HOSTS_ROOT) -> dict[str, dict[str, str]]:
    """File contents per hosts dir; raises ValueError before producing anything if any input is unsafe.

    `hosts_root` is the containerd config_path the CA references point into; tests render into a temp dir.
    """
    rendered: dict[str, dict[str, str]] = {}
    for directory in sorted(mirror_map):
        validate.host_dir(directory)
        entries = mirror_map[directory]
        if not entries:
            # containerd ignores a hosts.toml without any host table (SPEC 12.3 #3).
            raise ValueError("hosts dir has no mirrors")
        rendered[directory] = _render_dir(directory, entries, hosts_root)
    return rendered


# The name SPEC 10.3 uses for the fuzz target.
render_hosts_toml = render_hosts


def ca_file_name(scheme: str, host: str) -> str:
    """`<scheme>-<mirrorhost>-ca.crt`, or a hashed stand-in when that would exceed NAME_MAX.

    Only hosts longer than about 240 characters hit the fallback; without it the node could not create
    the file at all (ENAMETOOLONG), which is worse than a name that differs from the usual pattern.
    """
    name = f"{scheme}-{host}-ca.crt"
    if len(name) > validate.NAME_MAX:
        name = f"{scheme}-{sha256(host.encode('ascii')).hexdigest()[:32]}-ca.crt"
    return validate.file_name(name)


def _render_dir(directory: str, entries: list[dict], hosts_root: str) -> dict[str, str]:
    files: dict[str, str] = {}
    hosts: dict[str, dict[str, Any]] = {}
    server = None
    for mirror in entries:
        scheme, host, table, ca = _host_table(directory, mirror, hosts_root)
        url = f"{scheme}://{host}"
        if url in hosts:
            raise ValueError("hosts dir lists the same mirror twice")
        hosts[url] = table
        if ca is not None:
            files[ca[0]] = ca[1]
        if directory != FIXED_DIR and host == directory:
            # Unmanaged dirs name the real registry; containerd falls back to `server` after all hosts.
            # With two schemes for the same host (a transition), the newest entry is the last one.
            server = url
    document: dict[str, Any] = {}
    if server is not None:
        document["server"] = server
    document["host"] = hosts
    import tomli_w  # imported on use: a steady-state hook run renders no hosts.toml (issue #15)

    return {HOSTS_FILE: f"{MARKER}\n{tomli_w.dumps(document)}", **files}


def _host_table(directory: str, mirror: dict, hosts_root: str) -> tuple[str, str, dict[str, Any], tuple[str, str] | None]:
    if not isinstance(mirror, dict):
        raise ValueError("mirror must be a mapping")
    unknown = set(mirror) - _MIRROR_KEYS
    if unknown:
        raise ValueError("mirror has unknown keys")
    scheme = _scheme(mirror.get("scheme"))
    host = validate.host_dir(mirror.get("host"))

    # Key order follows SPEC 6.3; tomli_w keeps it within each table.
    table: dict[str, Any] = {"capabilities": list(CAPABILITIES)}
    ca_file = None
    if mirror.get("ca") is not None:
        pem = validate.ca_bundle(mirror["ca"]).strip()
        name = ca_file_name(scheme, host)
        # Vanilla key; containerd accepts a string or an array, the array leaves room for more bundles.
        table["ca"] = [f"{hosts_root}/{directory}/{name}"]
        # The marker line lets the node step prove ownership before removal; PEM readers skip it.
        ca_file = (name, f"{MARKER}\n{pem}\n")
    if scheme == "http":
        # Vanilla key; lets containerd talk plain HTTP to this host.
        table["skip_verify"] = True
    if mirror.get("dial_timeout") is not None:
        duration = mirror["dial_timeout"]
        if not isinstance(duration, str) or _DURATION_RE.fullmatch(duration) is None:
            raise ValueError("mirror dial_timeout must be a duration such as 1s")
        table["dial_timeout"] = duration
    if mirror.get("header") is not None:
        table["header"] = _header(mirror["header"])
    if mirror.get("auth") is not None:
        auth = mirror["auth"]
        if not isinstance(auth, dict):
            raise ValueError("mirror auth must be a mapping")
        # Deckhouse containerd extension (patch 003-hosts-auth): the same fields as the deprecated
        # registry.configs.*.auth, of which `auth` is base64("user:password").
        table["auth"] = {"auth": _b64_credentials(auth.get("username"), auth.get("password"))}
    if mirror.get("rewrite") is not None:
        # Deckhouse containerd extension (patch 002-hosts-rewrite): first matching regex wins; vanilla
        # containerd ignores the key, which is why Direct needs the Deckhouse build.
        table["rewrite"] = [
            {"regex": validate.config_string(regex), "replace": validate.repo_path(replace)}
            for regex, replace in _rewrites(mirror["rewrite"])
        ]
    return scheme, host, table, ca_file


def _rewrites(rules: Any) -> list[tuple[Any, Any]]:
    if not isinstance(rules, dict) or not rules:
        raise ValueError("mirror rewrite must be a non-empty mapping of regex to replacement")
    return list(rules.items())


def _header(header: Any) -> dict[str, list[str]]:
    if not isinstance(header, dict) or not header:
        raise ValueError("mirror header must be a non-empty mapping")
    result = {}
    for name, values in header.items():
        if not isinstance(name, str) or _HEADER_NAME_RE.fullmatch(name) is None:
            raise ValueError("mirror header name must be an HTTP token")
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not values:
            raise ValueError("mirror header values must be a non-empty list of strings")
        # Vanilla key; containerd takes a string or an array of strings per header, arrays are unambiguous.
        result[name] = [validate.config_string(value) for value in values]
    return result


def _scheme(value: Any) -> str:
    scheme = value.lower() if isinstance(value, str) else None
    if scheme not in _SCHEMES:
        raise ValueError("mirror scheme must be http or https")
    return scheme


def _identity(mirror: dict) -> str:
    return f"{_scheme(mirror.get('scheme'))}://{mirror.get('host')}"


def _b64_credentials(user: Any, password: Any) -> str:
    validate.username(user)
    if not isinstance(password, str) or not password:
        raise ValueError("invalid password: must be a non-empty string")
    # binascii as base64.b64encode calls it, without importing base64 on every hook run (issue #15)
    return binascii.b2a_base64(f"{user}:{password}".encode(), newline=False).decode("ascii")


def _basic(user: Any, password: Any) -> str:
    return f"Basic {_b64_credentials(user, password)}"


# ---------------------------------------------------------------------------------------------------------
# Payload (SPEC 6.2)


def containerd_payload(kind: str, mirror_map: dict | None) -> dict:
    """The containerd step payload; its version is the hash of everything else in it."""
    if kind not in PAYLOAD_KINDS:
        raise ValueError(f"containerd payload kind must be one of {', '.join(PAYLOAD_KINDS)}")
    if kind == KIND_NONE:
        hosts: dict[str, dict[str, str]] = {}
    elif mirror_map is None:
        raise ValueError(f"containerd payload of kind {kind} needs a mirror map")
    else:
        hosts = render_hosts(mirror_map)
    payload: dict[str, Any] = {"kind": kind, "hosts": hosts}
    payload["version"] = version_of(payload)
    return payload

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
"""Restoring the orchestrator state from its Secrets after a Deckhouse restart (SPEC 4.10).

Fail closed: when the Secrets are inconsistent the hook raises before Helm renders, so a damaged
state can never make Helm delete the running data plane.
"""

from __future__ import annotations

import base64
import binascii
import json

from . import deckhouse_registry, enums
from . import node_config as node_config_mod

USER_SECRETS = {
    "registry-user-ro": "ro",
    "registry-user-rw": "rw",
    "registry-user-mirror-puller": "mirror_puller",
    "registry-user-mirror-pusher": "mirror_pusher",
}


class RestoreError(RuntimeError):
    def __init__(self, reason: str):
        super().__init__(
            f"Cannot restore state from Secret d8-system/registry-state: {reason}; "
            "refusing to continue to avoid deleting the running data plane"
        )


def _decode(secret: dict, key: str) -> str | None:
    raw = (secret.get("data") or {}).get(key)
    if raw is None:
        return None
    return base64.b64decode(raw, validate=True).decode("utf-8")


def _json(secret: dict, key: str):
    text = _decode(secret, key)
    return json.loads(text) if text else None


def restore(secrets: dict[str, dict], live_registry: dict | None) -> dict:
    """State rebuilt from the Secrets; an empty dict means a fresh start (legacy Unmanaged, or the
    installer's hand-off in registry-init, which the caller adopts)."""
    state_secret = secrets.get("registry-state")
    if state_secret is None:
        at_fixed_address = bool(live_registry) and live_registry.get("address") == deckhouse_registry.FIXED_ADDRESS
        if at_fixed_address and bootstrap_seed(secrets) is None:
            raise RestoreError("the Secret is absent while deckhouse-registry points at the module's fixed address")
        return {}
    try:
        import yaml

        mode = _decode(state_secret, "mode")
        target_mode = _decode(state_secret, "target_mode")
        summary = _json(state_secret, "state") or {}
        conditions = yaml.safe_load(_decode(state_secret, "conditions") or "[]") or []
    except (binascii.Error, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise RestoreError(f"it cannot be decoded ({type(exc).__name__})") from None
    if mode not in ("Unmanaged", "Direct", "Proxy", "Local") or not isinstance(summary, dict) \
            or not isinstance(conditions, list):
        raise RestoreError("it does not hold a known mode and state")

    summary_kind = (summary.get("containerd_config") or {}).get("kind", enums.KIND_NONE)
    containerd_kind = enums.normalize_containerd_kind(summary_kind)
    private = secrets.get("registry-private-state")
    if private is None:
        if mode != "Unmanaged" or containerd_kind != enums.KIND_NONE:
            raise RestoreError("Secret registry-private-state is missing while the module manages the cluster")
        private = {"data": {}}
    try:
        params = {key: _json(private, f"{key}_params") for key in ("target", "actual", "unmanaged")}
        node_config = _json(private, "node_config") or {}
        proxy_upstream = _json(private, "incluster_proxy_upstream")
        services_source = _json(private, "node_services_source")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise RestoreError("Secret registry-private-state cannot be decoded") from None
    containerd = node_config.get("containerd")
    if isinstance(containerd, dict) and "kind" in containerd:
        # the version stays: it names the config the nodes applied, whatever the kind's spelling was
        node_config["containerd"] = {**containerd, "kind": enums.normalize_containerd_kind(containerd["kind"])}
    if containerd_kind != enums.KIND_NONE and (node_config.get("containerd") or {}).get("kind") != containerd_kind:
        raise RestoreError("the published node configuration is missing from registry-private-state")

    state: dict = {
        "mode": mode,
        "target_mode": target_mode or mode,
        "target_legacy": bool(summary.get("target_legacy")),
        "conditions": [c for c in conditions if isinstance(c, dict)],
        "params": {key: value for key, value in params.items() if value},
        "node_config": node_config,
        "node_services": _node_services(summary, services_source, "node_services_source" in (private.get("data") or {}),
                                        mode, target_mode or mode, params),
        "registry_service": enums.normalize_registry_service(summary.get("registry_service") or enums.SERVICE_NONE),
        "ingress_enabled": bool(summary.get("ingress_enabled")),
    }
    # The running data plane is restored by its source and version; the orchestrator re-renders
    # it from there, and the same inputs give the same files, so nothing restarts (SPEC 4.10.2).
    proxy_version = summary.get("incluster_proxy_version") or ""
    if proxy_version:
        if not isinstance(proxy_upstream, dict) and mode == "Direct":
            proxy_upstream = node_config_mod.upstream_of(params.get("unmanaged"))  # written before the key existed
        if not isinstance(proxy_upstream, dict) or not proxy_upstream.get("host"):
            raise RestoreError("the upstream of the running in-cluster proxy is missing from registry-private-state")
        state["incluster_proxy"] = {"version": proxy_version, "upstream": proxy_upstream}
    pki_secret = secrets.get("registry-pki")
    if pki_secret is not None:
        try:
            cert, key = _decode(pki_secret, "ca.crt"), _decode(pki_secret, "ca.key")
            http_secret = _decode(pki_secret, "http_secret")
            scraper = {"cert": _decode(pki_secret, "scraper.crt"), "key": _decode(pki_secret, "scraper.key")}
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise RestoreError("Secret registry-pki cannot be decoded") from None
        if cert and key:
            state["pki"] = {"ca": {"cert": cert, "key": key}}
            if all(scraper.values()):
                state["pki"]["scraper"] = scraper
        if http_secret:
            state["http_secret"] = http_secret
    users = {}
    for name, key in USER_SECRETS.items():
        secret = secrets.get(name)
        if secret is None:
            continue
        try:
            users[key] = {"name": _decode(secret, "name"), "password": _decode(secret, "password"),
                          "password_hash": _decode(secret, "passwordHash")}
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue  # an unreadable user is regenerated, which only rotates that password
    users = {k: v for k, v in users.items() if all(v.values())}
    if users:
        state["users"] = users
    running = state["node_services"].get("flavour") or "incluster_proxy" in state
    if running and ("pki" not in state or "http_secret" not in state):
        raise RestoreError("Secret registry-pki is missing while the module's data plane runs")
    return state


def _node_services(summary: dict, source, stored: bool, mode: str, target_mode: str, params: dict) -> dict:
    run = bool(summary.get("node_services_run"))
    services: dict = {"run": run, "nodes": {}}
    if not run:
        return services
    if not stored:
        # written before the source was persisted: the mode in force or the target tells the flavour
        flavour = mode if mode in ("Proxy", "Local") else target_mode if target_mode in ("Proxy", "Local") else None
        upstream = None
        if flavour == "Proxy":
            upstream = node_config_mod.upstream_of(params.get("unmanaged") if mode == "Proxy" else None) \
                or node_config_mod.upstream_of(params.get("target"))
        source = {"flavour": flavour, "upstream": upstream} if flavour else None
    if isinstance(source, dict) and source.get("flavour") in ("Proxy", "Local"):
        services["flavour"] = source["flavour"]
        if source["flavour"] == "Proxy":
            upstream = source.get("upstream")
            if not isinstance(upstream, dict) or not upstream.get("host"):
                raise RestoreError("the upstream of the running node services is missing from registry-private-state")
            services["upstream"] = upstream
    return services


def bootstrap_seed(secrets: dict[str, dict]) -> dict | None:
    """CA and users the installer left in registry-init, when not adopted yet (SPEC 4.10.3)."""
    init = secrets.get("registry-init")
    if init is None or init.get("applied") or "registry-state" in secrets:
        return None
    try:
        import yaml

        config = yaml.safe_load(_decode(init, "config") or "") or {}
    except (binascii.Error, UnicodeDecodeError, ValueError, yaml.YAMLError):
        return None
    if not isinstance(config, dict):
        return None
    ca = config.get("ca") or {}
    seed: dict = {}
    if isinstance(ca, dict) and ca.get("cert") and ca.get("key"):
        seed["pki"] = {"ca": {"cert": str(ca["cert"]), "key": str(ca["key"])}}
    users = {}
    for source, key in (("ro_user", "ro"), ("rw_user", "rw")):
        user = config.get(source)
        if isinstance(user, dict) and user.get("name") and user.get("password"):
            users[key] = {"name": str(user["name"]), "password": str(user["password"]),
                          "password_hash": str(user.get("password_hash") or "")}
    if users:
        seed["users"] = users
    return seed or None

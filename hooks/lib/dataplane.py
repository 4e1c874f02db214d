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
"""Files of the registry data plane, computed by the hook and shipped through Secrets/payloads.

Per master (node services), for the in-cluster proxy, and for the node load balancer. Every
renderer is deterministic for the same inputs and reuses certificates and password hashes, so an
unchanged cluster produces unchanged versions (no pod restarts).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from . import hashing

DISTRIBUTION_ADDR = "127.0.0.1:5003"
DEBUG_ADDR = "127.0.0.1:5002"
PROXY_DATA = "/opt/deckhouse/registry/proxy_data"
LOCAL_DATA = "/opt/deckhouse/registry/local_data"
RESTART_STAGGER_SECONDS = 20
INCLUSTER_TTL = "1h"
FLAVOUR_USERS = {"Proxy": ("ro",), "Local": ("ro", "rw", "mirror_puller", "mirror_pusher")}


@dataclass(frozen=True)
class Master:
    name: str
    ip: str


def sorted_masters(masters: list[Master]) -> list[Master]:
    return sorted(masters, key=lambda m: (ipaddress.IPv4Address(m.ip), m.name))


def _yaml(data: dict) -> str:
    import yaml

    # libyaml's emitter is an order of magnitude faster than the pure-Python one; same output
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=False)


def distribution_config(http_secret: str, upstream: dict | None, ttl: str | None, data_dir: str = "/data") -> str:
    config: dict = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": data_dir},
            "delete": {"enabled": True},
            "redirect": {"disable": True},
            "maintenance": {"uploadpurging": {"enabled": True, "age": "168h", "interval": "24h", "dryrun": False}},
        },
        "http": {
            "addr": DISTRIBUTION_ADDR,
            "secret": http_secret,
            "debug": {"addr": DEBUG_ADDR, "prometheus": {"enabled": True, "path": "/metrics"}},
        },
        "health": {"storagedriver": {"enabled": True, "interval": "10s", "threshold": 3}},
    }
    if upstream is not None:
        proxy = {"remoteurl": f"{upstream.get('scheme', 'HTTPS').lower()}://{upstream['host']}"}
        if upstream.get("username"):
            proxy["username"] = upstream["username"]
            proxy["password"] = upstream.get("password", "")
        if ttl:
            proxy["ttl"] = ttl
        config["proxy"] = proxy
    return _yaml(config)


def local_peers(own_ip: str, master_ips: list[str]) -> list[str]:
    """Sorted unique IPv4 addresses of every other master."""
    own = ipaddress.IPv4Address(own_ip)
    unique = {ipaddress.IPv4Address(ip) for ip in master_ips}
    return [str(ip) for ip in sorted(unique) if ip != own]


def regsync_config(own_ip: str, peers: list[str], ca_pem: str, puller: dict, pusher: dict) -> str:
    creds = [{"registry": f"{peer}:5001", "user": puller["name"], "pass": puller["password"], "tls": "enabled",
              "regcert": ca_pem} for peer in peers]
    creds.append({"registry": f"{own_ip}:5001", "user": pusher["name"], "pass": pusher["password"], "tls": "enabled",
                  "regcert": ca_pem})
    return _yaml({
        "version": 1,
        "creds": creds,
        "defaults": {"interval": "60s", "parallel": 2, "skipDockerConfig": True},
        "sync": [{"source": f"{peer}:5001", "target": f"{own_ip}:5001", "type": "registry"} for peer in peers],
    })


def _leaf(ca, previous_files: dict | None, reusable, dns, ips, now):
    from . import pki

    existing = None
    for candidate in (previous_files or {}, reusable or {}):
        if candidate.get("front.crt") and candidate.get("front.key"):
            existing = pki.KeyPair(cert=candidate["front.crt"], key=candidate["front.key"])
            if pki.leaf_is_reusable(ca, existing.cert, existing.key, dns, ips, now):
                break
            existing = None
    return pki.ensure_leaf(ca, existing, dns, ips, now)


def with_version(files: dict[str, str]) -> dict:
    return {"version": hashing.sha256_hex(files), "files": files}


def node_services_files(
    master: Master,
    masters: list[Master],
    flavour: str,
    upstream: dict | None,
    ca,
    users: dict,
    http_secret: str,
    cluster_domain: str,
    previous_files: dict | None,
    reusable: dict | None,
    now,
) -> tuple[dict, bool]:
    """(files, certificate reused) for one master's registry-nodeservices static pod."""
    from . import pki
    from . import users as users_mod

    dns, ips = pki.front_names(cluster_domain, master.ip)
    leaf, reused = _leaf(ca, previous_files, reusable, dns, ips, now)
    accounts = [users[key] for key in FLAVOUR_USERS[flavour] if key in users]
    ordered = sorted_masters(masters)
    ordinal = next(i for i, m in enumerate(ordered) if m.name == master.name)
    files = {
        "ca.crt": ca.cert,
        "front.crt": leaf.cert,
        "front.key": leaf.key,
        "htpasswd": users_mod.htpasswd(accounts),
        "restart_delay_seconds": str(RESTART_STAGGER_SECONDS * ordinal),
    }
    if flavour == "Proxy":
        files["config.yaml"] = distribution_config(http_secret, upstream, (upstream or {}).get("ttl", "168h"))
        if upstream and upstream.get("ca"):
            files["upstream-ca.crt"] = upstream["ca"]
    else:
        files["config.yaml"] = distribution_config(http_secret, None, None)
        peers = local_peers(master.ip, [m.ip for m in masters])
        if peers:
            files["regsync.yaml"] = regsync_config(master.ip, peers, ca.cert, users["mirror_puller"], users["mirror_pusher"])
    return files, reused


def incluster_proxy_files(upstream: dict, ca, http_secret: str, cluster_domain: str, previous_files: dict | None,
                          reusable: dict | None, now) -> tuple[dict, bool]:
    from . import pki
    from . import users as users_mod

    dns, ips = pki.front_names(cluster_domain, None)
    leaf, reused = _leaf(ca, previous_files, reusable, dns, ips, now)
    files = {
        "ca.crt": ca.cert,
        "front.crt": leaf.cert,
        "front.key": leaf.key,
        "config.yaml": distribution_config(http_secret, upstream, INCLUSTER_TTL),
    }
    if upstream.get("username"):
        # in-cluster clients present the upstream credentials (kubelet's pull secret stays valid)
        previous_line = (previous_files or {}).get("htpasswd", "")
        name, _, old_hash = previous_line.strip().partition(":")
        password = upstream.get("password", "")
        if name == upstream["username"] and old_hash and users_mod.verify_password(password, old_hash):
            files["htpasswd"] = previous_line
        else:
            files["htpasswd"] = f"{upstream['username']}:{users_mod.hash_password(password)}\n"
    if upstream.get("ca"):
        files["upstream-ca.crt"] = upstream["ca"]
    return files, reused

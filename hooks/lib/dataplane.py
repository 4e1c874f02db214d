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

import re
from typing import TYPE_CHECKING

from . import hashing
from .patterns import lazy
from .record import Record, fields

if TYPE_CHECKING:
    from . import front

DISTRIBUTION_ADDR = "127.0.0.1:5003"
DEBUG_ADDR = "127.0.0.1:5002"
PROXY_DATA = "/opt/deckhouse/registry/proxy_data"
LOCAL_DATA = "/opt/deckhouse/registry/local_data"
RESTART_STAGGER_SECONDS = 20
INCLUSTER_TTL = "1h"
FLAVOUR_USERS = {"Proxy": ("ro",), "Local": ("ro", "rw", "mirror_puller", "mirror_pusher")}


class Master(Record):
    __slots__ = ()
    _fields = ("name", "ip")
    name, ip = fields(2)

    def __new__(cls, name: str, ip: str):
        return tuple.__new__(cls, (name, ip))


def sorted_masters(masters: list[Master]) -> list[Master]:
    from . import validate

    # in address order, as ipaddress would sort them, without importing it (issue #15)
    return sorted(masters, key=lambda m: (validate.ipv4_key(m.ip), m.name))


def _yaml(data: dict) -> str:
    import yaml

    # libyaml's emitter is an order of magnitude faster than the pure-Python one; same output
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=False)


def distribution_config(http_secret: str, upstream: dict | None, ttl: str | None, data_dir: str = "/data",
                        addr: str = DISTRIBUTION_ADDR, debug_addr: str = DEBUG_ADDR) -> str:
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
            "addr": addr,
            "secret": http_secret,
            # Location headers (blob uploads, manifests) as paths: the client stays on the scheme and host it
            # dialled, whether it came through the push Ingress over HTTP or HTTPS or straight to a front
            "relativeurls": True,
            "debug": {"addr": debug_addr, "prometheus": {"enabled": True, "path": "/metrics"}},
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


SYNC_INTERVAL = "60s"
_INTERVAL_RE = lazy(r"[1-9][0-9]{0,4}[sm]", re.ASCII)


def local_peers(own_ip: str, master_ips: list[str]) -> list[str]:
    """Sorted unique IPv4 addresses of every other master; anything but a dotted quad raises ValueError."""
    from . import validate

    own = validate.ipv4(own_ip)
    unique = {validate.ipv4(ip) for ip in master_ips}
    return [str(ip) for ip in sorted(unique) if ip != own]


def regsync_config(own_ip: str, peers: list[str], ca_pem: str, puller: dict, pusher: dict,
                   interval: str = SYNC_INTERVAL) -> str:
    """regsync.yaml of one master (SPEC 5.8): it pulls from every peer as mirror-puller and writes only to
    its own front as mirror-pusher. `interval` is moved off 60 s only by loopback tests."""
    from . import validate

    if _INTERVAL_RE.fullmatch(interval) is None:
        raise ValueError("dataplane: sync interval must be a Go duration in whole seconds or minutes")
    for account in (puller, pusher):
        # regsync expands Go templates in its config; generated passwords are alphanumeric, so nothing expands
        if not str(account.get("password", "")).isascii() or not str(account.get("password", "")).isalnum():
            raise ValueError("dataplane: regsync passwords must be alphanumeric")
        validate.username(account["name"])
    own = str(validate.ipv4(own_ip))
    peers = [str(validate.ipv4(peer)) for peer in peers]
    if own in peers or len(set(peers)) != len(peers):
        raise ValueError("dataplane: regsync peers must be unique and exclude the master itself")
    creds = [{"registry": f"{peer}:5001", "user": puller["name"], "pass": puller["password"], "tls": "enabled",
              "regcert": ca_pem} for peer in peers]
    creds.append({"registry": f"{own}:5001", "user": pusher["name"], "pass": pusher["password"], "tls": "enabled",
                  "regcert": ca_pem})
    return _yaml({
        "version": 1,
        "creds": creds,
        "defaults": {"interval": interval, "parallel": 2, "skipDockerConfig": True},
        "sync": [{"source": f"{peer}:5001", "target": f"{own}:5001", "type": "registry"} for peer in peers],
    })


def cert_window(cert_pem: str) -> list[str] | None:
    """[not before, not after - renewal margin] of a certificate as ISO-8601 UTC: while a run's time lies
    inside, pki.leaf_is_reusable's time check holds for it; None when it cannot be read."""
    from . import pki

    return pki.reuse_window(cert_pem)


def _leaf(ca, previous_files: dict | None, reusable, dns, ips, now):
    from . import pki

    existing = None
    for candidate in (previous_files or {}, reusable or {}):
        if candidate.get("front.crt") and candidate.get("front.key"):
            existing = pki.KeyPair(cert=candidate["front.crt"], key=candidate["front.key"])
            if pki.leaf_is_reusable(ca, existing.cert, existing.key, dns, ips, now):
                return existing, True  # verified once here; ensure_leaf would verify it again
    return pki.ensure_leaf(ca, None, dns, ips, now)


def with_version(files: dict[str, str]) -> dict:
    return {"version": hashing.sha256_hex(files), "files": files}


# -- the registry-nodeservices static pod (SPEC 5.7, 5.8, 6.6) ------------------------------------

MANIFEST = "registry-nodeservices.yaml"
IMAGES_FILE = "images"
# Secret keys the master step reads as instructions instead of writing them to disk (SPEC 6.6).
NOT_WRITTEN = frozenset({"version", IMAGES_FILE, "restart_delay_seconds", MANIFEST})
# Image names in global.modulesImages.digests.registry (SPEC 5.2) per container.
IMAGE_NAMES = {"front": "registryNginx", "distribution": "registryDistribution", "sync": "registrySync",
               "gc": "registryGc"}
# nginx is looked up in PATH (the LB pod does the same); the Go programs sit where images/*/werf.inc.yaml put them.
NGINX_BIN = "nginx"
REGISTRY_BIN = "/usr/bin/registry"
REGSYNC_BIN = "/usr/bin/regsync"
SHELL_BIN = "/bin/sh"
RUN_AS = 64535
HOST_CONFIG_ROOT = "/etc/kubernetes/registry"
GC_FIRST_DELAY_SECONDS = 3600
GC_STAGGER_SECONDS = 600
GC_INTERVAL_SECONDS = 86400
UPSTREAM_CA_FILE = "/pki/upstream-ca.crt"
SYSTEM_CA_DIR = "/etc/ssl/certs"
NODE_CRITICAL_PRIORITY = 2000001000
PROXY_ENV_NAMES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy")

_IMAGE_REF_RE = lazy(
    r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[0-9]{1,5})?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"@sha256:[0-9a-f]{64}", re.ASCII)
_CONTROL_RE = lazy(r"[\x00-\x1f\x7f-\x9f]")


def image_refs(base: str, digests: dict | None) -> dict[str, str]:
    """`<base>@<digest>` per image name of this module (SPEC 5.2); images without a digest are left out."""
    refs = {}
    for name in sorted(set(IMAGE_NAMES.values())):
        digest = (digests or {}).get(name)
        if base and isinstance(digest, str) and digest:
            refs[name] = f"{base}@{digest}"
    return refs


def proxy_env(cluster_configuration: dict | None) -> list[dict]:
    """Cluster proxy variables for containers that reach the upstream; the same list as the chart's
    helm_lib_envs_for_proxy, so the static pods and the Deployment behave alike."""
    config = cluster_configuration if isinstance(cluster_configuration, dict) else {}
    proxy = config.get("proxy") if isinstance(config.get("proxy"), dict) else {}
    if not proxy:
        return []
    env = []
    for upper, lower, key in (("HTTP_PROXY", "http_proxy", "httpProxy"), ("HTTPS_PROXY", "https_proxy", "httpsProxy")):
        if proxy.get(key):
            env += [{"name": upper, "value": str(proxy[key])}, {"name": lower, "value": str(proxy[key])}]
    no_proxy = ["127.0.0.1", "169.254.169.254", "registry.d8-system.svc"]
    for key in ("clusterDomain", "podSubnetCIDR", "serviceSubnetCIDR"):
        if config.get(key):
            no_proxy.append(str(config[key]))
    no_proxy += [str(item) for item in proxy.get("noProxy") or []]
    joined = ",".join(dict.fromkeys(no_proxy))
    return env + [{"name": "NO_PROXY", "value": joined}, {"name": "no_proxy", "value": joined}]


def _checked_images(images: dict | None, names: list[str]) -> list[str] | None:
    refs = []
    for name in names:
        ref = (images or {}).get(name)
        if not ref:
            return None
        if not isinstance(ref, str) or _IMAGE_REF_RE.fullmatch(ref) is None:
            raise ValueError(f"dataplane: image {name} must be <repository>@sha256:<digest>")
        refs.append(ref)
    return refs


def _checked_env(env: list[dict] | None) -> list[dict]:
    out = []
    for item in env or []:
        name, value = item.get("name"), item.get("value")
        if name not in PROXY_ENV_NAMES or not isinstance(value, str) or _CONTROL_RE.search(value):
            raise ValueError("dataplane: proxy environment must be proxy variables without control characters")
        out.append({"name": name, "value": value})
    return out


def gc_command(config: str = "/config/distribution/config.yaml", registry: str = REGISTRY_BIN) -> list[str]:
    """One garbage collection pass over a Local store (SPEC 5.8). Never `--delete-untagged`: it removes the
    platform manifests of image indexes, which are untagged children."""
    return [registry, "garbage-collect", config]


def _probe(initial_delay: int, period: int, failures: int) -> dict:
    # The front listens on the node IP, which is where kubelet probes a hostNetwork pod; /healthz
    # passes through the front to distribution, so one probe covers both processes.
    return {"httpGet": {"scheme": "HTTPS", "path": "/healthz", "port": 5001},
            "initialDelaySeconds": initial_delay, "periodSeconds": period, "timeoutSeconds": 5,
            "failureThreshold": failures}


def _container(name: str, image: str, command: list[str], mounts: list[tuple[str, str, bool]],
               cpu: str, memory: str, env: list[dict] | None = None, ports: list[dict] | None = None) -> dict:
    container: dict = {"name": name, "image": image, "imagePullPolicy": "IfNotPresent", "command": command}
    if env:
        container["env"] = env
    if ports:
        container["ports"] = ports
    container.update({
        "readinessProbe": _probe(0, 5, 3),
        "livenessProbe": _probe(15, 10, 6),
        "resources": {"requests": {"cpu": cpu, "memory": memory, "ephemeral-storage": "60Mi"}},
        "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": vol, "mountPath": path, **({"readOnly": True} if ro else {})}
                         for vol, path, ro in mounts],
    })
    return container


def nodeservices_manifest(flavour: str, version: str, config_hash: str, images: dict[str, str], ordinal: int,
                          with_sync: bool, upstream_ca: bool, env: list[dict]) -> str:
    """The static pod the master step writes to /etc/kubernetes/manifests (SPEC 5.7, 5.8)."""
    from . import front  # loaded only when files are rendered (issue #15)

    data_dir = PROXY_DATA if flavour == "Proxy" else LOCAL_DATA
    registry_env = []
    if flavour == "Proxy":
        # Only the pull-through cache talks TLS to anyone. Go reads both variables: the upstream CA
        # from the file, the system roots from the directory.
        if upstream_ca:
            registry_env.append({"name": "SSL_CERT_FILE", "value": UPSTREAM_CA_FILE})
        registry_env += [{"name": "SSL_CERT_DIR", "value": SYSTEM_CA_DIR}, *env]
    containers = [
        _container("front", images["front"], [NGINX_BIN, "-e", "stderr", "-c", "/config/front/nginx.conf"],
                   [("pki", "/pki", True), ("front", "/config/front", True), ("tmp", "/tmp", False)], "10m", "32Mi",
                   ports=[{"name": "registry", "containerPort": 5001, "protocol": "TCP"},
                          {"name": "https-metrics", "containerPort": 5004, "protocol": "TCP"}]),
        _container("distribution", images["distribution"],
                   [REGISTRY_BIN, "serve", "/config/distribution/config.yaml"],
                   [("pki", "/pki", True), ("distribution", "/config/distribution", True), ("data", "/data", False),
                    ("tmp", "/tmp", False)], "25m", "64Mi", env=registry_env),
    ]
    volumes = [
        _host_path("pki", f"{HOST_CONFIG_ROOT}/pki", "Directory"),
        _host_path("front", f"{HOST_CONFIG_ROOT}/front", "Directory"),
        _host_path("distribution", f"{HOST_CONFIG_ROOT}/distribution", "Directory"),
        _host_path("data", data_dir, "DirectoryOrCreate"),
        {"name": "tmp", "emptyDir": {}},
    ]
    if flavour == "Local":
        if with_sync:
            containers.append(_container("sync", images["sync"], [REGSYNC_BIN, "server", "-c", "/config/sync/regsync.yaml"],
                                         [("sync", "/config/sync", True), ("tmp", "/tmp", False)], "10m", "32Mi"))
            volumes.insert(3, _host_path("sync", f"{HOST_CONFIG_ROOT}/sync", "Directory"))
        # Masters start collecting at different times, so at most one replica is busy with GC.
        first = GC_FIRST_DELAY_SECONDS + GC_STAGGER_SECONDS * ordinal
        import shlex  # imported on use: only a Local rendering writes the loop

        loop = f"sleep {first}; while true; do {shlex.join(gc_command())}; sleep {GC_INTERVAL_SECONDS}; done"
        containers.append(_container("gc", images["gc"], [SHELL_BIN, "-c", loop],
                                     [("distribution", "/config/distribution", True), ("data", "/data", False),
                                      ("tmp", "/tmp", False)], "10m", "32Mi"))
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "registry-nodeservices",
            "namespace": "d8-system",
            "labels": {"app": "registry", "component": "registry-service", "type": "node-services",
                       "heritage": "deckhouse", "module": "registry", "tier": "control-plane"},
            "annotations": {"registry.deckhouse.io/config-version": version,
                            "registry.deckhouse.io/config-hash": config_hash},
        },
        "spec": {
            "hostNetwork": True,
            # the upstream is resolved by the node's resolver: cluster DNS may itself need this registry
            "dnsPolicy": "Default",
            "priorityClassName": "system-node-critical",
            "priority": NODE_CRITICAL_PRIORITY,
            "enableServiceLinks": False,
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "terminationGracePeriodSeconds": 30,
            "containers": containers,
            "volumes": volumes,
        },
    }
    # The marker line lets the master step prove the manifest is the module's before removing it.
    return f"{front.MARKER}\n{_yaml(pod)}"


def _host_path(name: str, path: str, kind: str) -> dict:
    return {"name": name, "hostPath": {"path": path, "type": kind}}


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
    images: dict | None = None,
    env: list[dict] | None = None,
    layout: front.Layout | None = None,
    data_dir: str = "/data",
    sync_interval: str = SYNC_INTERVAL,
) -> tuple[dict, bool]:
    """({version, files}, certificate reused) for one master's registry-nodeservices static pod.

    `images` maps image names (registryNginx, ...) to references; when one the pod needs is missing,
    the manifest and the images list are left out (the master step then has no pod to start).
    `layout` and `data_dir` default to the static pod's; loopback tests run several masters on one
    machine and pass their own addresses, ports and directories.
    """
    from . import front, pki
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
    layout = layout or front.Layout(listen=master.ip)
    addresses = {"data_dir": data_dir, "addr": layout.distribution, "debug_addr": layout.debug}
    if flavour == "Proxy":
        if not upstream or not upstream.get("path"):
            raise ValueError("dataplane: Proxy node services need the upstream registry")
        files["nginx.conf"] = front.render("Proxy", layout, upstream_path=upstream["path"])
        files["config.yaml"] = distribution_config(http_secret, upstream, upstream.get("ttl", "168h"), **addresses)
        if upstream.get("ca"):
            files["upstream-ca.crt"] = upstream["ca"]
    else:
        files["nginx.conf"] = front.render("Local", layout)
        files["config.yaml"] = distribution_config(http_secret, None, None, **addresses)
        peers = local_peers(master.ip, [m.ip for m in masters])
        if peers:
            files["regsync.yaml"] = regsync_config(master.ip, peers, ca.cert, users["mirror_puller"],
                                                   users["mirror_pusher"], sync_interval)

    roles = ["front", "distribution"]
    if flavour == "Local":
        roles += (["sync"] if "regsync.yaml" in files else []) + ["gc"]
    refs = _checked_images(images, [IMAGE_NAMES[role] for role in roles])
    if refs is None:
        return {"version": hashing.sha256_hex(files), "files": files}, reused
    files[IMAGES_FILE] = "\n".join(refs) + "\n"
    config_hash = hashing.sha256_hex({k: v for k, v in files.items() if k not in NOT_WRITTEN})

    def manifest(version: str) -> str:
        return nodeservices_manifest(flavour, version, config_hash, dict(zip(roles, refs, strict=True)), ordinal,
                                     "regsync.yaml" in files, "upstream-ca.crt" in files, _checked_env(env))

    # The pod carries the version it was rendered for, so the version cannot cover its own final
    # text: it covers every other file plus the manifest with an empty version, which differs from
    # the final one only by the annotation the version fills in.
    version = hashing.sha256_hex({**files, MANIFEST: manifest("")})
    files[MANIFEST] = manifest(version)
    return {"version": version, "files": files}, reused


def incluster_proxy_files(upstream: dict, ca, http_secret: str, cluster_domain: str, previous_files: dict | None,
                          reusable: dict | None, now, layout: front.Layout | None = None,
                          data_dir: str = "/data") -> tuple[dict, bool]:
    """(files, certificate reused) of the in-cluster proxy's config Secret; `layout`/`data_dir` as for
    node_services_files (the Deployment's pod when omitted)."""
    from . import front, pki
    from . import users as users_mod

    dns, ips = pki.front_names(cluster_domain, None)
    leaf, reused = _leaf(ca, previous_files, reusable, dns, ips, now)
    layout = layout or front.Layout()
    authenticated = bool(upstream.get("username"))
    files = {
        "ca.crt": ca.cert,
        "front.crt": leaf.cert,
        "front.key": leaf.key,
        # the pod IP is unknown at render time: listen on every address of the pod's own network
        "nginx.conf": front.render("Direct", layout, upstream_path=upstream["path"], auth=authenticated),
        "config.yaml": distribution_config(http_secret, upstream, INCLUSTER_TTL, data_dir,
                                           layout.distribution, layout.debug),
    }
    if authenticated:
        # in-cluster clients present the upstream credentials (kubelet's pull secret stays valid).
        # The salt is keyed by the HTTP secret, so the same credentials give the same file on every
        # run and after a restart: no new version, no roll-out (SPEC 4.2, 4.10.2).
        files["htpasswd"] = users_mod.htpasswd([{
            "name": upstream["username"],
            "password_hash": users_mod.keyed_hash(upstream.get("password", ""), http_secret, "incluster-proxy"),
        }])
    if upstream.get("ca"):
        files["upstream-ca.crt"] = upstream["ca"]
    return files, reused

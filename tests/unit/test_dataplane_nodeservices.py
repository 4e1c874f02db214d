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
"""Per-master node-services files (SPEC 5.7, 5.8, 6.6): the static pod manifest, the images list, the
front config, and version stability; plus the in-cluster proxy's nginx.conf (SPEC 5.6)."""

from __future__ import annotations

import copy
import hashlib
import json

import kubernetes_validate
import pytest
import yaml
from lib import dataplane, hashing, pki, users
from lib.clock import parse_rfc3339

NOW = parse_rfc3339("2026-11-27T10:00:00Z")
BASE = "registry.deckhouse.ru/deckhouse/ee"
DIGESTS = {name: "sha256:" + hashlib.sha256(name.encode()).hexdigest()
           for name in ("registryNginx", "registryDistribution", "registrySync", "registryGc")}
IMAGES = dataplane.image_refs(BASE, DIGESTS)
MASTERS = [dataplane.Master("master-2", "10.0.0.13"), dataplane.Master("master-0", "10.0.0.11"),
           dataplane.Master("master-1", "10.0.0.12")]
UPSTREAM = {"scheme": "HTTPS", "host": "mirror.example.com:5000", "path": "d8/ee", "username": "u", "password": "p4ss",
            "ttl": "72h"}
PROXY_ENV = dataplane.proxy_env({"clusterDomain": "cluster.local", "podSubnetCIDR": "10.111.0.0/16",
                                 "serviceSubnetCIDR": "10.222.0.0/16",
                                 "proxy": {"httpProxy": "http://proxy:3128", "httpsProxy": "http://proxy:3128",
                                           "noProxy": ["corp.example"]}})


@pytest.fixture(scope="module")
def secrets():
    ca, _ = pki.ensure_ca(None, NOW)
    return {"ca": ca, "users": users.ensure_users(["ro", "rw", "mirror_puller", "mirror_pusher"], None),
            "http_secret": users.ensure_http_secret(None)}


def _render(secrets, flavour="Proxy", master=MASTERS[1], masters=MASTERS, upstream=UPSTREAM, images=IMAGES,
            env=PROXY_ENV, previous=None):
    return dataplane.node_services_files(master, masters, flavour, upstream if flavour == "Proxy" else None,
                                         secrets["ca"], secrets["users"], secrets["http_secret"], "cluster.local",
                                         previous, None, NOW, images=images, env=env)[0]


def _pod(entry) -> dict:
    text = entry["files"][dataplane.MANIFEST]
    assert text.startswith("# managed by d8 registry module\n"), "the master step checks the marker before removal"
    return yaml.safe_load(text)


def test_proxy_manifest_is_a_valid_pod_with_the_placement_rules(secrets):
    entry = _render(secrets)
    pod = _pod(entry)
    kubernetes_validate.validate(pod, "1.31", strict=True)
    meta = pod["metadata"]
    assert meta["labels"] == {"app": "registry", "component": "registry-service", "type": "node-services",
                              "heritage": "deckhouse", "module": "registry", "tier": "control-plane"}
    assert meta["annotations"]["registry.deckhouse.io/config-version"] == entry["version"]
    written = {k: v for k, v in entry["files"].items() if k not in dataplane.NOT_WRITTEN}
    assert meta["annotations"]["registry.deckhouse.io/config-hash"] == hashing.sha256_hex(written)
    spec = pod["spec"]
    assert spec["hostNetwork"] is True and spec["dnsPolicy"] == "Default"
    assert spec["priorityClassName"] == "system-node-critical"
    assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 64535, "runAsGroup": 64535,
                                       "seccompProfile": {"type": "RuntimeDefault"}}
    containers = {c["name"]: c for c in spec["containers"]}
    assert list(containers) == ["front", "distribution"]
    assert containers["front"]["image"] == IMAGES["registryNginx"]
    assert containers["distribution"]["image"] == IMAGES["registryDistribution"]
    assert containers["distribution"]["command"] == ["/usr/bin/registry", "serve", "/config/distribution/config.yaml"]
    for container in containers.values():
        assert container["imagePullPolicy"] == "IfNotPresent"
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"scheme": "HTTPS", "path": "/healthz", "port": 5001}
        assert container["securityContext"] == {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                                "capabilities": {"drop": ["ALL"]}}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["pki"]["hostPath"]["path"] == "/etc/kubernetes/registry/pki"
    assert volumes["front"]["hostPath"]["path"] == "/etc/kubernetes/registry/front"
    assert volumes["distribution"]["hostPath"]["path"] == "/etc/kubernetes/registry/distribution"
    assert volumes["data"]["hostPath"]["path"] == "/opt/deckhouse/registry/proxy_data"
    assert volumes["tmp"] == {"name": "tmp", "emptyDir": {}}
    assert "sync" not in volumes


def test_proxy_env_only_on_the_upstream_facing_container(secrets):
    containers = {c["name"]: c for c in _pod(_render(secrets))["spec"]["containers"]}
    assert "env" not in containers["front"]
    env = {e["name"]: e["value"] for e in containers["distribution"]["env"]}
    assert env["HTTPS_PROXY"] == env["http_proxy"] == "http://proxy:3128"
    assert env["NO_PROXY"] == "127.0.0.1,169.254.169.254,registry.d8-system.svc,cluster.local,10.111.0.0/16," \
                              "10.222.0.0/16,corp.example"
    assert env["SSL_CERT_DIR"] == "/etc/ssl/certs" and "SSL_CERT_FILE" not in env
    with_ca = _render(secrets, upstream={**UPSTREAM, "ca": secrets["ca"].cert})
    env = {e["name"]: e["value"] for e in _pod(with_ca)["spec"]["containers"][1]["env"]}
    assert env["SSL_CERT_FILE"] == "/pki/upstream-ca.crt" and with_ca["files"]["upstream-ca.crt"]


def test_images_list_and_front_config(secrets):
    entry = _render(secrets)
    assert entry["files"]["images"] == f"{IMAGES['registryNginx']}\n{IMAGES['registryDistribution']}\n"
    conf = entry["files"]["nginx.conf"]
    assert "listen 10.0.0.11:5001 ssl;" in conf and "/v2/d8/ee$1 break;" in conf
    config = yaml.safe_load(entry["files"]["config.yaml"])
    assert config["proxy"] == {"remoteurl": "https://mirror.example.com:5000", "username": "u", "password": "p4ss",
                               "ttl": "72h"}
    assert entry["files"]["restart_delay_seconds"] == "0"


def test_local_manifest_adds_sync_and_staggered_gc(secrets):
    for master, ordinal in ((MASTERS[1], 0), (MASTERS[0], 2)):
        entry = _render(secrets, "Local", master=master)
        pod = _pod(entry)
        kubernetes_validate.validate(pod, "1.31", strict=True)
        containers = {c["name"]: c for c in pod["spec"]["containers"]}
        assert list(containers) == ["front", "distribution", "sync", "gc"]
        assert containers["sync"]["command"] == ["/usr/bin/regsync", "server", "-c", "/config/sync/regsync.yaml"]
        loop = containers["gc"]["command"]
        assert loop[:2] == ["/bin/sh", "-c"] and loop[2].startswith(f"sleep {3600 + 600 * ordinal}; while true;")
        assert "garbage-collect /config/distribution/config.yaml" in loop[2] and "--delete-untagged" not in loop[2]
        assert all("env" not in c for c in containers.values()), "Local reaches no upstream: no proxy env"
        volumes = {v["name"]: v["hostPath"]["path"] for v in pod["spec"]["volumes"] if "hostPath" in v}
        assert volumes["sync"] == "/etc/kubernetes/registry/sync"
        assert volumes["data"] == "/opt/deckhouse/registry/local_data"
        assert entry["files"]["images"].splitlines() == [IMAGES["registryNginx"], IMAGES["registryDistribution"],
                                                         IMAGES["registrySync"], IMAGES["registryGc"]]
    single = _pod(_render(secrets, "Local", masters=[MASTERS[1]]))
    assert [c["name"] for c in single["spec"]["containers"]] == ["front", "distribution", "gc"]


def test_versions_are_stable_and_follow_every_input(secrets):
    first = _render(secrets)
    again = _render(secrets, previous=copy.deepcopy(first["files"]))
    assert again == first, "unchanged inputs (certificate reused) give the same files and version"
    changed = {
        "image": _render(secrets, images={**IMAGES, "registryNginx": f"{BASE}@sha256:{'1' * 64}"},
                         previous=first["files"]),
        "proxy env": _render(secrets, env=[], previous=first["files"]),
        "ttl": _render(secrets, upstream={**UPSTREAM, "ttl": "1h"}, previous=first["files"]),
    }
    for what, entry in changed.items():
        assert entry["version"] != first["version"], what
        assert _pod(entry)["metadata"]["annotations"]["registry.deckhouse.io/config-version"] == entry["version"]


def test_without_images_no_pod_is_shipped(secrets):
    entry = _render(secrets, images={"registryNginx": IMAGES["registryNginx"]})
    assert dataplane.MANIFEST not in entry["files"] and "images" not in entry["files"]
    assert entry["version"] == hashing.sha256_hex(entry["files"])


@pytest.mark.parametrize("ref", ["registry.example.com/x:latest", "Registry.example.com/x@sha256:" + "0" * 64,
                                 "r.example.com/x@sha256:" + "0" * 63, "r.example.com/x@sha256:" + "0" * 64 + "\n",
                                 "r.example.com/x y@sha256:" + "0" * 64])
def test_image_references_are_validated(secrets, ref):
    with pytest.raises(ValueError):
        _render(secrets, images={**IMAGES, "registryDistribution": ref})


def test_proxy_env_values_are_validated(secrets):
    with pytest.raises(ValueError):
        _render(secrets, env=[{"name": "HTTPS_PROXY", "value": "http://p\nX: y"}])
    with pytest.raises(ValueError):
        _render(secrets, env=[{"name": "LD_PRELOAD", "value": "/x.so"}])


def test_proxy_env_mirrors_the_chart_helper():
    assert dataplane.proxy_env({}) == []
    assert dataplane.proxy_env({"proxy": {}}) == []
    only_https = dataplane.proxy_env({"proxy": {"httpsProxy": "http://p:1"}})
    assert [e["name"] for e in only_https] == ["HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"]


def test_incluster_proxy_files_carry_the_direct_front(secrets):
    files, _ = dataplane.incluster_proxy_files(UPSTREAM, secrets["ca"], secrets["http_secret"], "cluster.local",
                                               None, None, NOW)
    conf = files["nginx.conf"]
    assert "listen 0.0.0.0:5001 ssl;" in conf and "/v2/d8/ee$1 break;" in conf
    assert "limit_except GET HEAD { deny all; }" in conf and "auth_basic_user_file /config/front/htpasswd;" in conf
    anonymous, _ = dataplane.incluster_proxy_files({k: v for k, v in UPSTREAM.items() if k not in ("username", "password")},
                                                   secrets["ca"], secrets["http_secret"], "cluster.local", None, None, NOW)
    assert "htpasswd" not in anonymous and "auth_basic off;" in anonymous["nginx.conf"]
    assert json.loads(json.dumps(files)) == files


def test_every_placement_answers_with_relative_locations(secrets):
    """A push through the Ingress over plain HTTP (https.mode Disabled) needs upload Locations without a scheme:
    distribution writes paths (relativeurls) and the front no longer claims https for the client (SPEC 5.8)."""
    rendered = [_render(secrets, flavour)["files"] for flavour in ("Proxy", "Local")]
    rendered.append(dataplane.incluster_proxy_files(UPSTREAM, secrets["ca"], secrets["http_secret"], "cluster.local",
                                                    None, None, NOW)[0])
    for files in rendered:
        assert yaml.safe_load(files["config.yaml"])["http"]["relativeurls"] is True
        assert "X-Forwarded-Proto" not in files["nginx.conf"]
        assert "proxy_set_header Host $http_host;" in files["nginx.conf"]

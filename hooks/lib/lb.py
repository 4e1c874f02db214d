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
"""The node load balancer (static pod registry-proxy on every node, Proxy/Local): payload and files."""

from __future__ import annotations

import re

from . import hashing
from .patterns import lazy

LISTEN = "127.0.0.1:5001"
PORT = 5001
CONFIG_DIR = "/etc/kubernetes/registry-proxy"
MANIFEST = "registry-proxy.yaml"
MARKER = "# managed by d8 registry module"
CONFIG_HASH_ANNOTATION = "registry.deckhouse.io/config-hash"
RUN_AS = 64535
# `<repo>@sha256:<digest>` or `<repo>:<tag>`; also what the node step accepts before `crictl pull`.
_IMAGE_RE = lazy(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,511}", re.ASCII)


def lb_payload(endpoints: list[str], image: str) -> dict:
    """Node load balancer payload; empty endpoints tell the node step to remove the LB.

    Without an image (no digest in the global values) only nginx.conf is shipped: the node step then
    leaves the pod alone and containerd keeps using the masters listed in hosts.toml directly.
    """
    endpoints = [_endpoint(ep) for ep in endpoints]
    payload = {"endpoints": endpoints, "image": image if endpoints else "", "files": {}}
    if endpoints:
        nginx_conf = lb_nginx_conf(endpoints)
        payload["files"] = {"nginx.conf": nginx_conf}
        if image:
            payload["files"][MANIFEST] = lb_manifest(_image(image), nginx_conf)
    payload["version"] = hashing.version_of(payload)
    return payload


def _endpoint(value: str) -> str:
    from . import validate

    address, sep, port = str(value).rpartition(":")
    if not sep or port != str(PORT):
        raise ValueError(f"invalid LB endpoint: must be <IPv4>:{PORT}")
    # rendered from the parsed address, so nothing but digits and dots reaches nginx.conf
    return f"{validate.ipv4(address)}:{PORT}"


def _image(value: str) -> str:
    if not isinstance(value, str) or _IMAGE_RE.fullmatch(value) is None:
        raise ValueError("invalid LB image reference")
    return value


def lb_manifest(image: str, nginx_conf: str) -> str:
    """Static pod manifest of the node LB; a new nginx.conf changes the annotation, so kubelet recreates the pod.

    The marker line lets the node step prove the file is the module's before removing it.
    """
    import yaml

    def probe() -> dict:
        # a fresh dict per use: shared ones would be dumped as a YAML anchor and alias
        return {"tcpSocket": {"host": "127.0.0.1", "port": PORT}, "periodSeconds": 10, "timeoutSeconds": 2,
                "failureThreshold": 3}

    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "registry-proxy",
            "namespace": "d8-system",
            "labels": {"app": "registry", "component": "registry-node-lb", "heritage": "deckhouse",
                       "module": "registry"},
            "annotations": {CONFIG_HASH_ANNOTATION: hashing.sha256(nginx_conf.encode()).hexdigest()},
        },
        "spec": {
            "hostNetwork": True,
            "dnsPolicy": "ClusterFirstWithHostNet",
            "priorityClassName": "system-node-critical",
            "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS},
            "containers": [{
                "name": "nginx",
                "image": image,
                "command": ["nginx", "-c", f"{CONFIG_DIR}/nginx.conf", "-g", "daemon off;"],
                "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}},
                "livenessProbe": probe(),
                "readinessProbe": probe(),
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi", "ephemeral-storage": "10Mi"}},
                "volumeMounts": [
                    {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            }],
            "volumes": [
                {"name": "config", "hostPath": {"path": CONFIG_DIR, "type": "Directory"}},
                {"name": "tmp", "emptyDir": {}},
            ],
        },
    }
    return f"{MARKER}\n{yaml.safe_dump(pod, sort_keys=False, default_flow_style=False)}"


def lb_nginx_conf(endpoints: list[str], listen: str = LISTEN) -> str:
    # `listen` is only ever changed by the loopback tests, which cannot take the production port.
    servers = "\n".join(f"        server {ep} max_fails=1 fail_timeout=10s;" for ep in endpoints)
    # `zone`: both workers share one view of the masters. Without it each worker keeps its own failure
    # marks and connection counts, so a silent master costs a connect timeout once per worker and
    # least_conn balances only within a worker (SPEC 10.6).
    return (
        "worker_processes 2;\n"
        "pid /tmp/registry-proxy.pid;\n"
        "error_log stderr warn;\n"
        "events {\n    worker_connections 16384;\n    multi_accept on;\n}\n"
        "stream {\n"
        "    upstream registry {\n"
        "        zone registry 64k;\n"
        "        least_conn;\n"
        f"{servers}\n"
        "    }\n"
        "    server {\n"
        f"        listen {listen};\n"
        "        proxy_pass registry;\n"
        "        proxy_connect_timeout 1s;\n"
        "        proxy_timeout 1h;\n"
        "        proxy_next_upstream on;\n"
        "        proxy_next_upstream_tries 3;\n"
        "    }\n"
        "}\n"
    )

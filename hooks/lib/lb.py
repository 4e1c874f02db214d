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

from . import hashing


def lb_payload(endpoints: list[str], image: str) -> dict:
    """Node load balancer payload; empty endpoints tell the node step to remove the LB."""
    payload = {"endpoints": list(endpoints), "image": image if endpoints else "", "files": {}}
    if endpoints:
        payload["files"] = {"nginx.conf": lb_nginx_conf(endpoints)}
    payload["version"] = hashing.version_of(payload)
    return payload


def lb_nginx_conf(endpoints: list[str]) -> str:
    servers = "\n".join(f"        server {ep} max_fails=1 fail_timeout=10s;" for ep in endpoints)
    return (
        "worker_processes 2;\n"
        "pid /tmp/registry-proxy.pid;\n"
        "error_log stderr warn;\n"
        "events {\n    worker_connections 16384;\n    multi_accept on;\n}\n"
        "stream {\n"
        "    upstream registry {\n"
        "        least_conn;\n"
        f"{servers}\n"
        "    }\n"
        "    server {\n"
        "        listen 127.0.0.1:5001;\n"
        "        proxy_pass registry;\n"
        "        proxy_connect_timeout 1s;\n"
        "        proxy_timeout 1h;\n"
        "        proxy_next_upstream on;\n"
        "        proxy_next_upstream_tries 3;\n"
        "    }\n"
        "}\n"
    )

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
"""Proxy mode end to end: containerd (CRI) -> rendered hosts.toml -> node LB -> master front -> cache
-> upstream, with the real binaries on loopback (SPEC 5.4-5.9, 6.3, 10.6, 12.1)."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from d8registry import loopback as lo
from lib import pki

pytestmark = pytest.mark.e2e

DASHBOARDS = Path(__file__).resolve().parents[3] / "monitoring" / "grafana-dashboards"


def _exprs(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [e for value in node.values() for e in _exprs(value)]
    if isinstance(node, list):
        return [e for value in node for e in _exprs(value)]
    return []


def _dashboard_distribution_metrics() -> set[str]:
    """distribution's series the Grafana dashboards query (names starting with `registry_`)."""
    return {name for path in DASHBOARDS.rglob("*.json") for expr in _exprs(json.loads(path.read_text()))
            for name in re.findall(r"\b(registry_[a-z_]+)", expr)}


DASHBOARD_DISTRIBUTION_METRICS = _dashboard_distribution_metrics()


@pytest.fixture(autouse=True)
def _fresh(proxy_env):
    proxy_env.restore()
    yield


def _hosts_used(env, since: int) -> list[str]:
    """Hosts containerd sent registry requests to, from its debug log after byte offset `since`."""
    text = env.procs.log("containerd").read_text(errors="replace")[since:]
    return re.findall(r'msg="do request" host="?([0-9.]+:[0-9]+)', text) + \
        re.findall(r'msg="do request" .*?url="https://([0-9.]+:[0-9]+)/', text)


def _log_size(env) -> int:
    return len(env.procs.log("containerd").read_text(errors="replace"))


def _pull(env):
    started = time.monotonic()
    result = env.containerd.pull(env.ref)
    return result, time.monotonic() - started


def _assert_pulled(env, result):
    assert result.returncode == 0, result.stderr[-2000:]
    assert env.image.digest.split(":")[1][:12] in env.containerd.images(), env.containerd.images()


def test_cri_pull_goes_through_hosts_toml_and_the_lb(proxy_env):
    env = proxy_env
    mark = _log_size(env)
    result, _ = _pull(env)
    _assert_pulled(env, result)
    hosts = set(_hosts_used(env, mark))
    assert hosts == {f"127.0.0.1:{env.cluster.lb_port}"}, hosts
    fronts = "".join(env.procs.tail(f"{r.name}-front", 100_000) for r in env.cluster.replicas)
    assert f"/v2/{lo.UPSTREAM_PATH}/blobs/" in fronts, "a master front served the blobs (mapped path)"
    assert env.upstream.requests("GET", "blobs"), "the caches fetched from the upstream"


def test_repeat_pull_is_served_from_the_caches(proxy_env):
    env = proxy_env
    # Each replica keeps its own cache; warm all three so the LB's choice does not matter.
    ro = env.cluster.ro
    for replica in env.cluster.replicas:
        for target in [f"/v2/system/deckhouse/manifests/{env.image.digest}",
                       *(f"/v2/system/deckhouse/blobs/{d}" for d in env.image.blobs)]:
            answer = lo.https(replica.front_address, "GET", target, env.cluster.ca_pem, user=ro["name"],
                              password=ro["password"], headers={"Accept": lo.OCI_MANIFEST})
            assert answer.status == 200, (replica.name, target, answer.status, answer.body[:200])
    blob_gets = len(env.upstream.requests("GET", "blobs"))
    assert blob_gets <= 3 * len(env.image.blobs), "a replica fetches each blob from the upstream at most once"
    before = env.upstream.requests()
    for _ in range(2):
        result, _ = _pull(env)
        _assert_pulled(env, result)
        env.containerd.remove(env.ref)
    after = env.upstream.requests()[len(before):]
    assert [line for line in after if "/blobs/" in line] == []
    assert len([line for line in after if "/manifests/" in line]) <= 1, after


def test_pull_survives_one_and_two_masters_down_and_fails_clearly_with_all_down(proxy_env):
    env = proxy_env
    replicas = env.cluster.replicas
    for down in (1, 2):
        lo.stop_replica(env.procs, replicas[down - 1])
        result, took = _pull(env)
        _assert_pulled(env, result)
        assert took < 30, f"pull with {down} master(s) down took {took:.1f}s"
        env.containerd.remove(env.ref)
    lo.stop_replica(env.procs, replicas[2])
    result, took = _pull(env)
    assert result.returncode != 0
    assert env.ref in result.stderr and "failed to resolve reference" in result.stderr, result.stderr[-2000:]
    assert took < 60, f"a total failure must end quickly, took {took:.1f}s"


def test_masters_are_the_fallback_when_the_lb_is_down(proxy_env):
    env = proxy_env
    env.cluster.stop_lb()
    mark = _log_size(env)
    result, _ = _pull(env)
    _assert_pulled(env, result)
    hosts = _hosts_used(env, mark)
    masters = {f"{r.ip}:{r.layout.port}" for r in env.cluster.replicas}
    assert hosts and set(hosts) <= masters | {f"127.0.0.1:{env.cluster.lb_port}"}, hosts
    assert masters & set(hosts), f"containerd went to a master directly: {hosts}"


def test_front_rules_through_the_lb(proxy_env):
    env = proxy_env
    lb = ("127.0.0.1", env.cluster.lb_port)
    ca = env.cluster.ca_pem
    ro = env.cluster.ro
    manifest = f"/v2/system/deckhouse/manifests/{env.image.digest}"

    anonymous = lo.https(lb, "GET", manifest, ca)
    assert anonymous.status == 401
    assert anonymous.headers.get("www-authenticate") == 'Basic realm="Deckhouse registry"'
    assert lo.https(lb, "GET", manifest, ca, user="ro", password="wrong-password").status == 401
    assert lo.https(lb, "GET", manifest, ca, user="rw", password=ro["password"]).status == 401

    ok = lo.https(lb, "GET", manifest, ca, user=ro["name"], password=ro["password"],
                  headers={"Accept": lo.OCI_MANIFEST})
    assert ok.status == 200 and ok.headers.get("docker-content-digest") == env.image.digest
    assert ok.headers.get("docker-distribution-api-version") == "registry/2.0"
    # read-only: no upload, no delete, not even for the mapped upstream path
    for method, target in [("POST", "/v2/system/deckhouse/blobs/uploads/"), ("DELETE", manifest),
                           ("PUT", "/v2/system/deckhouse/manifests/latest"),
                           ("POST", f"/v2/{lo.UPSTREAM_PATH}/blobs/uploads/")]:
        answer = lo.https(lb, method, target, ca, user=ro["name"], password=ro["password"])
        assert answer.status == 403, (method, target, answer.status)
    # only the mapped repository exists
    for target in ["/v2/other/repo/manifests/latest", "/v2/system/deckhouse-other/manifests/latest",
                   "/v2/_catalog", "/", "/metrics"]:
        answer = lo.https(lb, "GET", target, ca, user=ro["name"], password=ro["password"])
        assert answer.status == 404, (target, answer.status)
    assert lo.https(lb, "GET", "/v2/", ca, user=ro["name"], password=ro["password"]).status == 200
    assert lo.https(lb, "GET", "/healthz", ca).status == 200


def test_tag_pagination_follows_the_upstream_path(proxy_env):
    env = proxy_env
    lb = ("127.0.0.1", env.cluster.lb_port)
    ro = env.cluster.ro
    first = lo.https(lb, "GET", "/v2/system/deckhouse/tags/list?n=2", env.cluster.ca_pem, user=ro["name"],
                     password=ro["password"])
    assert first.status == 200, first.body[:300]
    link = first.headers.get("link", "")
    match = re.match(r"<([^>]+)>", link)
    assert match and match.group(1).startswith(f"/v2/{lo.UPSTREAM_PATH}/tags/list?"), link
    second = lo.https(lb, "GET", match.group(1), env.cluster.ca_pem, user=ro["name"], password=ro["password"])
    assert second.status == 200 and b'"tags"' in second.body


def _pem_pair(directory, name, pair) -> tuple:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    cert.write_text(pair["cert"] if isinstance(pair, dict) else pair.cert)
    key.write_text(pair["key"] if isinstance(pair, dict) else pair.key)
    return cert, key


def test_metrics_listener_serves_only_metrics_to_the_scraper(proxy_env, tmp_path):
    """The PodMonitor's client certificate reads distribution's metrics, the series the dashboard uses
    included; no certificate, or another certificate of the module CA, reads nothing."""
    env = proxy_env
    replica = env.cluster.replicas[0]
    address = (replica.ip, replica.layout.metrics_port)
    ca = pki.KeyPair(env.cluster.state["pki"]["ca"]["cert"], env.cluster.state["pki"]["ca"]["key"])
    scraper, _ = pki.ensure_scraper(ca, None, datetime.now(UTC))
    scraper_files = _pem_pair(tmp_path, "scraper", scraper)
    front_files = _pem_pair(tmp_path, "front", {"cert": replica.files["front.crt"], "key": replica.files["front.key"]})
    # one pull through this replica first, so its request and pull-through series exist
    ro = env.cluster.ro
    assert lo.https(replica.front_address, "GET", f"/v2/system/deckhouse/manifests/{env.image.digest}",
                    env.cluster.ca_pem, user=ro["name"], password=ro["password"],
                    headers={"Accept": lo.OCI_MANIFEST}).status == 200

    metrics = lo.https(address, "GET", "/metrics", env.cluster.ca_pem, client_cert=scraper_files)
    assert metrics.status == 200
    assert DASHBOARD_DISTRIBUTION_METRICS, "the dashboard queries distribution's metrics"
    for name in DASHBOARD_DISTRIBUTION_METRICS:
        assert f"\n{name}".encode() in metrics.body, name
    # the dashboard counts pulls by distribution's handler names
    assert re.search(rb'\nregistry_http_requests_total\{[^}]*handler="manifest"[^}]*method="get"', metrics.body), \
        re.findall(rb"\nregistry_http_requests_total\{[^}]*\}", metrics.body)
    assert lo.https(address, "GET", "/metrics", env.cluster.ca_pem).status == 400  # no certificate sent
    assert lo.https(address, "GET", "/metrics", env.cluster.ca_pem, client_cert=front_files).status in (400, 403)
    assert lo.https(address, "GET", "/debug/pprof/", env.cluster.ca_pem, client_cert=scraper_files).status == 404
    assert lo.https(address, "POST", "/metrics", env.cluster.ca_pem, client_cert=scraper_files).status == 403


def test_access_logs_hold_no_credentials_or_query_strings(proxy_env):
    env = proxy_env
    lb = ("127.0.0.1", env.cluster.lb_port)
    ro = env.cluster.ro
    lo.https(lb, "GET", "/v2/system/deckhouse/tags/list?n=1&secret-query=1", env.cluster.ca_pem,
             user=ro["name"], password=ro["password"])
    logs = "".join(env.procs.tail(f"{r.name}-front", 1_000_000) for r in env.cluster.replicas)
    assert "/tags/list" in logs
    assert "secret-query" not in logs and ro["password"] not in logs and "Basic " not in logs
    assert " ro [" in logs, "the user name is logged"

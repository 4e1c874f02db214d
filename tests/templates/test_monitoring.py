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
"""templates/monitoring.yaml and templates/monitoring/pod-monitor.yaml as Helm renders them from hook-produced values."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from d8registry import helm

from .conftest import run_module
from .test_incluster_proxy import DIRECT
from .test_incluster_proxy import _render as render_direct

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "monitoring" / "grafana-dashboards" / "main" / "registry.json"


def _find(objects, kind, name=None):
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def _pod_templates(objects: list[dict]) -> list[dict]:
    """Every pod of the data plane: the in-cluster proxy's template and the static pods inside the master Secrets."""
    pods = [d["spec"]["template"] for d in _find(objects, "Deployment", "registry-incluster-proxy")]
    for secret in _find(objects, "Secret"):
        if secret["metadata"]["name"].startswith("registry-node-config-") and "registry-nodeservices.yaml" in secret["data"]:
            pods.append(yaml.safe_load(base64.b64decode(secret["data"]["registry-nodeservices.yaml"])))
    return pods


@pytest.fixture(scope="module")
def data_planes(rendered, repo_root, helm_bin) -> dict[str, list[dict]]:
    """Charts with a data plane: the in-cluster proxy (Direct) and the master replicas (Proxy, Local)."""
    return {"direct": render_direct(repo_root, DIRECT), "proxy": rendered["proxy"], "local": rendered["local"]}


@pytest.mark.parametrize("scenario", ["direct", "proxy", "local"])
def test_pod_monitor_selects_every_replica_on_its_metrics_port(data_planes, scenario):
    objects = data_planes[scenario]
    [monitor] = _find(objects, "PodMonitor", "registry-metrics")
    spec = monitor["spec"]
    assert monitor["metadata"]["namespace"] == "d8-monitoring" and spec["namespaceSelector"]["matchNames"] == ["d8-system"]
    pods = _pod_templates(objects)
    assert pods, "the scenario runs a data plane"
    [endpoint] = spec["podMetricsEndpoints"]
    for pod in pods:
        labels = pod["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        ports = {p["name"]: p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        assert ports.get(endpoint["port"]) == 5004
    assert endpoint["scheme"] == "https" and endpoint["path"] == "/metrics"
    assert "insecureSkipVerify" not in endpoint["tlsConfig"]


@pytest.mark.parametrize("scenario", ["direct", "proxy", "local"])
def test_scraper_secret_holds_a_client_certificate_of_the_module_ca(data_planes, scenario):
    objects = data_planes[scenario]
    [secret] = _find(objects, "Secret", "registry-metrics-scraper-tls")
    [pki_secret] = _find(objects, "Secret", "registry-pki")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["ca.crt"] == base64.b64decode(pki_secret["data"]["ca.crt"]).decode()
    ca = x509.load_pem_x509_certificate(data["ca.crt"].encode())
    cert = x509.load_pem_x509_certificate(data["tls.crt"].encode())
    cert.verify_directly_issued_by(ca)
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]
    # the same pair is persisted with the CA, so a restart renders the same Secret
    assert base64.b64decode(pki_secret["data"]["scraper.crt"]).decode() == data["tls.crt"]
    # the TLS secret of every tlsConfig reference is this one
    [monitor] = _find(objects, "PodMonitor")
    tls = monitor["spec"]["podMetricsEndpoints"][0]["tlsConfig"]
    refs = [tls["ca"]["secret"], tls["cert"]["secret"], tls["keySecret"]]
    assert {r["name"] for r in refs} == {"registry-metrics-scraper-tls"} and {r["key"] for r in refs} <= set(data)


@pytest.mark.parametrize("scenario", ["legacy", "unmanaged"])
def test_no_pod_monitor_without_a_data_plane(rendered, scenario):
    assert not _find(rendered[scenario], "PodMonitor")
    assert not _find(rendered[scenario], "Secret", "registry-metrics-scraper-tls")


@pytest.fixture(scope="module")
def proxy_values(repo_root):
    return run_module(repo_root, {"mode": "Proxy", "proxy": {"imagesRepo": "mirror.example.com:5000/d8/ee",
                                                             "username": "u", "password": "p4ss"}}).helm_values()


def _with_modules(values: dict, modules: list[str]) -> dict:
    values = copy.deepcopy(values)
    values["global"]["enabledModules"] = modules
    return values


def test_rules_and_dashboards_follow_the_monitoring_modules(proxy_values, repo_root, helm_bin):
    everything = helm.render(repo_root, _with_modules(proxy_values, ["operator-prometheus-crd", "prometheus-crd"]))
    [dashboard] = _find(everything, "GrafanaDashboardDefinition")
    assert dashboard["metadata"]["name"] == "d8-registry-main-registry" and "namespace" not in dashboard["metadata"]
    assert dashboard["spec"]["folder"] == "Main"
    assert json.loads(dashboard["spec"]["definition"]) == json.loads(DASHBOARD.read_text())
    assert _find(everything, "PrometheusRule", "registry-registry") and _find(everything, "PodMonitor")

    nothing = helm.render(repo_root, _with_modules(proxy_values, ["registry"]))
    for kind in ("GrafanaDashboardDefinition", "PrometheusRule", "PodMonitor"):
        assert not _find(nothing, kind), kind
    no_grafana = helm.render(repo_root, _with_modules(proxy_values, ["operator-prometheus-crd"]))
    assert not _find(no_grafana, "GrafanaDashboardDefinition") and _find(no_grafana, "PrometheusRule")


def test_dashboard_queries_only_metrics_that_exist(repo_root):
    """Every series the dashboard reads is emitted by the hooks (SPEC 9.2), by distribution, or by the cluster's
    exporters (node-exporter, kube-state-metrics); a typo in a name would leave a panel empty forever."""
    import re

    hooks_text = "".join(p.read_text() for p in (repo_root / "hooks").rglob("*.py"))
    definition = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in definition["panels"] for t in panel.get("targets", [])]
    assert exprs
    # metric names are the identifiers with an underscore that are not functions (label names here have none)
    names = {n for e in exprs for n in re.findall(r"\b([a-z][a-z0-9]*_[a-z0-9_]*)\b(?!\s*\()", e)}
    for name in sorted(names):
        if name.startswith("d8_registry_"):
            assert f'"{name}"' in hooks_text, f"{name} is not emitted by any hook"
        else:
            assert name.startswith(("registry_", "node_filesystem_", "kube_pod_")), name

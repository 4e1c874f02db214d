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
"""The Local push endpoint through Helm (SPEC 5.8, 8.2): Service registry-push, Ingress registry with the
spec's annotations, and TLS per https mode; rendered only when every condition holds, never half."""

from __future__ import annotations

import base64
import copy

import pytest
from d8registry import helm

from tests.templates.conftest import SCENARIOS, run_module, validate_object

pytestmark = pytest.mark.helm
PUSH_KINDS = {("Service", "registry-push"), ("Ingress", "registry"), ("Certificate", "registry-ingress"),
              ("Secret", "registry-ingress-tls-customcertificate")}
PEM = {"tls.crt": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
       "tls.key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"}


@pytest.fixture(scope="module")
def local_values(repo_root, helm_bin):
    return run_module(repo_root, SCENARIOS["local"]).helm_values()


def _render(repo_root, values, *, module=None, modules=None, domain="%s.example.com", data=None):
    values = copy.deepcopy(values)
    values["registry"].update(module or {})
    if modules is not None:
        values["global"]["enabledModules"] = modules
    values["global"]["modules"]["publicDomainTemplate"] = domain
    if domain == "":
        del values["global"]["modules"]["publicDomainTemplate"]
    if data is not None:
        values["registry"]["internal"]["customCertificateData"] = data
    objects = helm.render(repo_root, values)
    return {(o["kind"], o["metadata"]["name"]): o for o in objects
            if (o["kind"], o["metadata"]["name"]) in PUSH_KINDS}


def test_cert_manager_mode_renders_service_ingress_and_certificate(repo_root, local_values):
    objects = _render(repo_root, local_values, module={"whitelistSourceRanges": ["10.0.0.0/8", "192.168.1.0/24"]})
    assert set(objects) == PUSH_KINDS - {("Secret", "registry-ingress-tls-customcertificate")}
    for obj in objects.values():
        validate_object(obj)
        assert obj["metadata"]["namespace"] == "d8-system"
        assert obj["metadata"]["labels"]["heritage"] == "deckhouse" and obj["metadata"]["labels"]["module"] == "registry"
    service = objects[("Service", "registry-push")]["spec"]
    assert service["type"] == "ClusterIP"
    assert service["ports"] == [{"name": "registry", "port": 5001, "targetPort": "registry", "protocol": "TCP"}]
    assert service["selector"] == {"app": "registry", "component": "registry-service", "type": "node-services"}
    ingress = objects[("Ingress", "registry")]
    assert ingress["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/backend-protocol": "HTTPS",
        "nginx.ingress.kubernetes.io/upstream-hash-by": "$remote_addr",
        "nginx.ingress.kubernetes.io/proxy-body-size": "0",
        "nginx.ingress.kubernetes.io/proxy-request-buffering": "off",
        "nginx.ingress.kubernetes.io/whitelist-source-range": "10.0.0.0/8,192.168.1.0/24"}
    assert not any("snippet" in key for key in ingress["metadata"]["annotations"])
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["rules"][0]["host"] == "registry.example.com"
    assert spec["rules"][0]["http"]["paths"][0]["backend"] == {"service": {"name": "registry-push",
                                                                          "port": {"name": "registry"}}}
    assert spec["tls"] == [{"hosts": ["registry.example.com"], "secretName": "registry-ingress-tls"}]
    certificate = objects[("Certificate", "registry-ingress")]["spec"]
    assert certificate["secretName"] == "registry-ingress-tls"
    assert certificate["dnsNames"] == ["registry.example.com"]
    assert certificate["issuerRef"] == {"name": "letsencrypt", "kind": "ClusterIssuer"}


def test_module_settings_override_class_and_issuer(repo_root, local_values):
    objects = _render(repo_root, local_values, module={
        "ingressClass": "push", "https": {"mode": "CertManager", "certManager": {"clusterIssuerName": "selfsigned"}}})
    assert objects[("Ingress", "registry")]["spec"]["ingressClassName"] == "push"
    assert "nginx.ingress.kubernetes.io/whitelist-source-range" not in objects[("Ingress", "registry")]["metadata"]["annotations"]
    assert objects[("Certificate", "registry-ingress")]["spec"]["issuerRef"]["name"] == "selfsigned"


def test_custom_certificate_mode_copies_the_hooks_data(repo_root, local_values):
    module = {"https": {"mode": "CustomCertificate", "customCertificate": {"secretName": "mine"}}}
    objects = _render(repo_root, local_values, module=module, data=PEM)
    assert ("Certificate", "registry-ingress") not in objects
    secret = objects[("Secret", "registry-ingress-tls-customcertificate")]
    validate_object(secret)
    assert secret["type"] == "kubernetes.io/tls"
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == PEM
    assert objects[("Ingress", "registry")]["spec"]["tls"][0]["secretName"] == "registry-ingress-tls-customcertificate"
    # the hook found no usable Secret: nothing is rendered, not an Ingress without its certificate
    assert _render(repo_root, local_values, module=module) == {}


@pytest.mark.parametrize("mode", ["OnlyInURI", "Disabled"])
def test_modes_without_tls_in_the_ingress(repo_root, local_values, mode):
    objects = _render(repo_root, local_values, module={"https": {"mode": mode}})
    assert set(objects) == {("Service", "registry-push"), ("Ingress", "registry")}
    assert "tls" not in objects[("Ingress", "registry")]["spec"]


def test_nothing_without_its_preconditions(repo_root, local_values):
    modules = local_values["global"]["enabledModules"]
    assert _render(repo_root, local_values, modules=[m for m in modules if m != "ingress-nginx"]) == {}
    assert _render(repo_root, local_values, domain="") == {}
    # CertManager without cert-manager: no push endpoint, and the rest of the release still renders
    assert _render(repo_root, local_values, modules=[m for m in modules if m != "cert-manager"]) == {}
    assert set(_render(repo_root, local_values, modules=[m for m in modules if m != "cert-manager"],
                       module={"https": {"mode": "OnlyInURI"}})) == {("Service", "registry-push"), ("Ingress", "registry")}


def test_other_modes_have_no_push_endpoint(rendered):
    for scenario, objects in rendered.items():
        names = {(o["kind"], o["metadata"]["name"]) for o in objects}
        if scenario == "local":
            assert ("Ingress", "registry") in names
        else:
            assert not names & PUSH_KINDS, scenario

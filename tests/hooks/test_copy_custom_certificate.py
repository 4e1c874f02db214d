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
"""copy_custom_certificate through the addon-operator harness (its binding, its jqFilter, strict values
patches, the values schema) and as a process: the push endpoint's certificate in CustomCertificate mode
(SPEC 5.8, 7.1). A missing or broken Secret leaves no data behind and names the problem; the key never
appears in the hook's output."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from d8registry.operator import bindings
from d8registry.operator.module import ModuleHarness
from lib import pki

NAME = "registry-push-tls"
CUSTOM = {"https": {"mode": "CustomCertificate", "customCertificate": {"secretName": NAME}}}


def _pair(cn_ip: str = "127.0.0.1") -> tuple[str, str]:
    ca, _ = pki.ensure_ca(None, datetime.now(UTC))
    leaf, _ = pki.ensure_leaf(ca, None, ["registry.example.com"], [cn_ip], datetime.now(UTC))
    return leaf.cert, leaf.key


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _tls_secret(name: str, crt: str, key: str, ca: str | None = None, type_: str = "kubernetes.io/tls") -> dict:
    data = {"tls.crt": _b64(crt), "tls.key": _b64(key)}
    if ca:
        data["ca.crt"] = _b64(ca)
    return {"apiVersion": "v1", "kind": "Secret", "type": type_,
            "metadata": {"name": name, "namespace": "d8-system"}, "data": data}


def _logs(result) -> str:
    return "\n".join(json.dumps(entry) if not isinstance(entry, str) else entry for entry in result.logs)


@pytest.fixture
def run(repo_root, example_cluster):
    def go(objects=(), config=None, initial=None, in_process=True):
        harness = ModuleHarness(repo_root, list(example_cluster.objects) + list(objects), example_cluster.globals,
                                config_values=config or {}, in_process=in_process)
        if initial is not None:
            harness.module_values["internal"]["customCertificateData"] = initial
        hook = harness.hook("copy_custom_certificate")
        result = harness.run(hook, [bindings.helm_phase_context(harness.config(hook), "beforeHelm", harness.objects)])
        return harness, result
    return go


def test_binding_is_the_spec_one(repo_root):
    from d8registry.operator import protocol

    config = protocol.hook_config(repo_root / "hooks" / "copy_custom_certificate.py")
    assert config["beforeHelm"] == 8
    (binding,) = config["kubernetes"]
    assert binding["group"] == "custom_certificate" and binding["queue"] == "/modules/registry/custom-certificate"
    assert binding["fieldSelector"] == {"matchExpressions": [
        {"field": "type", "operator": "Equals", "value": "kubernetes.io/tls"}]}
    obj = {"metadata": {"name": "x"}, "data": {"tls.crt": "Yw==", "tls.key": "aw==", "ca.crt": "YQ=="}}
    assert bindings.apply_jq_filter(binding["jqFilter"], obj) == {"name": "x", "crt": "Yw==", "key": "aw==",
                                                                  "ca": "YQ=="}


def test_the_named_secret_is_copied_as_pem_and_a_second_run_changes_nothing(run):
    crt, key = _pair()
    harness, result = run([_tls_secret(NAME, crt, key, ca=crt), _tls_secret("other", *_pair())], CUSTOM)
    assert harness.module_values["internal"]["customCertificateData"] == {"tls.crt": crt, "tls.key": key,
                                                                          "ca.crt": crt}
    again = harness.run(harness.hook("copy_custom_certificate"), [bindings.helm_phase_context(
        harness.config(harness.hook("copy_custom_certificate")), "beforeHelm", harness.objects)])
    assert again.values_patch == []


@pytest.mark.parametrize("case", ["missing", "not-tls-type", "not-base64", "not-pem", "foreign-key", "no-name"])
def test_an_unusable_secret_leaves_no_data_and_names_the_problem(run, case):
    crt, key = _pair()
    _, other_key = _pair()
    objects, config = [], CUSTOM
    if case == "not-tls-type":
        objects = [_tls_secret(NAME, crt, key, type_="Opaque")]
    elif case == "not-base64":
        objects = [{**_tls_secret(NAME, crt, key), "data": {"tls.crt": "%%%", "tls.key": _b64(key)}}]
    elif case == "not-pem":
        objects = [_tls_secret(NAME, "hello", key)]
    elif case == "foreign-key":
        objects = [_tls_secret(NAME, crt, other_key)]
    elif case == "no-name":
        config = {"https": {"mode": "CustomCertificate"}}
    previous = {"tls.crt": crt, "tls.key": key}
    harness, result = run(objects, config, initial=previous)
    assert "customCertificateData" not in harness.module_values["internal"]
    logs = _logs(result)
    assert "Push endpoint certificate not usable" in logs
    expected = {"missing": "does not exist", "not-tls-type": "does not exist", "not-base64": "not base64",
                "not-pem": "not a PEM", "foreign-key": "does not belong", "no-name": "secretName is not set"}[case]
    assert expected in logs
    for secret in (key.splitlines()[1], other_key.splitlines()[1], _b64(key)[:40], _b64(other_key)[:40]):
        assert secret not in logs


def test_other_modes_drop_the_data(run):
    crt, key = _pair()
    harness, _ = run([_tls_secret(NAME, crt, key)], {"https": {"mode": "CertManager"}},
                     initial={"tls.crt": crt, "tls.key": key})
    assert "customCertificateData" not in harness.module_values["internal"]
    # the global https mode applies when the module sets none (the example cluster: CertManager)
    harness, _ = run([_tls_secret(NAME, crt, key)], {})
    assert "customCertificateData" not in harness.module_values["internal"]


def test_as_a_process_through_the_hook_protocol(run):
    crt, key = _pair()
    harness, result = run([_tls_secret(NAME, crt, key)], CUSTOM, in_process=False)
    assert harness.module_values["internal"]["customCertificateData"]["tls.key"] == key
    assert key.splitlines()[1] not in _logs(result)

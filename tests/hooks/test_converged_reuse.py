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
"""A converged run reuses what it already checked (issue #15), keyed by digests of the exact material:
a changed certificate, or a time past the renewal point, is checked and replaced as before."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import pytest
from cryptography import x509

PROXY = {"mode": "Proxy", "proxy": {"imagesRepo": "mirror.example.com:5000/d8/ee", "license": "reuse-license"}}
NOW = datetime(2026, 11, 27, 10, 0, 0).astimezone()


def _state(harness):
    return harness.module_values["internal"]["orchestrator"]["state"]


def _converged(make_harness):
    harness = make_harness(PROXY, in_process=False)
    harness.before_helm()
    checker = harness.module_values["internal"]["checker"]
    checker["state"] = {"version": checker["params"]["version"], "ready": True, "message": "Mode: Default"}
    harness.before_helm()
    nodes = _state(harness)["node_services"]["nodes"]
    assert nodes and all(entry.get("source") and entry.get("cert_window") for entry in nodes.values())
    assert _state(harness)["pki"]["checked"]["source"]
    assert _state(harness)["users_source"]
    return harness


def _issued_by(cert_pem: str, ca_pem: str) -> bool:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    try:
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem.encode()))
    except Exception:
        return False
    return True


def test_a_rerun_on_its_own_output_changes_nothing(make_harness):
    harness = _converged(make_harness)
    hook = harness.hook("orchestrator")
    harness.before_helm()
    harness.assert_converged(hook)


# What a converged run has no use for: it verifies, renders and validates nothing again (see the tests below
# for the inputs that make it do so), and reads its own times and addresses without datetime and ipaddress.
NOT_LOADED_WHEN_CONVERGED = ("jsonschema", "yaml", "cryptography", "bcrypt", "tomli_w", "datetime", "ipaddress",
                             "base64", "secrets", "lib.pki", "lib.front", "lib.lb", "lib.persist")


def test_a_converged_run_loads_nothing_it_has_no_use_for(make_harness):
    from d8registry.operator import bindings

    harness = _converged(make_harness)
    hook = harness.hook("orchestrator")
    harness.env["PYTHONPROFILEIMPORTTIME"] = "1"
    result = harness.execute(hook, [bindings.helm_phase_context(harness.config(hook), "beforeHelm", harness.objects)])
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "lib.stages" in imported, "the import log was read"
    assert not imported & set(NOT_LOADED_WHEN_CONVERGED), sorted(imported & set(NOT_LOADED_WHEN_CONVERGED))
    assert result.values_patch == []


def test_a_front_certificate_from_another_ca_is_replaced_despite_the_recorded_digest(make_harness):
    from lib import pki

    harness = _converged(make_harness)
    state = _state(harness)
    name, entry = sorted(state["node_services"]["nodes"].items())[0]
    ca = state["pki"]["ca"]
    # a certificate for the same names, issued by a foreign CA, put where the verified one was;
    # the digest and window recorded for the verified one are left in place
    genuine = x509.load_pem_x509_certificate(entry["files"]["front.crt"].encode())
    sans = genuine.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = sans.get_values_for_type(x509.DNSName)
    ips = [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
    foreign = pki._generate_leaf(pki._generate_ca(NOW), dns, ips, NOW)
    entry["files"]["front.crt"], entry["files"]["front.key"] = foreign.cert, foreign.key
    assert not _issued_by(foreign.cert, ca["cert"])

    harness.before_helm()
    after = _state(harness)["node_services"]["nodes"][name]
    assert after["files"]["front.crt"] != foreign.cert
    assert _issued_by(after["files"]["front.crt"], ca["cert"])
    assert after["version"] != entry["version"]


def test_a_tampered_ca_key_is_checked_again(make_harness):
    from lib import pki

    harness = _converged(make_harness)
    state = _state(harness)
    before = dict(state["pki"]["ca"])
    # a key that does not belong to the certificate: the pair is unusable and a new CA is generated
    state["pki"]["ca"]["key"] = pki._generate_ca(NOW).key
    harness.before_helm()
    after = _state(harness)["pki"]
    assert after["ca"]["cert"] != before["cert"]
    assert after["checked"]["source"] != state["pki"]["checked"]["source"]


def test_past_the_renewal_point_the_front_certificate_is_renewed(make_harness):
    harness = _converged(make_harness)
    name, entry = sorted(_state(harness)["node_services"]["nodes"].items())[0]
    renew = datetime.fromisoformat(entry["cert_window"][1])
    harness.env["REGISTRY_FAKE_NOW"] = (renew + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    harness.before_helm()
    after = _state(harness)["node_services"]["nodes"][name]
    assert after["files"]["front.crt"] != entry["files"]["front.crt"]
    assert datetime.fromisoformat(after["cert_window"][1]) > renew + timedelta(days=1)


def test_an_edited_node_lb_payload_is_rendered_again_despite_the_recorded_digest(make_harness):
    harness = _converged(make_harness)
    config = _state(harness)["node_config"]
    assert _state(harness)["lb_source"]
    genuine = config["lb"]
    config["lb"] = {**genuine, "files": {**genuine["files"], "nginx.conf": "events {}\n"}}
    harness.before_helm()
    assert _state(harness)["node_config"]["lb"] == genuine


@pytest.mark.parametrize("edit", ["password_hash", "password"])
def test_an_edited_user_is_verified_again_despite_the_recorded_digest(make_harness, edit):
    from lib import users

    harness = _converged(make_harness)
    state = _state(harness)
    genuine = dict(state["users"]["ro"])
    # a well-formed hash at the module's own cost, but of another password (or another password for the
    # recorded hash); users_source, recorded for the genuine pair, is left in place
    other = users.random_password()
    edited = {**genuine, edit: users.hash_password(other) if edit == "password_hash" else other}
    state["users"]["ro"] = edited
    assert not users.verify_password(edited["password"], edited["password_hash"])

    harness.before_helm()
    after = _state(harness)["users"]["ro"]
    assert after["password"] == edited["password"]
    assert after["password_hash"] != edited["password_hash"]
    assert users.verify_password(after["password"], after["password_hash"])


def test_after_a_restart_the_users_restored_from_their_secrets_are_verified(make_harness, repo_root, helm_bin):
    from d8registry import helm
    from d8registry.operator.module import ModuleHarness
    from lib import users

    harness = _converged(make_harness)
    rendered = helm.render(repo_root, harness.helm_values())
    secret = next(o for o in rendered if o["kind"] == "Secret" and o["metadata"]["name"] == "registry-user-ro")
    password = base64.b64decode(secret["data"]["password"]).decode()
    foreign = users.hash_password(users.random_password())
    secret["data"]["passwordHash"] = base64.b64encode(foreign.encode()).decode()
    store = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
             for o in [*harness.objects, *rendered]}

    # values wiped: the state comes back from the Secrets, without any recorded digest
    restarted = ModuleHarness(repo_root, list(store.values()), harness.global_values, env=dict(harness.env))
    restarted.module_values["internal"]["checker"] = harness.module_values["internal"]["checker"]
    restarted.before_helm()
    after = _state(restarted)["users"]["ro"]
    assert after["password"] == password
    assert after["password_hash"] != foreign
    assert users.verify_password(password, after["password_hash"])

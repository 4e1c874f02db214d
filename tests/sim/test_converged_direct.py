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
"""Direct, once switched, runs the in-cluster proxy for good: every orchestrator run after that reuses the
proxy's files it already rendered and checked (issue #15), and renders them again when they were tampered with
or their certificate is due, as before."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from cryptography import x509
from d8registry.operator import bindings, protocol

from ..hooks.test_converged_reuse import _issued_by
from .switching import request, switch

# what an orchestrator run in converged Direct has no use for (tests/hooks/test_converged_reuse.py: Proxy)
NOT_LOADED = ("jsonschema", "yaml", "cryptography", "bcrypt", "tomli_w", "lib.pki", "lib.front")


@pytest.fixture
def direct(make_sim):
    sim = make_sim()
    switch(sim, request(sim, "mode=Direct"))
    proxy = sim.state()["incluster_proxy"]
    assert proxy["source"] and proxy["cert_window"] and proxy["files"]["htpasswd"]
    return sim


def _orchestrator_process(sim):
    """One beforeHelm run of the orchestrator as addon-operator starts it, with its import log."""
    hook = sim.harness.hook("orchestrator")
    contexts = [bindings.helm_phase_context(sim.harness.config(hook), "beforeHelm", sim.store.objects())]
    config_values = {"global": {}, "registry": sim.harness.config_values}
    return protocol.run_subprocess(hook, contexts, sim.harness.values, config_values,
                                   extra_env={**sim.harness.env, "PYTHONPROFILEIMPORTTIME": "1"})


def test_a_converged_direct_run_renders_and_verifies_nothing_again(direct):
    result = _orchestrator_process(direct)
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "lib.stages" in imported, "the import log was read"
    assert not imported & set(NOT_LOADED), sorted(imported & set(NOT_LOADED))
    assert result.values_patch == []


def test_a_foreign_proxy_certificate_is_replaced_despite_the_recorded_digest(direct):
    from lib import pki

    state = direct.harness.module_values["internal"]["orchestrator"]["state"]
    proxy = state["incluster_proxy"]
    genuine = x509.load_pem_x509_certificate(proxy["files"]["front.crt"].encode())
    sans = genuine.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    now = datetime(2026, 11, 27, 10, 0, 0).astimezone()
    foreign = pki._generate_leaf(pki._generate_ca(now), sans.get_values_for_type(x509.DNSName),
                                 [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)], now)
    proxy["files"]["front.crt"], proxy["files"]["front.key"] = foreign.cert, foreign.key
    direct.harness.before_helm()
    after = direct.harness.module_values["internal"]["orchestrator"]["state"]["incluster_proxy"]
    assert after["files"]["front.crt"] != foreign.cert
    assert _issued_by(after["files"]["front.crt"], state["pki"]["ca"]["cert"])


def test_an_edited_proxy_file_is_rendered_again_despite_the_recorded_digest(direct):
    proxy = direct.harness.module_values["internal"]["orchestrator"]["state"]["incluster_proxy"]
    genuine = dict(proxy["files"])
    proxy["files"]["htpasswd"] = "someone:$2b$10$" + "x" * 53 + "\n"
    direct.harness.before_helm()
    assert direct.harness.module_values["internal"]["orchestrator"]["state"]["incluster_proxy"]["files"] == genuine


def test_past_the_renewal_point_the_proxy_certificate_is_renewed(direct):
    proxy = direct.harness.module_values["internal"]["orchestrator"]["state"]["incluster_proxy"]
    renew = datetime.fromisoformat(proxy["cert_window"][1])
    direct.harness.env["REGISTRY_FAKE_NOW"] = (renew + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    direct.harness.before_helm()
    after = direct.harness.module_values["internal"]["orchestrator"]["state"]["incluster_proxy"]
    assert after["files"]["front.crt"] != proxy["files"]["front.crt"]
    assert datetime.fromisoformat(after["cert_window"][1]) > renew + timedelta(days=1)

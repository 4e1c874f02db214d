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
"""The checker hook against real registries on loopback (distribution v3, distribution's token server)."""

from __future__ import annotations

import time

import pytest
from lib import checker, checker_http

from .conftest import (
    PASSWORD,
    REGISTRY_HOST,
    REPOSITORY,
    USERNAME,
    CheckerHarness,
    TcpRelay,
    make_image_set,
    metric,
)

NAME = REGISTRY_HOST


def _params(loopback, registry, *, password=PASSWORD, username=USERNAME, ca=None, check_mode="Default",
            address=None, version="v1"):
    entry = {"address": address or f"{REGISTRY_HOST}/{REPOSITORY}", "scheme": registry.scheme}
    if registry.scheme == "HTTPS":
        entry["ca"] = loopback.pki.ca_pem if ca is None else ca
    if username:
        entry.update(username=username, password=password)
    return {"registries": {NAME: entry}, "checkMode": check_mode, "version": version}


def _env(loopback, registry, **extra):
    env = {"REGISTRY_CHECKER_HOST_OVERRIDES": loopback.overrides(registry),
           # a proxy from the machine must not capture loopback test traffic
           "HTTPS_PROXY": "", "HTTP_PROXY": "", "https_proxy": "", "http_proxy": ""}
    env.update(extra)
    return env


def _harness(loopback, registry, image_set, **params):
    return CheckerHarness(image_set.global_values, [image_set.deployment], _params(loopback, registry, **params),
                          env=_env(loopback, registry))


def _expected_items(image_set) -> int:
    return len(image_set.digests) + 3  # module images + 3 deckhouse containers


def _assert_no_secret(result, *secrets):
    """Values carry params (with credentials) by design; the state, logs and metrics must not."""
    state_ops = repr([op for op in result.values_patch if op["path"].startswith("/registry/internal/checker/state")])
    for secret in secrets:
        assert secret not in state_ops, "secret in the checker state"
        assert secret not in result.stderr + repr(result.metrics), "secret in logs or metrics"


@pytest.mark.parametrize("kind", ["basic", "token", "plain"])
def test_all_images_present_is_ready_and_converges(loopback, small_set, kind):
    registry = getattr(loopback, kind)
    if registry is None:
        pytest.skip("token-server was not built (see the Makefile's tools target)")
    if kind == "plain":
        name = registry.loopback
        params = {"registries": {name: {"address": f"{name}/{REPOSITORY}", "scheme": "HTTP"}}, "version": "v1"}
        harness = CheckerHarness(small_set.global_values, [small_set.deployment], params, env=_env(loopback, registry))
    else:
        harness, name = _harness(loopback, registry, small_set), NAME
    result = harness.run()
    total = _expected_items(small_set)
    assert harness.state["ready"] is True, harness.state["message"]
    assert harness.state["message"] == f"Mode: Default\n{name}: all {total} items are checked"
    assert harness.state["version"] == "v1"
    assert metric(result, "d8_registry_checker_items", {"registry": name}) == total
    assert metric(result, "d8_registry_checker_items_failed", {"registry": name}) == 0
    assert metric(result, "d8_registry_checker_ready") == 1
    assert any(r["msg"] == "Checker loop done" and r["processed"] == total for r in result.logs)
    _assert_no_secret(result, PASSWORD)
    assert harness.pending_patch() == [], "a second run with nothing left to check must not patch values"


def test_missing_image_is_named_and_fixing_the_registry_makes_it_ready(loopback, pusher):
    image_set = make_image_set(pusher, {"ingress-nginx": ["controller110", "kruise"], "prometheus": ["grafana"]},
                               prefix="fix-")
    missing = image_set.digests["fix-ingress-nginx/kruise"]
    pusher.delete(missing)
    harness = _harness(loopback, loopback.basic, image_set)
    harness.run()
    state = harness.state
    total = _expected_items(image_set)
    assert state["ready"] is False
    assert state["message"] == (
        f"Mode: Default\n{NAME}: {total - 1} of {total} items processed, 1 items with errors:\n"
        f"- source: module/ingress-nginx/kruise\n"
        f"  image: {REGISTRY_HOST}/{REPOSITORY}@{missing}\n"
        f"  error: 404 Not Found: the registry does not have this image")

    # someone pushes the image; the next runs pick it up (retries wait 10 s after being moved back)
    assert pusher.manifest("fix-ingress-nginx/kruise") == missing
    result = harness.run()
    assert any(r["msg"] == "Retry items moved" for r in result.logs)
    assert harness.state["ready"] is False
    harness.run()
    assert harness.state["ready"] is True
    assert harness.state["message"] == f"Mode: Default\n{NAME}: all {total} items are checked"


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_wrong_password_gives_a_401_message_without_the_password(loopback, small_set, kind):
    registry = getattr(loopback, kind)
    if registry is None:
        pytest.skip("token-server was not built (see the Makefile's tools target)")
    wrong = "Wr0ng-pa55word-e2e"
    harness = _harness(loopback, registry, small_set, password=wrong)
    result = harness.run()
    message = harness.state["message"]
    assert harness.state["ready"] is False
    assert f"0 of {_expected_items(small_set)} items processed" in message
    assert "401 Unauthorized" in message and "rejected" in message
    if kind == "token":
        assert "token service https://auth.test/token/" in message
        assert "?" not in message, "no query string in errors"
    assert message.count("- source:") == checker.MAX_ERROR_BLOCKS and message.endswith("...and more")
    _assert_no_secret(result, wrong, PASSWORD)


def test_token_auth_without_credentials_is_refused(loopback, small_set):
    if loopback.token is None:
        pytest.skip("token-server was not built (see the Makefile's tools target)")
    harness = _harness(loopback, loopback.token, small_set, username="")
    harness.run()
    assert "anonymous access is not allowed" in harness.state["message"]


def test_wrong_ca_gives_a_tls_message(loopback, small_set):
    harness = _harness(loopback, loopback.basic, small_set, ca=loopback.pki.other_ca_pem)
    harness.run()
    assert "TLS certificate of the registry registry.test is not trusted" in harness.state["message"]


def test_environment_ca_variables_do_not_decide_trust(loopback, small_set):
    """SSL_CERT_FILE names the test CA, yet without a CA in params the registry is not trusted."""
    harness = _harness(loopback, loopback.basic, small_set, ca="")
    harness.harness.env.update(SSL_CERT_FILE=str(loopback.pki.ca_file), REQUESTS_CA_BUNDLE=str(loopback.pki.ca_file),
                               SSL_CERT_DIR=str(loopback.workdir))
    harness.run()
    assert "is not trusted" in harness.state["message"]


def test_unreachable_registry_gives_a_clear_message(loopback, small_set):
    from .conftest import free_port

    closed = free_port()
    harness = CheckerHarness(small_set.global_values, [small_set.deployment],
                             {"registries": {NAME: {"address": f"{REGISTRY_HOST}/{REPOSITORY}", "scheme": "HTTPS"}},
                              "version": "v1"},
                             env={"REGISTRY_CHECKER_HOST_OVERRIDES": f"{REGISTRY_HOST}=127.0.0.1:{closed}"})
    started = time.monotonic()
    harness.run()
    assert time.monotonic() - started < 5
    assert "connection to the registry registry.test refused" in harness.state["message"]


def test_https_against_a_plain_http_registry_names_the_scheme(loopback, small_set):
    harness = CheckerHarness(small_set.global_values, [small_set.deployment],
                             {"registries": {NAME: {"address": f"{REGISTRY_HOST}/{REPOSITORY}", "scheme": "HTTPS"}},
                              "version": "v1"},
                             env=_env(loopback, loopback.plain))
    harness.run()
    assert "TLS handshake with the registry registry.test failed" in harness.state["message"]
    assert "scheme" in harness.state["message"]


def test_relax_mode_checks_only_the_deckhouse_tag(loopback, small_set):
    harness = _harness(loopback, loopback.basic, small_set, check_mode="Relax")
    harness.run()
    assert harness.state["message"] == f"Mode: Relax\n{NAME}: all 1 items are checked"
    assert harness.state["ready"] is True


def test_params_change_mid_check_restarts_the_queue(loopback, pusher, monkeypatch):
    image_set = make_image_set(pusher, {"big-module": [f"image{i}" for i in range(300)]}, prefix="mid-")
    relay = TcpRelay(("127.0.0.1", loopback.basic.port), delay=0.01)
    try:
        monkeypatch.setattr(checker, "BUDGET_SECONDS", 1.0)
        harness = _harness(loopback, loopback.basic, image_set)
        harness.harness.env["REGISTRY_CHECKER_HOST_OVERRIDES"] = f"{REGISTRY_HOST}=127.0.0.1:{relay.port}"
        harness.run()
        queue = harness.state["queues"][NAME]
        assert 0 < queue["processed"] < _expected_items(image_set), "the budget must cut the first run"
        first_hash = queue["params_hash"]

        # the orchestrator switches to other credentials while the check is under way
        harness.set_params(_params(loopback, loopback.basic, version="v2", password=PASSWORD + "-new"))
        result = harness.run()
        queue = harness.state["queues"][NAME]
        assert queue["params_hash"] != first_hash
        assert any(r["msg"] == "Added queue" for r in result.logs)
        # on a busy machine the 1 s budget can end before the first answer; later runs go on (bounded)
        for _ in range(5):
            if queue["retry"]:
                break
            harness.run()
            queue = harness.state["queues"][NAME]
        assert queue["processed"] == 0 and len(queue["retry"]) > 0  # rebuilt, new password refused
        assert harness.state["version"] == "v2"
    finally:
        relay.close()


def test_time_budget_holds_with_thousands_of_images_on_a_slow_registry(loopback, big_set, monkeypatch):
    """2000 images behind a relay adding 10 ms per request, 1.5 s budget: every run stays within the
    budget, progress is kept across runs and the set completes."""
    image_set = big_set
    total = _expected_items(image_set)
    assert total > 2000
    relay = TcpRelay(("127.0.0.1", loopback.basic.port), delay=0.01)
    budget = 1.5
    monkeypatch.setattr(checker, "BUDGET_SECONDS", budget)
    try:
        harness = _harness(loopback, loopback.basic, image_set)
        harness.harness.env["REGISTRY_CHECKER_HOST_OVERRIDES"] = f"{REGISTRY_HOST}=127.0.0.1:{relay.port}"
        progress = []
        for _ in range(150):  # bounded; about 10 runs on an idle machine, 50 under a load of 15
            result = harness.run()
            elapsed = metric(result, "d8_registry_checker_run_duration_seconds")
            assert elapsed < budget + 0.3, f"run took {elapsed:.2f}s, budget {budget}s"
            progress.append(harness.state["queues"][NAME]["processed"])
            if harness.state["ready"]:
                break
        assert harness.state["ready"] is True, progress
        assert len(progress) >= 3, "the set must not fit into one run, or the budget is not exercised"
        assert progress == sorted(progress) and progress[-1] == total
        assert harness.state["queues"][NAME]["retry"] == []
    finally:
        relay.close()


def test_thousands_of_images_fit_one_run_on_a_fast_registry(loopback, big_set):
    name = loopback.plain.loopback
    params = {"registries": {name: {"address": f"{name}/{REPOSITORY}", "scheme": "HTTP"}}, "version": "v1"}
    harness = CheckerHarness(big_set.global_values, [big_set.deployment], params, env=_env(loopback, loopback.plain))
    result = harness.run()
    assert metric(result, "d8_registry_checker_run_duration_seconds") < checker.BUDGET_SECONDS
    assert harness.state["ready"] is True, harness.state["message"]
    assert harness.state["queues"][name]["processed"] == _expected_items(big_set)


def test_cluster_proxy_is_used_for_https(loopback, small_set):
    """HTTPS_PROXY is honoured with CONNECT; the TLS name is still the registry's."""
    proxy = TcpRelay(("127.0.0.1", loopback.basic.port), connect=True)
    try:
        port = loopback.basic.port
        params = _params(loopback, loopback.basic, address=f"localhost:{port}/{REPOSITORY}")
        params["registries"] = {"localhost": params["registries"][NAME]}
        harness = CheckerHarness(small_set.global_values, [small_set.deployment], params,
                                 env={"HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}",
                                      "https_proxy": f"http://127.0.0.1:{proxy.port}", "NO_PROXY": "", "no_proxy": ""})
        harness.run()
        assert harness.state["ready"] is True, harness.state["message"]
        assert proxy.tunnels and set(proxy.tunnels) == {f"localhost:{port}"}

        # NO_PROXY wins over the proxy
        proxy.tunnels.clear()
        harness.harness.env.update(NO_PROXY="localhost", no_proxy="localhost")
        harness.set_params({**params, "version": "v2", "checkMode": "Relax"})
        harness.run()
        assert harness.state["ready"] is True and proxy.tunnels == []
    finally:
        proxy.close()


def test_client_reuses_the_token_for_a_whole_run(loopback, small_set):
    """One token request per run and registry, not one per image (token service load)."""
    if loopback.token is None:
        pytest.skip("token-server was not built (see the Makefile's tools target)")
    before = loopback.token_server.log.read_text().count('msg="get token complete"')
    harness = _harness(loopback, loopback.token, small_set)
    harness.run()
    assert harness.state["ready"] is True
    after = loopback.token_server.log.read_text().count('msg="get token complete"')
    assert 1 <= after - before <= checker.WORKERS


def test_host_override_keeps_the_registry_name_for_tls(loopback, small_set):
    """With an override the certificate is still checked for registry.test, not for 127.0.0.1."""
    client = checker_http.RegistryClient(
        checker_http.RegistryParams("https", loopback.pki.ca_pem, USERNAME, PASSWORD),
        checker_http.host_overrides(f"other.test=127.0.0.1:{loopback.basic.port}"))
    with pytest.raises(checker_http.CheckError, match="not trusted"):
        client.check(f"other.test/{REPOSITORY}:v1.71.3-small", time.monotonic() + 10)

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
"""The checker's HTTP client against scripted loopback answers: protocol details and error texts.

Real registries (distribution, token server) are exercised in tests/e2e; here each case scripts the
one answer it needs, so corner cases (challenges, odd statuses, stale connections) are reproducible.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lib import checker_http as h

DIGEST = "sha256:" + "c" * 64
SECRET = "S3cret-pass-value"


class Stub:
    """A loopback HTTP/1.1 server answering from a script: (method, path) -> (status, headers, body)."""

    def __init__(self, answer):
        self.requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self):
                stub.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers)})
                status, headers, body = answer(self.command, self.path, self.headers)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_HEAD = do_GET = _serve

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    servers = []

    def make(answer):
        server = Stub(answer)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def _client(port, username="", password="", scheme="http", extra=None):
    overrides = {"registry.test": ("127.0.0.1", port), **(extra or {})}
    return h.RegistryClient(h.RegistryParams(scheme, "", username, password), overrides)


def _check(client, image=f"registry.test/deckhouse/ee@{DIGEST}", budget=10.0):
    client.check(image, time.monotonic() + budget)


# -- parsing -----------------------------------------------------------------------------------

def test_bearer_challenge_with_commas_and_escapes():
    scheme, params = h.parse_challenge(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:a/b:pull,push",error="insufficient_scope", note="say \\"hi\\""')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.example.com/token", "service": "registry.example.com",
                      "scope": "repository:a/b:pull,push", "error": "insufficient_scope", "note": 'say "hi"'}


def test_basic_challenge():
    assert h.parse_challenge('Basic realm="Registry Realm"') == ("basic", {"realm": "Registry Realm"})
    assert h.parse_challenge("basic realm=plain") == ("basic", {"realm": "plain"})


@pytest.mark.parametrize("image, parts", [
    (f"registry.example.com/deckhouse/ee@{DIGEST}", ("registry.example.com", "deckhouse/ee", DIGEST)),
    ("10.128.0.10:5001/system/deckhouse:v1.71.3", ("10.128.0.10:5001", "system/deckhouse", "v1.71.3")),
    ("[::1]:5000/a/b:latest", ("[::1]:5000", "a/b", "latest")),
])
def test_image_references_split(image, parts):
    assert h.split_image(image) == parts


@pytest.mark.parametrize("image", ["registry.example.com/a", "registry.example.com/a@sha256:short",
                                   "registry.example.com@" + DIGEST, "registry.example.com/A/b:tag"])
def test_bad_image_references(image):
    with pytest.raises(ValueError):
        h.split_image(image)


def test_netloc_split():
    assert h.split_netloc("registry.example.com", 443) == ("registry.example.com", 443)
    assert h.split_netloc("registry.example.com:5000", 443) == ("registry.example.com", 5000)
    assert h.split_netloc("[::1]:5000", 443) == ("::1", 5000)


def test_host_overrides():
    assert h.host_overrides("a.test=127.0.0.1:5001, b.test:443=127.0.0.2:8443") == {
        "a.test": ("127.0.0.1", 5001), "b.test:443": ("127.0.0.2", 8443)}
    assert h.host_overrides("") == {}
    with pytest.raises(ValueError, match="REGISTRY_CHECKER_HOST_OVERRIDES"):
        h.host_overrides("just-a-host")


def test_host_overrides_only_from_the_environment_when_set(monkeypatch):
    monkeypatch.delenv(h.OVERRIDES_ENV, raising=False)
    assert h.RegistryClient(h.RegistryParams("https", "", "", "")).overrides == {}
    monkeypatch.setenv(h.OVERRIDES_ENV, "a.test=127.0.0.1:1")
    assert h.RegistryClient(h.RegistryParams("https", "", "", "")).overrides == {"a.test": ("127.0.0.1", 1)}


def test_sanitize_strips_userinfo_queries_and_secrets():
    text = f"GET https://user:{SECRET}@auth.example.com/token?account=u&pw=x failed; password {SECRET}"
    clean = h.sanitize(text, (SECRET,))
    assert SECRET not in clean and "account=" not in clean and "user:" not in clean
    assert "https://auth.example.com/token" in clean


@given(st.text(min_size=6, max_size=40, alphabet=st.characters(min_codepoint=33, max_codepoint=126)))
def test_sanitize_removes_any_secret(secret):
    assert secret not in h.sanitize(f"x {secret} y https://a.b/c?{secret}", (secret,))


# -- TLS context -------------------------------------------------------------------------------

PEM_CA = """-----BEGIN CERTIFICATE-----
MIIBdzCCAR2gAwIBAgIUbHb6l6N+a0oKZ7U+PjQvTjJ0wJ8wCgYIKoZIzj0EAwIw
"""


def test_ssl_context_ignores_certificate_environment(monkeypatch, tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def ca(cn):
        import datetime

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    env_ca, given_ca = ca("from the environment"), ca("from the settings")
    (tmp_path / "env.pem").write_text(env_ca)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "env.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "env.pem"))
    subjects = {dict(x[0] for x in cert["subject"]).get("commonName") for cert in h.ssl_context(given_ca).get_ca_certs()}
    assert "from the settings" in subjects
    assert "from the environment" not in subjects


def test_invalid_ca_is_an_item_error_without_the_ca_text():
    client = h.RegistryClient(h.RegistryParams("https", PEM_CA, "", ""), {})
    with pytest.raises(h.CheckError, match="cannot be loaded") as info:
        _check(client)
    assert "MIIB" not in str(info.value)


# -- transport failures ------------------------------------------------------------------------

def test_connection_refused():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(h.CheckError, match="connection to the registry registry.test refused .*registry.test") as info:
        _check(_client(port))
    assert info.value.registry_wide


def test_dns_failure_names_the_host(monkeypatch):
    def no_dns(*_args, **_kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "create_connection", no_dns)
    client = h.RegistryClient(h.RegistryParams("https", "", "", ""), {})
    with pytest.raises(h.CheckError, match="DNS lookup of nowhere.example.com failed: Name or service not known"):
        _check(client, f"nowhere.example.com/deckhouse/ee@{DIGEST}")


@pytest.fixture
def silent_port():
    """Accepts connections (kernel backlog) and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    yield listener.getsockname()[1]
    listener.close()


def test_request_timeout(monkeypatch, silent_port):
    monkeypatch.setattr(h, "REQUEST_TIMEOUT", 0.3)
    started = time.monotonic()
    with pytest.raises(h.CheckError, match="request to the registry registry.test timed out after 0.3s") as info:
        _check(_client(silent_port))
    assert not info.value.registry_wide, "connected, so another image may still be answered"
    assert time.monotonic() - started < 2


def test_budget_shortens_the_request_and_is_not_an_error(silent_port):
    started = time.monotonic()
    with pytest.raises(h.BudgetExceeded):
        _check(_client(silent_port), budget=0.3)
    assert time.monotonic() - started < 1.5
    with pytest.raises(h.BudgetExceeded):
        _check(_client(silent_port), budget=-1)


def test_tls_to_a_plain_http_server_names_the_scheme(stub):
    server = stub(lambda m, p, hd: (200, {}, b""))
    with pytest.raises(h.CheckError, match="TLS handshake with the registry registry.test failed.*scheme"):
        _check(_client(server.port, scheme="https"))


# -- HTTP protocol -----------------------------------------------------------------------------

def test_head_request_shape(stub):
    server = stub(lambda m, p, hd: (200, {"Docker-Content-Digest": DIGEST}, b""))
    _check(_client(server.port))
    request = server.requests[0]
    assert request["method"] == "HEAD"
    assert request["path"] == f"/v2/deckhouse/ee/manifests/{DIGEST}"
    assert request["headers"]["Host"] == "registry.test", "the override keeps the registry's Host"
    accept = [a.strip() for a in request["headers"]["Accept"].split(",")]
    assert accept == ["application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
                      "application/vnd.docker.distribution.manifest.list.v2+json",
                      "application/vnd.docker.distribution.manifest.v2+json"]
    assert "Authorization" not in request["headers"]


@pytest.mark.parametrize("status, fragment", [
    (404, "404 Not Found: the registry does not have this image"),
    (403, "403 Forbidden"),
    (500, "unexpected registry response 500 Internal Server Error"),
])
def test_status_messages(stub, status, fragment):
    server = stub(lambda m, p, hd: (status, {}, b""))
    with pytest.raises(h.CheckError, match=fragment) as info:
        _check(_client(server.port))
    assert not info.value.registry_wide


def test_basic_challenge_is_answered_with_credentials(stub):
    def answer(method, path, headers):
        if headers.get("Authorization") == h._basic("user", SECRET):
            return 200, {}, b""
        return 401, {"WWW-Authenticate": 'Basic realm="r"'}, b""

    server = stub(answer)
    client = _client(server.port, "user", SECRET)
    _check(client)
    _check(client, "registry.test/deckhouse/ee:v1")
    # the second image goes with the learnt Authorization at once
    assert [r["headers"].get("Authorization") is not None for r in server.requests] == [False, True, True]


def test_basic_challenge_without_credentials(stub):
    server = stub(lambda m, p, hd: (401, {"WWW-Authenticate": 'Basic realm="r"'}, b""))
    with pytest.raises(h.CheckError, match="401 Unauthorized: the registry requires credentials and none"):
        _check(_client(server.port))


def test_wrong_basic_credentials(stub):
    server = stub(lambda m, p, hd: (401, {"WWW-Authenticate": 'Basic realm="r"'}, b""))
    with pytest.raises(h.CheckError, match="rejected the configured username and password") as info:
        _check(_client(server.port, "user", SECRET))
    assert SECRET not in str(info.value)


def test_unsupported_challenge(stub):
    server = stub(lambda m, p, hd: (401, {"WWW-Authenticate": "Negotiate"}, b""))
    with pytest.raises(h.CheckError, match="unsupported authentication challenge 'negotiate'"):
        _check(_client(server.port, "user", SECRET))


def _bearer_registry(stub, token_answer, scope=None):
    tokens = stub(token_answer)

    def registry(method, path, headers):
        if headers.get("Authorization") == "Bearer T0KEN-value":
            return 200, {}, b""
        challenge = 'Bearer realm="http://auth.test:1/token?account=acc",service="registry.test"'
        if scope:
            challenge += f',scope="{scope}"'
        return 401, {"WWW-Authenticate": challenge}, b""

    return stub(registry), tokens


def test_bearer_flow_with_default_scope(stub):
    registry, tokens = _bearer_registry(stub, lambda m, p, hd: (200, {}, json.dumps({"token": "T0KEN-value"}).encode()))
    client = _client(registry.port, "user", SECRET, extra={"auth.test": ("127.0.0.1", tokens.port)})
    _check(client)
    _check(client, "registry.test/deckhouse/ee:v1")
    assert len(tokens.requests) == 1, "the token is reused within the run"
    request = tokens.requests[0]
    assert request["method"] == "GET"
    assert request["path"] == "/token?account=acc&service=registry.test&scope=repository%3Adeckhouse%2Fee%3Apull"
    assert request["headers"]["Authorization"] == h._basic("user", SECRET)
    assert request["headers"]["Host"] == "auth.test:1"


def test_bearer_flow_uses_the_challenge_scope_and_access_token(stub):
    registry, tokens = _bearer_registry(
        stub, lambda m, p, hd: (200, {}, json.dumps({"access_token": "T0KEN-value"}).encode()),
        scope="repository:deckhouse/ee:pull,push")
    client = _client(registry.port, extra={"auth.test": ("127.0.0.1", tokens.port)})
    _check(client)
    assert "scope=repository%3Adeckhouse%2Fee%3Apull%2Cpush" in tokens.requests[0]["path"]
    assert "Authorization" not in tokens.requests[0]["headers"], "anonymous token request without credentials"


@pytest.mark.parametrize("answer, fragment", [
    ((401, {}, b"{}"), "401 Unauthorized from the token service http://auth.test:1/token: the configured"),
    ((500, {}, b""), "token service http://auth.test:1/token answered 500"),
    ((200, {}, b"not json"), "answered without a token"),
    ((200, {}, b'{"token": ""}'), "answered without a token"),
])
def test_token_service_failures(stub, answer, fragment):
    registry, tokens = _bearer_registry(stub, lambda m, p, hd: answer)
    client = _client(registry.port, "user", SECRET, extra={"auth.test": ("127.0.0.1", tokens.port)})
    with pytest.raises(h.CheckError, match=fragment) as info:
        _check(client)
    assert "account=" not in str(info.value) and SECRET not in str(info.value)


def test_token_without_pull_access(stub):
    tokens = stub(lambda m, p, hd: (200, {}, b'{"token": "useless"}'))
    registry = stub(lambda m, p, hd: (401, {"WWW-Authenticate": 'Bearer realm="http://auth.test:1/token"'}, b""))
    client = _client(registry.port, "user", SECRET, extra={"auth.test": ("127.0.0.1", tokens.port)})
    with pytest.raises(h.CheckError, match="gives no pull access to deckhouse/ee"):
        _check(client)


def test_expired_token_is_fetched_again(stub):
    issued = []

    def token(method, path, headers):
        issued.append(1)
        return 200, {}, json.dumps({"token": f"T{len(issued)}"}).encode()

    tokens = stub(token)

    def registry(method, path, headers):
        if headers.get("Authorization") == f"Bearer T{len(issued)}":
            return 200, {}, b""
        return 401, {"WWW-Authenticate": 'Bearer realm="http://auth.test:1/token",service="s"'}, b""

    server = stub(registry)
    client = _client(server.port, extra={"auth.test": ("127.0.0.1", tokens.port)})
    _check(client)
    issued.append(1)  # the registry now wants a newer token
    tokens_before = len(tokens.requests)
    _check(client)
    assert len(tokens.requests) == tokens_before + 1


def test_server_closing_a_kept_connection_is_retried(stub):
    """A keep-alive connection closed by the server between requests is reopened once."""
    server = stub(lambda m, p, hd: (200, {}, b""))
    session = _client(server.port).session()
    try:
        session.check(f"registry.test/deckhouse/ee@{DIGEST}", time.monotonic() + 5)
        connection = next(iter(session._connections.values()))
        connection.sock.shutdown(socket.SHUT_RDWR)  # what an idle-timeout close looks like to us
        session.check(f"registry.test/deckhouse/ee@{DIGEST}", time.monotonic() + 5)
    finally:
        session.close()
    assert len(server.requests) == 2


def test_plain_http_through_the_cluster_proxy(stub, monkeypatch):
    proxy = stub(lambda m, p, hd: (200, {}, b""))
    monkeypatch.setenv("HTTP_PROXY", f"http://puser:{SECRET}@127.0.0.1:{proxy.port}")
    monkeypatch.setenv("http_proxy", f"http://puser:{SECRET}@127.0.0.1:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("no_proxy", "")
    client = h.RegistryClient(h.RegistryParams("http", "", "", ""), {})
    _check(client, f"mirror.example.com:5000/deckhouse/ee@{DIGEST}")
    request = proxy.requests[0]
    assert request["path"] == f"http://mirror.example.com:5000/v2/deckhouse/ee/manifests/{DIGEST}"
    assert request["headers"]["Proxy-Authorization"] == h._basic("puser", SECRET)
    assert request["headers"]["Host"] == "mirror.example.com:5000"


def test_proxy_is_bypassed_for_no_proxy_hosts(stub, monkeypatch):
    direct = stub(lambda m, p, hd: (200, {}, b""))
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # discard port: would fail if used
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    client = h.RegistryClient(h.RegistryParams("http", "", "", ""), {})
    _check(client, f"127.0.0.1:{direct.port}/deckhouse/ee@{DIGEST}")
    assert direct.requests[0]["path"].startswith("/v2/")

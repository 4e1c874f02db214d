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
"""The checker's registry client: one manifest HEAD per image, with Basic and Bearer auth.

Only the standard library is used, with an explicit ssl.SSLContext: environment variables such as
SSL_CERT_FILE or REQUESTS_CA_BUNDLE must not decide which registry the module trusts. Error texts
are written here from the exception type, never copied from URLs or headers, and pass through
sanitize() as a second line of defence, so no credential or query string reaches a message.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass

REQUEST_TIMEOUT = 10.0
OVERRIDES_ENV = "REGISTRY_CHECKER_HOST_OVERRIDES"
EXTRA_CA_ENV = "REGISTRY_CHECKER_EXTRA_CA_FILE"
ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
USER_AGENT = "d8-registry-checker"
_TOKEN_BODY_LIMIT = 1 << 20
# a connection kept alive by the server may be closed under us between two requests
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class CheckError(Exception):
    """The image could not be confirmed; str() is the user-visible, sanitised reason.

    registry_wide marks failures that no other image of the registry would escape either (name
    resolution, refused or timed-out connects, TLS trust): the run stops asking that registry.
    """

    def __init__(self, message: str, registry_wide: bool = False):
        super().__init__(message)
        self.registry_wide = registry_wide


class BudgetExceeded(Exception):
    """The run's time budget ended before the check finished (the registry is not to blame)."""


# -- references --------------------------------------------------------------------------------

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_PATH = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?$")


def split_repository(repository: str) -> tuple[str, str]:
    """'host[:port]/path' -> (netloc, path); ValueError when it is not a usable repository."""
    netloc, _, path = repository.strip().partition("/")
    path = path.rstrip("/")
    if not _HOST.match(netloc) or not path or not _PATH.match(path):
        raise ValueError("registry address must look like host[:port]/path with a lowercase path")
    return netloc, path


def split_image(image: str) -> tuple[str, str, str]:
    """'host/path@sha256:…' or 'host/path:tag' -> (netloc, path, reference)."""
    if "@" in image:
        repository, _, reference = image.partition("@")
        if not _DIGEST.match(reference):
            raise ValueError("invalid digest")
    else:
        slash = image.rfind("/")
        colon = image.rfind(":")
        if colon <= slash:
            raise ValueError("image reference has neither a tag nor a digest")
        repository, reference = image[:colon], image[colon + 1:]
        if not _TAG.match(reference):
            raise ValueError("invalid tag")
    netloc, path = split_repository(repository)
    return netloc, path, reference


def split_netloc(netloc: str, default_port: int) -> tuple[str, int]:
    if netloc.startswith("["):
        host, _, rest = netloc[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = netloc.partition(":")
    return host, int(port) if port else default_port


# -- sanitising --------------------------------------------------------------------------------

_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")
_QUERY = re.compile(r"(https?://[^\s?#\"']*)[?#][^\s\"']*")


def sanitize(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Strip URL credentials and query strings, and blank any known secret value."""
    text = _USERINFO.sub(r"\1", text)
    text = _QUERY.sub(r"\1", text)
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "****")
    return text


def display_url(url: str) -> str:
    """scheme://host/path of a URL, for messages (no userinfo, no query)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


# -- TLS, overrides, proxies -------------------------------------------------------------------

def ssl_context(ca_pem: str | None) -> ssl.SSLContext:
    """System roots (OpenSSL's compiled-in paths, not the env-derived ones) plus the given CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    paths = ssl.get_default_verify_paths()
    cafile = paths.openssl_cafile if paths.openssl_cafile and os.path.isfile(paths.openssl_cafile) else None
    capath = paths.openssl_capath if paths.openssl_capath and os.path.isdir(paths.openssl_capath) else None
    if cafile or capath:
        context.load_verify_locations(cafile=cafile, capath=capath)
    extra = os.environ.get(EXTRA_CA_ENV)
    if extra:
        # tests and the simulator only: trust the CA of their modelled registries
        context.load_verify_locations(cafile=extra)
    if ca_pem and ca_pem.strip():
        try:
            context.load_verify_locations(cadata=ca_pem)
        except (ssl.SSLError, ValueError) as exc:
            raise CheckError("the CA certificate in the registry settings cannot be loaded (not valid PEM)") from exc
    return context


def host_overrides(text: str | None = None) -> dict[str, tuple[str, int]]:
    """REGISTRY_CHECKER_HOST_OVERRIDES: 'host[:port]=ip:port,…' (tests and the simulator only)."""
    raw = os.environ.get(OVERRIDES_ENV, "") if text is None else text
    out: dict[str, tuple[str, int]] = {}
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, target = entry.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{OVERRIDES_ENV}: entry {entry!r} is not host=address:port")
        out[name.strip()] = split_netloc(target.strip(), 0)
    return out


@dataclass(frozen=True)
class _Proxy:
    host: str
    port: int
    authorization: str | None


def _proxy_for(scheme: str, netloc: str) -> _Proxy | None:
    """The cluster proxy from the environment (HTTP_PROXY/HTTPS_PROXY/NO_PROXY), as Deckhouse sets it."""
    proxies = urllib.request.getproxies_environment()
    url = proxies.get(scheme)
    if not url or urllib.request.proxy_bypass_environment(netloc, proxies):
        return None
    if "://" not in url:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        return None
    authorization = None
    if parts.username is not None:
        pair = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode()
    return _Proxy(parts.hostname, parts.port or 80, authorization)


# -- auth challenges ---------------------------------------------------------------------------

_CHALLENGE_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """'Bearer realm="…",service="…",scope="…"' -> ('bearer', {...})."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    position = 0
    while position < len(rest):
        match = _CHALLENGE_PARAM.match(rest, position)
        if not match or match.end() == position:
            break
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
        position = match.end()
    return scheme.lower(), params


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


# -- client ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RegistryParams:
    scheme: str  # 'http' or 'https'
    ca: str
    username: str
    password: str

    @classmethod
    def from_values(cls, params: dict) -> RegistryParams:
        return cls(
            scheme="http" if str(params.get("scheme", "HTTPS")).upper() == "HTTP" else "https",
            ca=params.get("ca") or "",
            username=params.get("username") or "",
            password=params.get("password") or "",
        )


class RegistryClient:
    """Shared by the workers of one registry: TLS context, overrides and the learnt authorization."""

    def __init__(self, params: RegistryParams, overrides: dict[str, tuple[str, int]] | None = None):
        self.params = params
        self.overrides = host_overrides() if overrides is None else overrides
        self._setup_error: CheckError | None = None
        self.context: ssl.SSLContext | None = None
        try:
            self.context = ssl_context(params.ca)
        except CheckError as exc:
            self._setup_error = CheckError(str(exc), registry_wide=True)
        self._lock = threading.Lock()
        # repository path -> Authorization header learnt from a challenge; reused so that a run of
        # hundreds of images asks the token service once, not once per image
        self._auth: dict[str, str] = {}
        self.secrets = tuple(s for s in (params.password, _basic(params.username, params.password)[6:]) if s)

    def cached_auth(self, path: str) -> str | None:
        with self._lock:
            return self._auth.get(path)

    def remember_auth(self, path: str, header: str) -> None:
        with self._lock:
            self._auth[path] = header
            if header.startswith("Bearer "):
                self.secrets = (*self.secrets, header[7:])

    def session(self) -> Session:
        return Session(self)

    def check(self, image: str, deadline: float) -> None:
        """One-off check (tests, CLI); workers keep a Session to reuse connections."""
        session = self.session()
        try:
            session.check(image, deadline)
        finally:
            session.close()


class Session:
    """One worker's connections (keep-alive per scheme+host); not shared between threads."""

    def __init__(self, client: RegistryClient):
        self.client = client
        self._connections: dict[tuple[str, str], http.client.HTTPConnection] = {}
        self._via_proxy: dict[tuple[str, str], tuple[str, str | None]] = {}

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    # -- public ------------------------------------------------------------------------------
    def check(self, image: str, deadline: float) -> None:
        """Return when the manifest exists; raise CheckError (with a reason) or BudgetExceeded."""
        try:
            self._check(image, deadline)
        except CheckError as exc:
            raise CheckError(sanitize(str(exc), self.client.secrets), exc.registry_wide) from None

    def _check(self, image: str, deadline: float) -> None:
        if self.client._setup_error is not None:
            raise self.client._setup_error
        try:
            netloc, path, reference = split_image(image)
        except ValueError as exc:
            raise CheckError(f"invalid image reference: {exc}") from None
        scheme = self.client.params.scheme
        target = f"/v2/{path}/manifests/{reference}"
        authorization = self.client.cached_auth(path)
        status, headers = self._request("HEAD", scheme, netloc, target, authorization, deadline)
        if status == 401:
            challenge = headers.get("WWW-Authenticate", "")
            authorization = self._answer_challenge(challenge, path, deadline)
            status, headers = self._request("HEAD", scheme, netloc, target, authorization, deadline)
            if status == 401:
                if authorization.startswith("Bearer "):
                    raise CheckError("401 Unauthorized: the token from the token service gives no pull access "
                                     f"to {path}")
                raise CheckError(self._rejected_message())
        self._raise_for_status(status)

    # -- auth --------------------------------------------------------------------------------
    def _rejected_message(self) -> str:
        if self.client.params.username:
            return "401 Unauthorized: the registry rejected the configured username and password"
        return "401 Unauthorized: the registry requires credentials and none are configured"

    def _answer_challenge(self, header: str, path: str, deadline: float) -> str:
        scheme, params = parse_challenge(header)
        username, password = self.client.params.username, self.client.params.password
        if scheme == "basic":
            if not username:
                raise CheckError(self._rejected_message())
            authorization = _basic(username, password)
        elif scheme == "bearer":
            authorization = "Bearer " + self._fetch_token(params, path, deadline)
        elif not scheme:
            raise CheckError("401 Unauthorized without an authentication challenge (WWW-Authenticate)")
        else:
            raise CheckError(f"401 Unauthorized with an unsupported authentication challenge {scheme!r}")
        self.client.remember_auth(path, authorization)
        return authorization

    def _fetch_token(self, challenge: dict[str, str], path: str, deadline: float) -> str:
        realm = challenge.get("realm", "")
        parts = urllib.parse.urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise CheckError("401 Unauthorized with a Bearer challenge that has no usable realm URL")
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        if challenge.get("service"):
            query.append(("service", challenge["service"]))
        query.append(("scope", challenge.get("scope") or f"repository:{path}:pull"))
        target = (parts.path or "/") + "?" + urllib.parse.urlencode(query)
        netloc = parts.netloc.rpartition("@")[2]
        username, password = self.client.params.username, self.client.params.password
        authorization = _basic(username, password) if username else None
        where = f"token service {display_url(realm)}"
        status, _headers, body = self._request_body("GET", parts.scheme, netloc, target, authorization, deadline,
                                                    where=where)
        if status == 401:
            if username:
                raise CheckError(f"401 Unauthorized from the {where}: the configured username and password were rejected")
            raise CheckError(f"401 Unauthorized from the {where}: anonymous access is not allowed, credentials are needed")
        if status != 200:
            raise CheckError(f"the {where} answered {status} {http.client.responses.get(status, '')}".rstrip())
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        token = None
        if isinstance(document, dict):
            token = document.get("token") or document.get("access_token")
        if not isinstance(token, str) or not token:
            raise CheckError(f"the {where} answered without a token")
        return token

    # -- transport ---------------------------------------------------------------------------
    def _raise_for_status(self, status: int) -> None:
        if status == 200:
            return
        if status == 404:
            raise CheckError("404 Not Found: the registry does not have this image")
        if status == 403:
            raise CheckError("403 Forbidden: the credentials are not allowed to pull this image")
        raise CheckError(f"unexpected registry response {status} {http.client.responses.get(status, '')}".rstrip())

    def _request(self, method, scheme, netloc, target, authorization, deadline):
        status, headers, _body = self._request_body(method, scheme, netloc, target, authorization, deadline)
        return status, headers

    def _request_body(self, method, scheme, netloc, target, authorization, deadline, where=None):
        where = where or f"registry {netloc}"
        for attempt in (1, 2):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BudgetExceeded()
            timeout = min(REQUEST_TIMEOUT, remaining)
            key = (scheme, netloc)
            reused = key in self._connections
            connecting = True
            try:
                connection = self._connection(scheme, netloc, timeout)
                if connection.sock is None:
                    connection.connect()
                connecting = False
                headers = {"Accept": ACCEPT, "User-Agent": USER_AGENT}
                if authorization:
                    headers["Authorization"] = authorization
                prefix, proxy_authorization = self._via_proxy.get(key, ("", None))
                if proxy_authorization:
                    headers["Proxy-Authorization"] = proxy_authorization
                connection.request(method, prefix + target, headers=headers)
                response = connection.getresponse()
                body = response.read(_TOKEN_BODY_LIMIT) if method == "GET" else response.read()
                if response.will_close or not response.isclosed():  # unread rest: the connection is unusable
                    self._drop(key)
                return response.status, response.headers, body
            except _STALE as exc:
                self._drop(key)
                if reused and attempt == 1:
                    continue
                raise CheckError(f"connection to the {where} was closed unexpectedly ({type(exc).__name__})") from None
            except TimeoutError:
                self._drop(key)
                if timeout < REQUEST_TIMEOUT:
                    raise BudgetExceeded() from None
                phase = "connecting" if connecting else "request"
                raise CheckError(f"{phase} to the {where} timed out after {REQUEST_TIMEOUT:g}s",
                                 registry_wide=connecting) from None
            except socket.gaierror as exc:
                self._drop(key)
                host = split_netloc(netloc, 0)[0]
                raise CheckError(f"DNS lookup of {host} failed: {exc.strerror or exc}", registry_wide=True) from None
            except ssl.SSLCertVerificationError as exc:
                self._drop(key)
                reason = exc.verify_message or exc.reason or "verification failed"
                raise CheckError(f"TLS certificate of the {where} is not trusted: {reason}; "
                                 "check the CA in the registry settings", registry_wide=True) from None
            except ssl.SSLError as exc:
                self._drop(key)
                reason = (exc.reason or type(exc).__name__).replace("_", " ").lower()
                raise CheckError(f"TLS handshake with the {where} failed: {reason} "
                                 "(is the registry scheme right?)", registry_wide=connecting) from None
            except ConnectionRefusedError:
                self._drop(key)
                raise CheckError(f"connection to the {where} refused (nothing listens on {netloc})",
                                 registry_wide=True) from None
            except http.client.HTTPException as exc:
                self._drop(key)
                raise CheckError(f"the {where} sent an invalid HTTP response ({type(exc).__name__})") from None
            except OSError as exc:
                self._drop(key)
                if "Tunnel connection failed" in str(exc):
                    raise CheckError(f"the proxy refused to connect to the {where}", registry_wide=True) from None
                raise CheckError(f"cannot connect to the {where}: {exc.strerror or type(exc).__name__}",
                                 registry_wide=connecting) from None
        raise AssertionError("unreachable")

    def _drop(self, key) -> None:
        connection = self._connections.pop(key, None)
        if connection is not None:
            connection.close()

    def _connection(self, scheme: str, netloc: str, timeout: float) -> http.client.HTTPConnection:
        key = (scheme, netloc)
        connection = self._connections.get(key)
        if connection is not None:
            connection.timeout = timeout
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
            return connection
        host, port = split_netloc(netloc, 443 if scheme == "https" else 80)
        override = self.client.overrides.get(netloc) or self.client.overrides.get(host)
        proxy = None if override else _proxy_for(scheme, netloc)
        if scheme == "https":
            if proxy:
                connection = http.client.HTTPSConnection(proxy.host, proxy.port, timeout=timeout,
                                                         context=self.client.context)
                tunnel_headers = {"Proxy-Authorization": proxy.authorization} if proxy.authorization else None
                connection.set_tunnel(host, port, headers=tunnel_headers)
            else:
                connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=self.client.context)
        elif proxy:
            # plain HTTP through a proxy: absolute-form request target, proxy credentials per request
            connection = http.client.HTTPConnection(proxy.host, proxy.port, timeout=timeout)
            self._via_proxy[key] = (f"http://{netloc}", proxy.authorization)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        if override:
            # dial the override, but keep host/SNI/certificate name of the real registry
            def dial(_address, dial_timeout, source_address=None, _target=override):
                return socket.create_connection(_target, dial_timeout, source_address)

            connection._create_connection = dial
        self._connections[key] = connection
        return connection

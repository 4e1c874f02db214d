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
"""Real registries on loopback for the checker: CNCF distribution v3 (plain HTTP, TLS + htpasswd,
TLS + token auth) and distribution's token server, all serving one storage directory.

Every process is started with Popen on 127.0.0.1, its handle kept, and killed and reaped in the
fixture's teardown. Images are seeded through the plain registry with the distribution HTTP API
(blob uploads + manifest PUT); the authenticated registries see them through the shared storage.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import ipaddress
import json
import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".tools" / "bin"
REPOSITORY = "deckhouse/ee"  # distribution's token server grants '<user>/…' repositories only
USERNAME = "deckhouse"
PASSWORD = "e2e-Pa55-w0rd-9f1c"
REGISTRY_HOST = "registry.test"  # reached through REGISTRY_CHECKER_HOST_OVERRIDES
AUTH_HOST = "auth.test"
TOKEN_SERVICE = "registry.test"
TOKEN_ISSUER = "d8-e2e-issuer"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


# -- processes ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Process:
    name: str
    proc: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def start(name: str, argv: list[str], workdir: Path, port: int, env: dict | None = None) -> Process:
    log = workdir / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=workdir,
                                env={**os.environ, **(env or {})})
    process = Process(name, proc, log)
    for _ in range(200):  # bounded: 20 s
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited {proc.returncode}: {process.tail()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.stop()
    raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port}: {process.tail()}")


# -- PKI ---------------------------------------------------------------------------------------

@dataclass
class Pki:
    ca_pem: str
    cert_file: Path
    key_file: Path
    ca_file: Path
    other_ca_pem: str


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_pki(directory: Path) -> Pki:
    ca_key, ca_cert = _ca("d8 e2e test CA")
    _other_key, other_cert = _ca("d8 e2e unrelated CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    sans = [x509.DNSName(REGISTRY_HOST), x509.DNSName(AUTH_HOST), x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (x509.CertificateBuilder().subject_name(_name(REGISTRY_HOST)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    ca_pem = ca_cert.public_bytes(pem).decode()
    (directory / "ca.crt").write_text(ca_pem)
    (directory / "tls.crt").write_bytes(cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    (directory / "tls.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    return Pki(ca_pem, directory / "tls.crt", directory / "tls.key", directory / "ca.crt",
               other_cert.public_bytes(pem).decode())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(public_key) -> str:
    """The key ID distribution's token server (libtrust) puts into every token's JWK header."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i:i + 4] for i in range(0, len(encoded), 4))


def token_signing_key(directory: Path) -> tuple[Path, Path]:
    """An EC key for the token server and the JWKS distribution v3 verifies its tokens with."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_file = directory / "token-signing.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    numbers = key.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "kid": libtrust_key_id(key.public_key()),
           "x": _b64url(numbers.x.to_bytes(32, "big")), "y": _b64url(numbers.y.to_bytes(32, "big"))}
    jwks_file = directory / "token-jwks.json"
    jwks_file.write_text(json.dumps({"keys": [jwk]}))
    return key_file, jwks_file


# -- registries --------------------------------------------------------------------------------

@dataclass
class Registry:
    name: str
    port: int
    scheme: str  # HTTP / HTTPS
    process: Process

    @property
    def loopback(self) -> str:
        return f"127.0.0.1:{self.port}"


def registry_config(storage: Path, port: int, pki: Pki | None, auth: dict | None) -> str:
    config = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True},
                    "maintenance": {"uploadpurging": {"enabled": False}}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "e2e-http-secret"},
        "health": {"storagedriver": {"enabled": False}},
    }
    if pki:
        config["http"]["tls"] = {"certificate": str(pki.cert_file), "key": str(pki.key_file)}
    if auth:
        config["auth"] = auth
    return json.dumps(config)  # JSON is YAML


@dataclass
class Loopback:
    workdir: Path
    pki: Pki
    plain: Registry
    basic: Registry
    token: Registry | None
    token_server: Process | None
    token_port: int = 0
    processes: list[Process] = field(default_factory=list)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def overrides(self, registry: Registry) -> str:
        """REGISTRY_CHECKER_HOST_OVERRIDES sending registry.test (and auth.test) to loopback ports."""
        entries = [f"{REGISTRY_HOST}={registry.loopback}"]
        if self.token_server is not None:
            entries.append(f"{AUTH_HOST}=127.0.0.1:{self.token_port}")
        return ",".join(entries)


def start_loopback(workdir: Path) -> Loopback:
    """Start the registries (and the token server when it was built); call .stop() when done."""
    registry_bin = TOOLS / "registry"
    if not registry_bin.exists():
        raise FileNotFoundError("distribution is missing: run `make tools` (the README's commands do it)")
    storage = workdir / "storage"
    storage.mkdir()
    pki = make_pki(workdir)
    (workdir / "htpasswd").write_text(f"{USERNAME}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(5)).decode()}\n")
    processes: list[Process] = []

    def serve(name, pki_or_none, auth):
        port = free_port()
        config = workdir / f"{name}.json"
        config.write_text(registry_config(storage, port, pki_or_none, auth))
        process = start(name, [str(registry_bin), "serve", str(config)], workdir, port)
        processes.append(process)
        return Registry(name, port, "HTTPS" if pki_or_none else "HTTP", process)

    try:
        plain = serve("plain", None, None)
        basic = serve("basic", pki, {"htpasswd": {"realm": "d8-e2e", "path": str(workdir / "htpasswd")}})
        token = token_server = None
        token_port = 0
        token_bin = TOOLS / "token-server"
        if token_bin.exists():
            key_file, jwks_file = token_signing_key(workdir)
            token_port = free_port()
            token_server = start("token-server", [
                str(token_bin), "-addr", f"127.0.0.1:{token_port}", "-issuer", TOKEN_ISSUER, "-key", str(key_file),
                "-passwd", str(workdir / "htpasswd"), "-realm", "d8-e2e-token",
                "-tlscert", str(pki.cert_file), "-tlskey", str(pki.key_file)], workdir, token_port)
            processes.append(token_server)
            token = serve("token", pki, {"token": {"realm": f"https://{AUTH_HOST}/token/", "service": TOKEN_SERVICE,
                                                   "issuer": TOKEN_ISSUER, "jwks": str(jwks_file)}})
    except BaseException:
        for process in reversed(processes):
            process.stop()
        raise
    return Loopback(workdir, pki, plain, basic, token, token_server, token_port, processes)


@pytest.fixture(scope="session")
def loopback(tmp_path_factory):
    try:
        registries = start_loopback(tmp_path_factory.mktemp("registries"))
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    try:
        yield registries
    finally:
        registries.stop()


# -- seeding -----------------------------------------------------------------------------------

class Pusher:
    """Pushes OCI images through the distribution API of the plain registry."""

    def __init__(self, registry: Registry, repository: str = REPOSITORY):
        self.registry = registry
        self.repository = repository
        self._local = threading.local()
        self._base: tuple[str, int] | None = None

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection("127.0.0.1", self.registry.port, timeout=30)
        return conn

    def _call(self, method: str, target: str, body: bytes = b"", headers: dict | None = None):
        conn = self._conn()
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response, data

    def blob(self, data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        response, _ = self._call("POST", f"/v2/{self.repository}/blobs/uploads/")
        assert response.status == 202, response.status
        location = response.headers["Location"]
        target = location.split(str(self.registry.port), 1)[-1] if location.startswith("http") else location
        separator = "&" if "?" in target else "?"
        response, body = self._call("PUT", f"{target}{separator}digest={digest}", data,
                                    {"Content-Type": "application/octet-stream"})
        assert response.status == 201, (response.status, body[:200])
        return {"digest": digest, "size": len(data)}

    def base(self) -> tuple[dict, dict]:
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        return self.blob(config), self.blob(b"d8 e2e layer\n")

    def manifest(self, name: str, tag: str | None = None) -> str:
        """Push one distinct image (distinct by an annotation) and return its digest."""
        config, layer = self._base_cached()
        body = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}],
            "annotations": {"io.deckhouse.e2e/name": name},
        }, sort_keys=True).encode()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        response, data = self._call("PUT", f"/v2/{self.repository}/manifests/{tag or digest}", body,
                                    {"Content-Type": OCI_MANIFEST})
        assert response.status == 201, (response.status, data[:300])
        return digest

    def _base_cached(self):
        if self._base is None:
            self._base = self.base()
        return self._base

    def delete(self, digest: str) -> None:
        response, _ = self._call("DELETE", f"/v2/{self.repository}/manifests/{digest}")
        assert response.status == 202, response.status

    def many(self, names: list[str], threads: int = 4) -> dict[str, str]:
        """Push many images in parallel; name -> digest."""
        self._base_cached()
        out: dict[str, str] = {}
        lock = threading.Lock()
        chunks = [names[i::threads] for i in range(threads)]

        def push(chunk):
            for name in chunk:
                digest = self.manifest(name)
                with lock:
                    out[name] = digest

        workers = [threading.Thread(target=push, args=(chunk,)) for chunk in chunks]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(300)
        return out


@dataclass
class ImageSet:
    """Globals and the deckhouse Deployment describing images that exist in the registry."""

    global_values: dict
    deployment: dict
    digests: dict[str, str]  # label -> digest


def make_image_set(pusher: Pusher, modules: dict[str, list[str]], prefix: str = "") -> ImageSet:
    digests: dict[str, dict[str, str]] = {}
    labels: dict[str, str] = {}
    names = [f"{prefix}{module}/{image}" for module, images in modules.items() for image in images]
    pushed = pusher.many(names)
    for module, images in modules.items():
        camel = module.split("-")[0] + "".join(p.capitalize() for p in module.split("-")[1:])
        digests[camel] = {image: pushed[f"{prefix}{module}/{image}"] for image in images}
    for name, digest in pushed.items():
        labels[name] = digest
    init_digest = pusher.manifest(f"{prefix}deckhouse-init")
    rbac_digest = pusher.manifest(f"{prefix}kube-rbac-proxy")
    tag = "v1.71.3" + (f"-{prefix.strip('-')}" if prefix else "")
    pusher.manifest(f"{prefix}deckhouse-controller", tag=tag)
    upstream = "registry.deckhouse.ru/deckhouse/ee"
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "deckhouse", "namespace": "d8-system", "generation": 1},
        "spec": {"template": {"spec": {
            "initContainers": [{"name": "init-downloaded-modules", "image": f"{upstream}@{init_digest}"}],
            "containers": [{"name": "deckhouse", "image": f"{upstream}:{tag}"},
                           {"name": "kube-rbac-proxy", "image": f"{upstream}@{rbac_digest}"}],
        }}},
    }
    global_values = {"enabledModules": sorted(modules), "modulesImages": {"digests": digests}}
    return ImageSet(global_values, deployment, labels)


@pytest.fixture(scope="session")
def pusher(loopback) -> Pusher:
    return Pusher(loopback.plain)


@pytest.fixture(scope="session")
def small_set(pusher) -> ImageSet:
    return make_image_set(pusher, {
        "deckhouse": ["webhookHandler"],
        "registry": ["registryNginx", "registryDistribution"],
        "cert-manager": ["certManagerController", "certManagerWebhook"],
        "cni-cilium": ["cilium", "operator"],
    }, prefix="small-")


@pytest.fixture(scope="session")
def big_set(pusher) -> ImageSet:
    """A bounded synthetic set of 2000 module images (+3 Deckhouse images)."""
    return make_image_set(pusher, {f"module-{m}": [f"image{i}" for i in range(200)] for m in range(10)},
                          prefix="big-")


# -- in-test TCP helpers (loopback only, bounded) ----------------------------------------------

class TcpRelay:
    """Loopback TCP relay to a registry: adds `delay` before every client->server chunk (a slow
    registry), or, with connect=True, acts as an HTTP CONNECT proxy and records the targets."""

    def __init__(self, upstream: tuple[str, int], delay: float = 0.0, connect: bool = False):
        self.upstream = upstream
        self.delay = delay
        self.connect = connect
        self.tunnels: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            if self.connect:
                request = b""
                while b"\r\n\r\n" not in request and len(request) < 65536:
                    chunk = client.recv(4096)
                    if not chunk:
                        client.close()
                        return
                    request += chunk
                self.tunnels.append(request.split(b" ", 2)[1].decode())
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            server = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()
            return
        self._sockets += [client, server]
        threading.Thread(target=self._pump, args=(server, client, 0.0), daemon=True).start()
        self._pump(client, server, self.delay)

    def _pump(self, source: socket.socket, sink: socket.socket, delay: float) -> None:
        try:
            while not self._stop.is_set():
                data = source.recv(65536)
                if not data:
                    break
                if delay:
                    time.sleep(delay)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for sock in self._sockets:
            sock.close()
        self._thread.join(5)


# -- running the checker hook ------------------------------------------------------------------

class CheckerHarness:
    """The checker_loop hook through the addon-operator harness, with values carried across runs
    and the fake clock advanced 30 s per run (the hook's schedule)."""

    START = datetime.datetime(2026, 11, 27, 10, 0, 0, tzinfo=datetime.UTC)

    def __init__(self, global_values: dict, objects: list[dict], params: dict | None = None,
                 env: dict | None = None, in_process: bool = True):
        from d8registry.operator import bindings
        from d8registry.operator.module import ModuleHarness

        self._bindings = bindings
        self.harness = ModuleHarness(REPO, objects, global_values, in_process=in_process, env=dict(env or {}))
        self.hook = self.harness.hook("checker_loop")
        self.config = self.harness.config(self.hook)
        self.now = self.START
        checker = self.harness.module_values["internal"]["checker"]
        checker["initialized"] = True
        if params is not None:
            self.set_params(params)

    def set_params(self, params: dict) -> None:
        self.harness.module_values["internal"]["checker"]["params"] = params

    def contexts(self) -> list[dict]:
        return [self._bindings.schedule_context(self.config, "checker", self.harness.objects)]

    def run(self, advance: int = 30):
        self.harness.env["REGISTRY_FAKE_NOW"] = self.now.strftime("%Y-%m-%dT%H:%M:%SZ")
        self.now += datetime.timedelta(seconds=advance)
        return self.harness.run(self.hook, self.contexts())

    def pending_patch(self) -> list[dict]:
        return self.harness.execute(self.hook, self.contexts()).values_patch

    @property
    def state(self) -> dict:
        return self.harness.module_values["internal"]["checker"]["state"]


def metric(result, name: str, labels: dict | None = None):
    for record in result.metrics:
        if record.get("name") == name and (labels is None or record.get("labels") == labels):
            return record["value"]
    raise KeyError(name)

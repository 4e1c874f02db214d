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
"""The registry data plane on loopback, from the module's own renderers (SPEC 11.5, 12.1).

Used by the e2e tests (tests/e2e/dataplane), bench/dataplane_pull.py and `d8registry up`. Everything runs from
unmodified binaries: CNCF distribution v3 (upstream and the replicas' caches), nginx built by `make tools`
with the registry image's configure flags (the fronts and the node LB), containerd 1.6 (pulling through the
rendered hosts dir) and crictl (the CRI client). Configs come from hooks/lib with a loopback topology:
masters on 127.0.0.11-13, each binding its internal listeners on its own address; the LB on
127.0.0.1:<free port>.

Every process is started with Popen in its own process group, tracked by name, stopped with
SIGTERM then SIGKILL of that group, and reaped; waits are bounded. Only loopback addresses are
ever bound or dialled.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "hooks") not in sys.path:
    sys.path.insert(0, str(REPO / "hooks"))

from lib import dataplane, front, lb, node_config, pki, settings, stages, users  # noqa: E402

TOOLS = REPO / ".tools" / "bin"
MASTER_IPS = ("127.0.0.11", "127.0.0.12", "127.0.0.13")
UPSTREAM_PATH = "deckhouse/ee"
UPSTREAM_USER = "deckhouse"  # distribution's token server grants only `<user>/...` repositories
UPSTREAM_PASSWORD = "Upstream-e2e-Pa55"
FIXED_HOST = node_config.FIXED_DIR  # registry.d8-system.svc:5001
IMAGE_REPO = "system/deckhouse"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
# Non-root like the production pods, whenever the tests may switch users.
RUN_AS = 64535 if os.geteuid() == 0 else None
CLUSTER_DOMAIN = "cluster.local"
ENVIRONMENT = settings.Environment(cluster_configuration_present=True, default_cri="Containerd", cluster_type="Static")
# Secret key -> directory under the master's config root (SPEC 6.6).
FILE_DIRS = {"ca.crt": "pki", "front.crt": "pki", "front.key": "pki", "upstream-ca.crt": "pki",
             "nginx.conf": "front", "htpasswd": "front", "config.yaml": "distribution", "regsync.yaml": "sync"}
# A proxy from the machine must never see loopback test traffic.
NO_PROXY_ENV = {"HTTP_PROXY": "", "HTTPS_PROXY": "", "http_proxy": "", "https_proxy": "", "NO_PROXY": "*",
                "no_proxy": "*"}


class Unavailable(Exception):
    """A binary or capability the data plane needs is missing on this machine."""


# Only ever from `make tools`: nginx is built there with images/registry-nginx/configure-flags, while Debian's
# nginx carries modules (fastcgi, gzip, ...) the image leaves out and would accept configs the image refuses.
TOOLS_ONLY = ("nginx",)


def binary(name: str) -> str:
    tool = TOOLS / name
    if tool.exists():
        return str(tool)
    if name in TOOLS_ONLY:
        raise Unavailable(f"{name} built with the registry image's configure flags is missing: run `make tools`")
    found = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if not found:
        raise Unavailable(f"{name} is missing: run `make deps` (Makefile tools/debs)")
    return found


# -- processes ---------------------------------------------------------------------------------

def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        # as nginx binds: connections of an earlier run lingering in TIME_WAIT do not block it
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_listening(host: str, port: int, proc: subprocess.Popen | None, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {host}:{port}")
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {host}:{port} within {timeout:.0f}s")


@dataclass
class Processes:
    """Named child processes; each in its own process group, so stopping one takes its workers too."""

    workdir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def log(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def start(self, name: str, argv: list[str], *, env: dict | None = None, user: int | None = None,
              listen: tuple[str, int] | None = None, timeout: float = 20.0) -> subprocess.Popen:
        if name in self.procs and self.procs[name].poll() is None:
            raise RuntimeError(f"{name} is already running")
        log = self.log(name)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            if user is not None:
                # nginx reopens /dev/stdout by path, which checks the log file's owner
                os.chown(log, user, user)
            kwargs = {"user": user, "group": user, "extra_groups": []} if user is not None else {}
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=self.workdir, env={**os.environ, **NO_PROXY_ENV, **(env or {})},
                                    start_new_session=True, **kwargs)
        self.procs[name] = proc
        if listen is not None:
            try:
                wait_listening(*listen, proc, timeout, name)
            except RuntimeError as exc:
                self.stop(name)
                raise RuntimeError(f"{exc}\n--- {name} log ---\n{self.tail(name)}") from None
        return proc

    def running(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def stop(self, name: str, timeout: float = 10.0) -> None:
        proc = self.procs.get(name)
        if proc is None:
            return
        if proc.poll() is None:
            # SIGTERM first: an nginx master stops its workers on it, a SIGKILLed one would orphan them
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this process leads: leftovers of it only
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait(timeout)

    def stop_all(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop(name)

    def tail(self, name: str, size: int = 4000) -> str:
        path = self.log(name)
        return path.read_text(errors="replace")[-size:] if path.exists() else ""


# -- TLS material for the upstream (the module CA comes from hooks/lib/pki) ----------------------

def now() -> datetime:
    return datetime.now(UTC)


def tls_pair(directory: Path, name: str, ca: pki.KeyPair, dns: list[str], ips: list[str]) -> tuple[Path, Path]:
    leaf, _ = pki.ensure_leaf(ca, None, dns, ips, now())
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    cert.write_text(leaf.cert)
    key.write_text(leaf.key)
    return cert, key


def chown_tree(path: Path) -> None:
    if RUN_AS is None:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, RUN_AS, RUN_AS)
        for entry in dirs + files:
            os.chown(os.path.join(root, entry), RUN_AS, RUN_AS)


def htpasswd_line(user: str, password: str) -> str:
    return f"{user}:{users.hash_password(password)}\n"


# -- the upstream registry -------------------------------------------------------------------

@dataclass
class Upstream:
    port: int
    ca_pem: str
    auth: str                      # basic | token | none
    log: Path
    username: str = UPSTREAM_USER
    password: str = UPSTREAM_PASSWORD
    scheme: str = "HTTPS"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def requests(self, method: str | None = None, kind: str | None = None) -> list[str]:
        """Access-log request lines for the upstream repository (kind: blobs | manifests)."""
        lines = []
        for line in self.log.read_text(errors="replace").splitlines():
            match = re.search(r'"([A-Z]+) (/v2/[^ ]*) HTTP/[0-9.]+" (\d+)', line)
            if not match or not match.group(2).startswith(f"/v2/{UPSTREAM_PATH}/"):
                continue
            if method and match.group(1) != method:
                continue
            if kind and f"/{kind}/" not in match.group(2):
                continue
            lines.append(f"{match.group(1)} {match.group(2)} {match.group(3)}")
        return lines

    def settings(self, mode: str) -> dict:
        """The `registry` section of ModuleConfig deckhouse that points at this upstream."""
        section: dict = {"imagesRepo": f"{self.host}/{UPSTREAM_PATH}", "scheme": self.scheme}
        if self.scheme == "HTTPS":
            section["ca"] = self.ca_pem
        if self.auth != "none":
            section.update(username=self.username, password=self.password)
        return {"mode": mode, mode.lower(): section}


def _registry_config(storage: Path, port: int, tls: tuple[Path, Path] | None, auth: dict | None,
                     access_log: bool) -> str:
    config: dict = {
        "version": 0.1,
        "log": {"level": "warn", "formatter": "text", "accesslog": {"disabled": not access_log}},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True},
                    "maintenance": {"uploadpurging": {"enabled": False}}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "upstream-e2e-secret"},
        "health": {"storagedriver": {"enabled": False}},
    }
    if tls:
        config["http"]["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
    if auth:
        config["auth"] = auth
    return json.dumps(config)  # JSON is YAML


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token_keys(directory: Path) -> tuple[Path, Path]:
    """Signing key of distribution's token server and the JWKS distribution v3 checks tokens with.

    The token server puts libtrust's key ID (base32 of a truncated SPKI hash in groups of four)
    into every token header; the JWKS entry must carry the same ID.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    key_file = directory / "token-signing.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(spki).digest()[:30]).decode().rstrip("=")
    kid = ":".join(encoded[i:i + 4] for i in range(0, len(encoded), 4))
    numbers = key.public_key().public_numbers()
    jwks = directory / "token-jwks.json"
    jwks.write_text(json.dumps({"keys": [{"kty": "EC", "crv": "P-256", "kid": kid,
                                          "x": _b64url(numbers.x.to_bytes(32, "big")),
                                          "y": _b64url(numbers.y.to_bytes(32, "big"))}]}))
    return key_file, jwks


_GATEWAY_CONF = """\
daemon off;
worker_processes 1;
pid {dir}/gateway.pid;
error_log stderr warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/client_body;
    proxy_temp_path {dir}/tmp/proxy;
    client_max_body_size 0;
    proxy_buffering off;
    proxy_request_buffering off;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location /token/ {{ proxy_pass http://127.0.0.1:{token_port}; }}
        location / {{
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto https;
            proxy_pass http://127.0.0.1:{registry_port};
        }}
    }}
}}
"""


def start_upstream(procs: Processes, workdir: Path, auth: str = "basic", names: tuple[str, ...] = ()) -> Upstream:
    """distribution v3 serving `deckhouse/ee`: TLS + Basic, TLS + token, or plain HTTP without auth.

    Token: distribution's token server. distribution's pull-through client only sends credentials
    to a realm on the registry's own host:port when the host is an IP literal (v3.1), so a small
    nginx gateway serves both on one TLS origin, as public registries do. The registry's access
    log is on, to count what the caches ask for.
    """
    registry = binary("registry")
    directory = workdir / f"upstream-{auth}"
    storage = directory / "storage"
    storage.mkdir(parents=True)
    ca, _ = pki.ensure_ca(None, now())
    (directory / "ca.crt").write_text(ca.cert)
    tls = tls_pair(directory, "tls", ca, ["localhost", *names], ["127.0.0.1"])  # names: extra DNS names
    (directory / "htpasswd").write_text(htpasswd_line(UPSTREAM_USER, UPSTREAM_PASSWORD))
    port = free_port()
    registry_port, served_tls, config = port, tls, None
    if auth == "basic":
        config = {"htpasswd": {"realm": "upstream-e2e", "path": str(directory / "htpasswd")}}
    elif auth == "token":
        token_bin = TOOLS / "token-server"
        if not token_bin.exists():
            raise Unavailable("distribution's token server is missing: run `make tools`")
        key_file, jwks = _token_keys(directory)
        token_port, registry_port, served_tls = free_port(), free_port(), None
        procs.start(f"token-server-{port}", [
            str(token_bin), "-addr", f"127.0.0.1:{token_port}", "-issuer", "upstream-e2e-issuer",
            "-key", str(key_file), "-passwd", str(directory / "htpasswd"), "-realm", "upstream-e2e"],
            listen=("127.0.0.1", token_port))
        config = {"token": {"realm": f"https://127.0.0.1:{port}/token/", "service": "upstream-e2e",
                            "issuer": "upstream-e2e-issuer", "jwks": str(jwks)}}
        (directory / "tmp").mkdir()
        (directory / "gateway.conf").write_text(_GATEWAY_CONF.format(
            dir=directory, port=port, cert=tls[0], key=tls[1], token_port=token_port, registry_port=registry_port))
    elif auth == "none":
        served_tls = None
    else:
        raise ValueError(f"unknown upstream auth {auth}")
    # Seeding goes through a plain sibling on the same storage, so the counted log holds pulls only.
    seed_port = free_port()
    (directory / "seed.yaml").write_text(_registry_config(storage, seed_port, None, None, False))
    procs.start(f"upstream-seed-{port}", [registry, "serve", str(directory / "seed.yaml")],
                listen=("127.0.0.1", seed_port))
    (directory / "config.yaml").write_text(_registry_config(storage, registry_port, served_tls, config, True))
    name = f"upstream-{auth}-{port}"
    procs.start(name, [registry, "serve", str(directory / "config.yaml")], listen=("127.0.0.1", registry_port))
    if auth == "token":
        procs.start(f"upstream-gateway-{port}", [binary("nginx"), "-e", "stderr", "-p", str(directory),
                                                 "-c", str(directory / "gateway.conf")], listen=("127.0.0.1", port))
    upstream = Upstream(port, ca.cert, auth, procs.log(name), scheme="HTTP" if auth == "none" else "HTTPS")
    upstream.seed_port = seed_port  # type: ignore[attr-defined]
    return upstream


@dataclass
class Image:
    digest: str
    manifest: bytes
    blobs: dict[str, bytes]


def payload_tar(payload: bytes) -> bytes:
    """A reproducible tar with one file, d8-e2e/payload.bin, holding `payload`: the test images' layer."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("d8-e2e/payload.bin")
        info.size, info.mtime, info.mode = len(payload), 0, 0o644
        tar.addfile(info, io.BytesIO(payload))
    return raw.getvalue()


def make_image(label: str, layer_bytes: int = 256 * 1024) -> Image:
    """A small runnable-shaped OCI image: one gzip layer with a file of pseudo-random bytes."""
    tar_bytes = payload_tar(hashlib.shake_256(label.encode()).digest(layer_bytes))
    layer = gzip.compress(tar_bytes, mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/true"]},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar_bytes).hexdigest()]}},
                        sort_keys=True).encode()

    def desc(media_type: str, data: bytes) -> dict:
        return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}

    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": desc("application/vnd.oci.image.config.v1+json", config),
                           "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", layer)],
                           "annotations": {"io.deckhouse.e2e/label": label}}, sort_keys=True).encode()
    blobs = {"sha256:" + hashlib.sha256(b).hexdigest(): b for b in (config, layer)}
    return Image("sha256:" + hashlib.sha256(manifest).hexdigest(), manifest, blobs)


def seed(upstream: Upstream, image: Image, tag: str | None = None, path: str = UPSTREAM_PATH) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", upstream.seed_port, timeout=30)  # type: ignore[attr-defined]
    try:
        for digest, data in image.blobs.items():
            conn.request("POST", f"/v2/{path}/blobs/uploads/")
            response = conn.getresponse()
            response.read()
            assert response.status == 202, response.status
            location = response.headers["Location"]
            target = location.split(f":{upstream.seed_port}", 1)[-1]
            conn.request("PUT", f"{target}{'&' if '?' in target else '?'}digest={digest}", body=data,
                         headers={"Content-Type": "application/octet-stream"})
            response = conn.getresponse()
            response.read()
            assert response.status == 201, response.status
        conn.request("PUT", f"/v2/{path}/manifests/{tag or image.digest}", body=image.manifest,
                     headers={"Content-Type": OCI_MANIFEST})
        response = conn.getresponse()
        response.read()
        assert response.status == 201, response.status
    finally:
        conn.close()


# -- HTTP client for fronts --------------------------------------------------------------------

@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class _NamedTLS(http.client.HTTPSConnection):
    """TLS to an address, verified against a DNS name the certificate carries (as containerd does
    for the fixed name behind a mirror IP)."""

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext, server_name: str):
        super().__init__(address[0], address[1], timeout=30, context=context)
        self._name = server_name

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._name)


def https(address: tuple[str, int], method: str, target: str, ca_pem: str, *, user: str | None = None,
          password: str | None = None, body: bytes = b"", headers: dict | None = None,
          server_name: str = "registry.d8-system.svc", client_cert: tuple[Path, Path] | None = None) -> Answer:
    """One request over TLS verified with `ca_pem`; no environment proxy or CA is consulted.
    `client_cert` (certificate file, key file) is presented when the server asks for one."""
    context = ssl.create_default_context(cadata=ca_pem)
    if client_cert is not None:
        context.load_cert_chain(*client_cert)
    conn = _NamedTLS(address, context, server_name)
    sent = dict(headers or {})
    if user is not None:
        sent["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    try:
        conn.request(method, target, body=body or None, headers=sent)
        response = conn.getresponse()
        data = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        conn.close()


# -- masters (Proxy) and the in-cluster proxy (Direct) ----------------------------------------

@dataclass
class Replica:
    name: str
    ip: str
    root: Path
    layout: front.Layout
    files: dict[str, str]

    @property
    def front_address(self) -> tuple[str, int]:
        return (self.ip, self.layout.port)


def _free_on(ip: str, avoid: set[int]) -> int:
    for _ in range(100):
        port = free_port(ip)
        if port not in avoid:
            avoid.add(port)
            return port
    raise RuntimeError("no free port")


def replica_layout(ip: str, root: Path, port: int = 5001) -> front.Layout:
    """Production ports for the front (the LB and hosts.toml expect 5001 on each master address),
    free ports for the internal listeners, every path inside the replica's own directory."""
    taken: set[int] = {port}
    return front.Layout(listen=ip, port=port, metrics_port=_free_on(ip, taken),
                        distribution=f"{ip}:{_free_on(ip, taken)}", debug=f"{ip}:{_free_on(ip, taken)}",
                        pki_dir=str(root / "pki"), front_dir=str(root / "front"), temp_dir=str(root / "tmp"))


def write_replica(replica: Replica) -> None:
    for name, content in replica.files.items():
        sub = FILE_DIRS.get(name)
        if sub is None:
            continue  # instructions for the node step (version, images, ...), never written
        target = replica.root / sub / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        target.chmod(0o600 if name in ("front.key", "htpasswd", "config.yaml") else 0o640)
    for sub in ("tmp", "data"):
        (replica.root / sub).mkdir(parents=True, exist_ok=True)
    chown_tree(replica.root)


def unprivileged_binary(workdir: Path, name: str) -> str:
    """The tool as the replicas' user can run it: the build cache lives under root's home."""
    source = binary(name)
    if RUN_AS is None:
        return source
    target = workdir / "bin" / name
    if not target.exists():
        target.parent.mkdir(exist_ok=True)
        shutil.copy2(source, target)
        target.chmod(0o755)
    return str(target)


def start_replica(procs: Processes, replica: Replica) -> None:
    env = {"SSL_CERT_DIR": "/etc/ssl/certs"}
    if (replica.root / "pki" / "upstream-ca.crt").exists():
        env["SSL_CERT_FILE"] = str(replica.root / "pki" / "upstream-ca.crt")
    dist_host, dist_port = replica.layout.distribution.rsplit(":", 1)
    procs.start(f"{replica.name}-distribution",
                [unprivileged_binary(procs.workdir, "registry"), "serve",
                 str(replica.root / "distribution" / "config.yaml")],
                env=env, user=RUN_AS, listen=(dist_host, int(dist_port)))
    procs.start(f"{replica.name}-front",
                [unprivileged_binary(procs.workdir, "nginx"), "-e", "stderr", "-p", str(replica.root),
                 "-c", str(replica.root / "front" / "nginx.conf")],
                user=RUN_AS, listen=replica.front_address)


def stop_replica(procs: Processes, replica: Replica) -> None:
    procs.stop(f"{replica.name}-front")
    procs.stop(f"{replica.name}-distribution")


@dataclass
class ProxyCluster:
    """Three Proxy-mode masters, the node LB and the rendered containerd hosts dir."""

    workdir: Path
    procs: Processes
    upstream: Upstream
    params: dict
    state: dict
    replicas: list[Replica]
    lb_port: int
    hosts_dir: Path

    @property
    def ca_pem(self) -> str:
        return self.state["pki"]["ca"]["cert"]

    @property
    def ro(self) -> dict:
        return self.state["users"]["ro"]

    def start_lb(self) -> None:
        endpoints = [f"{r.ip}:{r.layout.port}" for r in self.replicas]
        # the stream module is built in, as in the image: the config is lb.py's own
        conf = lb.lb_nginx_conf(endpoints, listen=f"127.0.0.1:{self.lb_port}")
        lb_dir = self.workdir / "lb"
        lb_dir.mkdir(exist_ok=True)
        (lb_dir / "nginx.conf").write_text(conf)
        # root: lb.py pins its pid file to /tmp, which only root may take over from an earlier run
        self.procs.start("lb", [binary("nginx"), "-e", "stderr", "-g", "daemon off;", "-p", str(lb_dir),
                                "-c", str(lb_dir / "nginx.conf")], listen=("127.0.0.1", self.lb_port))

    def stop_lb(self) -> None:
        self.procs.stop("lb")


def module_state(mode: str, upstream: Upstream | None, users_wanted: tuple[str, ...]) -> tuple[dict, dict]:
    """Params (through the real settings validation) and the secret part of the module state."""
    raw = upstream.settings(mode) if upstream is not None else {"mode": mode}
    verdict = settings.evaluate(raw, ENVIRONMENT)
    if not verdict.valid:
        raise AssertionError(f"settings rejected: {verdict.errors}")
    ca, _ = pki.ensure_ca(None, now())
    state = {"pki": {"ca": {"cert": ca.cert, "key": ca.key}}, "http_secret": users.ensure_http_secret(None),
             "users": users.ensure_users(users_wanted, None)}
    return verdict.params, state


def build_proxy_cluster(procs: Processes, workdir: Path, upstream: Upstream) -> ProxyCluster:
    for ip in MASTER_IPS:
        if not port_is_free(ip, 5001):
            raise Unavailable(f"{ip}:5001 is taken (another loopback data plane running?)")
    params, state = module_state("Proxy", upstream, ("ro",))
    ca = pki.KeyPair(state["pki"]["ca"]["cert"], state["pki"]["ca"]["key"])
    masters = [dataplane.Master(f"master-{i}", ip) for i, ip in enumerate(MASTER_IPS)]
    replicas = []
    for master in masters:
        root = workdir / master.name
        layout = replica_layout(master.ip, root)
        entry, _ = dataplane.node_services_files(
            master, masters, "Proxy", stages.upstream_of(params), ca, state["users"], state["http_secret"],
            CLUSTER_DOMAIN, None, None, now(), layout=layout, data_dir=str(root / "data"))
        replicas.append(Replica(master.name, master.ip, root, layout, entry["files"]))
    lb_port = free_port()
    hosts_dir = workdir / "containerd" / "hosts"
    node_params = node_config.node_params(params, state["users"]["ro"], ca.cert)
    mirror_map = node_config.mirrors(node_params, [m.ip for m in masters], lb_endpoint=f"127.0.0.1:{lb_port}")
    for directory, files in node_config.render_hosts(mirror_map, hosts_root=str(hosts_dir)).items():
        (hosts_dir / directory).mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (hosts_dir / directory / name).write_text(content)
    for replica in replicas:
        write_replica(replica)
    return ProxyCluster(workdir, procs, upstream, params, state, replicas, lb_port, hosts_dir)


def build_incluster_proxy(procs: Processes, workdir: Path, upstream: Upstream, ip: str = "127.0.0.21") -> tuple[Replica, dict]:
    """The Direct placement's pod composition on one loopback address; returns it and the params."""
    params, state = module_state("Direct", upstream, ())
    ca = pki.KeyPair(state["pki"]["ca"]["cert"], state["pki"]["ca"]["key"])
    root = workdir / f"incluster-{upstream.auth}"
    port = free_port(ip)
    layout = replica_layout(ip, root, port=port)
    files, _ = dataplane.incluster_proxy_files(stages.upstream_of(params), ca, state["http_secret"], CLUSTER_DOMAIN,
                                               None, None, now(), layout=layout, data_dir=str(root / "data"))
    replica = Replica(f"incluster-{upstream.auth}", ip, root, layout, files)
    write_replica(replica)
    return replica, state


def build_local_replica(procs: Processes, workdir: Path, ip: str = "127.0.0.31") -> tuple[Replica, dict]:
    """One Local-mode master (no peers, so no sync): the store and the per-user ACL of the front."""
    _params, state = module_state("Local", None, ("ro", "rw", "mirror_puller", "mirror_pusher"))
    ca = pki.KeyPair(state["pki"]["ca"]["cert"], state["pki"]["ca"]["key"])
    master = dataplane.Master("local-0", ip)
    root = workdir / master.name
    layout = replica_layout(ip, root, port=free_port(ip))
    entry, _ = dataplane.node_services_files(master, [master], "Local", None, ca, state["users"], state["http_secret"],
                                             CLUSTER_DOMAIN, None, None, now(), layout=layout,
                                             data_dir=str(root / "data"))
    replica = Replica(master.name, ip, root, layout, entry["files"])
    write_replica(replica)
    return replica, state


# -- containerd and crictl ---------------------------------------------------------------------

CONTAINERD_CONFIG = """\
version = 2
root = "{root}/root"
state = "{root}/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{root}/c.sock"

[ttrpc]
  address = "{root}/c.sock.ttrpc"

[debug]
  level = "debug"

[plugins."io.containerd.grpc.v1.cri"]
  disable_cgroup = true
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{root}/cni"
    conf_dir = "{root}/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{hosts}"
"""


@dataclass
class Containerd:
    procs: Processes
    root: Path

    @property
    def socket(self) -> str:
        return f"unix://{self.root}/c.sock"

    def crictl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([binary("crictl"), "--timeout", f"{int(timeout)}s", "--image-endpoint", self.socket,
                               "--runtime-endpoint", self.socket, *args], capture_output=True, text=True,
                              timeout=timeout + 15, env={**os.environ, **NO_PROXY_ENV}, stdin=subprocess.DEVNULL)

    def pull(self, ref: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return self.crictl("pull", ref, timeout=timeout)

    def remove(self, ref: str) -> None:
        self.crictl("rmi", ref, timeout=60)

    def images(self) -> str:
        return self.crictl("images", "--digests", timeout=30).stdout


def start_containerd(procs: Processes, workdir: Path, hosts_dir: Path) -> Containerd:
    if os.geteuid() != 0:
        raise Unavailable("containerd needs root")
    containerd = binary("containerd")
    binary("crictl")
    root = workdir / "containerd"
    (root / "cni").mkdir(parents=True, exist_ok=True)
    config = root / "config.toml"
    config.write_text(CONTAINERD_CONFIG.format(root=root, hosts=hosts_dir))
    # Its own mount namespace with a resolver on loopback: after every mirror failed, containerd
    # looks up the fixed name itself, and that query must not leave the machine (SPEC 12.3 #13).
    resolv = root / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions attempts:1 timeout:1\n")
    procs.start("containerd", ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                               'mount --bind "$1" /etc/resolv.conf && exec "$2" --config "$3"', "sh",
                               str(resolv), containerd, str(config)])
    runtime = Containerd(procs, root)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not procs.running("containerd"):
            raise Unavailable(f"containerd exited: {procs.tail('containerd')}")
        if Path(f"{root}/c.sock").exists():
            # gotcha 4: a daemon can be up while its CRI plugin failed to load; ask the CRI itself
            result = runtime.crictl("version", timeout=10)
            if result.returncode == 0 and "RuntimeApiVersion" in result.stdout:
                return runtime
        time.sleep(0.2)
    raise Unavailable(f"containerd's CRI did not answer: {procs.tail('containerd')}")


def image_ref(digest: str) -> str:
    return f"{FIXED_HOST}/{IMAGE_REPO}@{digest}"


def make_workdir(prefix: str = "d8dp-") -> Path:
    # short (unix socket paths are limited to 108 bytes) and traversable by the unprivileged replicas
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path

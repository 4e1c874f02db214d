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
"""A real Kubernetes API server on loopback: etcd + kube-apiserver with their own PKI.

Started once per session (about 4 s, about 300 MB). No controller-manager runs, so namespaces never
finish terminating: tests use fresh names and fresh namespaces instead of deleting. Every process is
kept as a Popen handle and killed and reaped by PID in the teardown.

The binaries come from `make tools` (kube-apiserver, kubectl) and `make debs` (etcd-server). Without
them the tests are skipped with the reason, except under CI=true, where a missing binary is a broken
setup and fails.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".tools" / "bin"
CRDS = Path(__file__).resolve().parent / "crds"
START_TIMEOUT = 120  # seconds; generous for a loaded 2-core machine
DENIED = "denied request: "
# kubectl lives for a fraction of a second and collects garbage mostly during its own start; a larger GC
# target makes each of the few hundred calls about 20 % cheaper in CPU (a caller's own GOGC is kept).
KUBECTL_GOGC = {"GOGC": "400"}


def _binary(name: str, fallback: str | None = None) -> str | None:
    path = TOOLS / name
    if path.exists():
        return str(path)
    return shutil.which(fallback) if fallback else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- PKI ---------------------------------------------------------------------------------------

def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert(subject: x509.Name, key, issuer: x509.Name, issuer_key, *, ca: bool = False,
          usage: list | None = None, sans: list | None = None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path) -> dict[str, Path]:
    """A CA, the server's serving pair, an admin client pair (system:masters) and the service-account keys."""
    def name(cn: str, org: str | None = None) -> x509.Name:
        parts = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        if org:
            parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(parts)

    files: dict[str, Path] = {}

    def write(label: str, data: bytes) -> None:
        files[label] = directory / label
        files[label].write_bytes(data)
        files[label].chmod(0o600)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name("d8registry-test-ca")
    ca = _cert(ca_name, ca_key, ca_name, ca_key, ca=True)
    write("ca.crt", ca.public_bytes(serialization.Encoding.PEM))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _cert(name("kube-apiserver"), server_key, ca_name, ca_key, usage=[ExtendedKeyUsageOID.SERVER_AUTH],
                   sans=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    write("server.crt", server.public_bytes(serialization.Encoding.PEM))
    write("server.key", _pem_key(server_key))
    admin_key = ec.generate_private_key(ec.SECP256R1())
    admin = _cert(name("admin", "system:masters"), admin_key, ca_name, ca_key,
                  usage=[ExtendedKeyUsageOID.CLIENT_AUTH])
    write("admin.crt", admin.public_bytes(serialization.Encoding.PEM))
    write("admin.key", _pem_key(admin_key))
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write("sa.key", _pem_key(sa_key))
    write("sa.pub", sa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return files


# -- processes ---------------------------------------------------------------------------------

@dataclass
class Process:
    name: str
    proc: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _start(name: str, argv: list[str], workdir: Path) -> Process:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, stdin=subprocess.DEVNULL)
    return Process(name, proc, log)


class KubectlError(AssertionError):
    pass


@dataclass
class ApiServer:
    url: str
    kubeconfig: Path
    kubectl_bin: str
    cache_dir: Path
    start_seconds: float
    tls: ssl.SSLContext  # the admin client certificate, for call()

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([self.kubectl_bin, "--kubeconfig", str(self.kubeconfig), "--cache-dir",
                               str(self.cache_dir), *args], input=stdin, capture_output=True, text=True, timeout=120,
                              env={**KUBECTL_GOGC, **os.environ})
        if check and proc.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def apply(self, objects: list[dict] | dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        docs = objects if isinstance(objects, list) else [objects]
        # a stream of JSON documents: kubectl reads it like YAML, and Python writes it many times faster
        return self.kubectl("apply", "-f", "-", *args, stdin="\n".join(json.dumps(doc) for doc in docs), check=check)

    def apply_stored(self, objects: list[dict], *args: str) -> list[dict]:
        """Apply the objects in order in one kubectl call; what the server stored for each, in the same order.

        Each answer is the server's reply to that object's own write (`-o json`), so a later version of the
        same object further down the list does not hide an earlier one.
        """
        found = json.loads(self.apply(objects, *args, "-o", "json").stdout)
        items = found["items"] if found.get("kind") == "List" else [found]
        if len(items) != len(objects):
            raise KubectlError(f"kubectl apply answered {len(items)} objects for {len(objects)}")
        return items

    def call(self, method: str, path: str, body: dict | list | None = None,
             content_type: str = "application/json") -> tuple[int, dict]:
        """One API request from this process, with no kubectl start: for a test's own bookkeeping (such as
        waiting until a write reached the admission plugin), never for the request the test is about."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                         headers={"Content-Type": content_type, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, context=self.tls, timeout=60) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            try:
                return exc.code, json.loads(text)
            except ValueError:
                return exc.code, {"message": text}


def call_denial(status: int, answer: dict) -> str | None:
    """denial() for an answer of ApiServer.call: the admission message of a refused request, None when it
    succeeded; any other failure is a test error."""
    if 200 <= status < 300:
        return None
    message = answer.get("message", "")
    if DENIED not in message:
        raise KubectlError(f"API request failed ({status}) without an admission denial: {message}")
    return message.split(DENIED, 1)[1].strip()


def denial(proc: subprocess.CompletedProcess) -> str | None:
    """The admission message of a refused kubectl call; None when it succeeded.

    kubectl prints `... denied request: <message>`; anything else failing is a test error, not a denial.
    """
    if proc.returncode == 0:
        return None
    text = proc.stderr.strip()
    if DENIED not in text:
        raise KubectlError(f"kubectl failed without an admission denial: {text}")
    return text.split(DENIED, 1)[1].strip()


def _client_tls(pki: dict[str, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["ca.crt"]))
    context.load_cert_chain(str(pki["admin.crt"]), str(pki["admin.key"]))
    return context


def _wait_ready(url: str, context: ssl.SSLContext, processes: list[Process]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last = ""
    while time.monotonic() < deadline:
        for process in processes:
            if process.proc.poll() is not None:
                raise RuntimeError(f"{process.name} exited ({process.proc.returncode}):\n{process.tail()}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", context=context, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError as exc:  # not listening yet, or a readiness check still failing (HTTP 500)
            last = str(exc)
        time.sleep(0.2)
    raise RuntimeError(f"kube-apiserver not ready after {START_TIMEOUT} s ({last}):\n{processes[-1].tail()}")


def _binaries() -> dict[str, str]:
    found = {"etcd": _binary("etcd", "etcd"), "kube-apiserver": _binary("kube-apiserver"),
             "kubectl": _binary("kubectl")}
    missing = [name for name, path in found.items() if not path]
    if missing:
        reason = (f"real API server tests need {', '.join(missing)}: run `make tools debs` "
                  "(kube-apiserver and kubectl are built into .tools/bin, etcd comes from Debian etcd-server)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI setup is broken: {reason}")
        pytest.skip(reason)
    return found  # type: ignore[return-value]


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory) -> ApiServer:
    binaries = _binaries()
    workdir = tmp_path_factory.mktemp("apiserver")
    pki_dir = workdir / "pki"
    pki_dir.mkdir()
    pki = make_pki(pki_dir)
    etcd_client, etcd_peer, port = _free_port(), _free_port(), _free_port()
    processes: list[Process] = []
    started = time.monotonic()
    try:
        processes.append(_start("etcd", [
            binaries["etcd"], "--name", "default", "--data-dir", str(workdir / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{etcd_client}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_client}",
            "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-cluster", f"default=http://127.0.0.1:{etcd_peer}",
            "--log-level", "warn",
        ], workdir))
        processes.append(_start("kube-apiserver", [
            binaries["kube-apiserver"],
            "--etcd-servers", f"http://127.0.0.1:{etcd_client}",
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", str(port),
            "--tls-cert-file", str(pki["server.crt"]), "--tls-private-key-file", str(pki["server.key"]),
            "--client-ca-file", str(pki["ca.crt"]),
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--service-account-key-file", str(pki["sa.pub"]),
            "--service-account-signing-key-file", str(pki["sa.key"]),
            "--service-cluster-ip-range", "10.96.0.0/16",
            "--authorization-mode", "RBAC",
            # no controller-manager keeps the `kubernetes` Endpoints; without this the server waits for it
            "--endpoint-reconciler-type", "none",
            "--cert-dir", str(workdir / "certs"),
            "--profiling=false",
        ], workdir))
        url = f"https://127.0.0.1:{port}"
        tls = _client_tls(pki)
        _wait_ready(url, tls, processes)
        start_seconds = time.monotonic() - started
        kubeconfig = workdir / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": url, "certificate-authority": str(pki["ca.crt"])}}],
            "users": [{"name": "admin", "user": {"client-certificate": str(pki["admin.crt"]),
                                                 "client-key": str(pki["admin.key"])}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
        }))
        kubeconfig.chmod(0o600)
        server = ApiServer(url, kubeconfig, binaries["kubectl"], workdir / "kubectl-cache", start_seconds, tls)
        server.kubectl("apply", "-f", str(CRDS))
        server.kubectl("wait", "--for", "condition=Established", "--timeout", "60s", "-f", str(CRDS))
        server.kubectl("create", "namespace", "d8-system")
        print(f"\nkube-apiserver ready in {start_seconds:.1f} s")
        yield server
    finally:
        for process in reversed(processes):
            process.stop()

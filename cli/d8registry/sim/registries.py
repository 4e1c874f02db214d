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
"""The registries the simulated cluster talks to, as far as the image checker sees them.

A loopback HTTPS server answers manifest HEAD requests for every simulated registry (upstreams and
Local replicas). It knows which references each registry holds; it is a model of the world outside
the module, reached through REGISTRY_CHECKER_HOST_OVERRIDES, never a registry the module ships.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_MANIFEST = re.compile(r"^/v2/(?P<path>.+)/manifests/(?P<ref>[^/]+)$")


def _certificate(names: list[str]):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "d8registry simulator CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    sans = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "simulated registry")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return ca.public_bytes(pem).decode(), leaf.public_bytes(pem) + key_pem


class SimulatedRegistries:
    """missing: references ('<path>@<digest>' or '<path>:<tag>') every registry lacks; local_filled
    tells whether Local replicas hold the images yet (d8 mirror push)."""

    def __init__(self, hostnames: list[str]):
        self.missing: set[str] = set()
        self.missing_fragments: set[str] = set()
        self.local_filled = False
        self.requests = 0
        self.ca_pem, bundle = _certificate(hostnames)
        self._dir = tempfile.TemporaryDirectory(prefix="d8registry-sim-registry-")
        cert_file = Path(self._dir.name) / "server.pem"
        cert_file.write_bytes(bundle)
        self.ca_file = Path(self._dir.name) / "ca.pem"
        self.ca_file.write_text(self.ca_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args):
                pass

            def _answer(self, body: bool) -> None:
                owner.requests += 1
                match = _MANIFEST.match(self.path.split("?")[0])
                if self.path.rstrip("/") == "/v2":
                    status = 200
                elif match and owner.holds(self.headers.get("Host", ""), match["path"], match["ref"]):
                    status = 200
                else:
                    status = 404
                self.send_response(status)
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self):  # noqa: N802 (http.server's naming)
                self._answer(False)

            def do_GET(self):  # noqa: N802
                self._answer(True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="sim-registries", daemon=True)
        self._thread.start()

    def holds(self, host: str, path: str, ref: str) -> bool:
        if host.endswith(":5001") and path == "system/deckhouse" and not self.local_filled:
            return False  # a Local replica before 'd8 mirror push'
        sep = "@" if ref.startswith("sha256:") else ":"
        reference = f"{path}{sep}{ref}"
        if reference in self.missing:
            return False
        return not any(fragment in reference for fragment in self.missing_fragments)

    def overrides(self, hosts: list[str]) -> str:
        return ",".join(f"{host}=127.0.0.1:{self.port}" for host in sorted(set(hosts)))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
        self._dir.cleanup()

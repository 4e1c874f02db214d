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
"""A user's push through the push Ingress for every `https.mode` (SPEC 5.8): regctl → ingress → the Local
front → distribution, with the front's nginx.conf and distribution's config.yaml as the hook renders them.

The ingress controller is a stand-in (our nginx build) that does what ingress-nginx does for the rendered
Ingress: it keeps the client's Host, sets X-Forwarded-Proto to the scheme the client used (plus
X-Forwarded-Host/-Port/-For and X-Real-IP), and talks HTTPS to the front without verifying it
(`backend-protocol: HTTPS`). Per mode the client reaches it as production clients do:

  Disabled     plain HTTP to the ingress
  CertManager  HTTPS to the ingress, which holds the endpoint's certificate (CustomCertificate is the same path)
  OnlyInURI    HTTPS to a TLS terminator in front of the ingress, plain HTTP from there on

Addresses: 127.0.14.1 the front, 127.0.14.2 the ingress, 127.0.14.3 the terminator (xdist group `local_push`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from d8registry import local_replicas as lr
from d8registry import loopback as lo
from d8registry.loopback import pki

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_push")]

FRONT_IP, INGRESS_IP, TERMINATOR_IP = "127.0.14.1", "127.0.14.2", "127.0.14.3"

# What ingress-nginx sets on every proxied request (X-Forwarded-Proto is the scheme it was reached with).
_INGRESS_HEADERS = """\
            proxy_set_header Host $http_host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Port $server_port;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Scheme $scheme;
            proxy_set_header Connection "";
"""


@dataclass
class PushEndpoint:
    """The Local front behind the ingress stand-in; `hosts` maps an https.mode to the registry name a user
    pushes to and the CA the client trusts there (None: plain HTTP)."""

    replica: lo.Replica
    state: dict
    hosts: dict[str, tuple[str, str | None]]

    @property
    def ca_pem(self) -> str:
        return self.state["pki"]["ca"]["cert"]

    def user(self, key: str) -> dict:
        return self.state["users"][key]

    def blob_on_disk(self, digest: str) -> bool:
        algorithm, hexdigest = digest.split(":", 1)
        return (self.replica.root / "data" / "docker/registry/v2/blobs" / algorithm / hexdigest[:2] / hexdigest
                / "data").is_file()


def _ingress_conf(root: Path, front: tuple[str, int], ports: dict[str, int], cert: Path, key: Path) -> str:
    http_listen = f"{INGRESS_IP}:{ports['http']}"
    return f"""\
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log stderr warn;
events {{
    worker_connections 256;
}}
http {{
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    access_log off;
    # the Ingress annotations proxy-body-size "0" and proxy-request-buffering "off"
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_http_version 1.1;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    # the ingress controller: one HTTP and one HTTPS listener for the Ingress host
    server {{
        listen {http_listen};
        listen {INGRESS_IP}:{ports['https']} ssl;
        location / {{
{_INGRESS_HEADERS}            proxy_ssl_verify off;
            proxy_pass https://{front[0]}:{front[1]};
        }}
    }}
    # OnlyInURI: TLS ends in front of the ingress, which is reached over plain HTTP
    server {{
        listen {TERMINATOR_IP}:{ports['terminator']} ssl;
        location / {{
            proxy_set_header Host $http_host;
            proxy_set_header Connection "";
            proxy_pass http://{http_listen};
        }}
    }}
}}
"""


@pytest.fixture(scope="module")
def endpoint():
    for tool in ("registry", "nginx", "regctl", "crane"):
        try:
            lo.binary(tool)
        except lo.Unavailable as exc:
            pytest.fail(str(exc))
    workdir = lo.make_workdir("d8push-")
    procs = lo.Processes(workdir)
    try:
        replica, state = lo.build_local_replica(procs, workdir, ip=FRONT_IP)
        lo.start_replica(procs, replica)
        # the endpoint's own certificate (cert-manager's or a custom one), from a CA other than the module's
        ingress_ca, _ = pki.ensure_ca(None, lo.now())
        root = workdir / "ingress"
        root.mkdir()
        cert, key = lo.tls_pair(root, "ingress", ingress_ca, [], [INGRESS_IP, TERMINATOR_IP])
        ports = {"http": lo.free_port(INGRESS_IP), "https": lo.free_port(INGRESS_IP),
                 "terminator": lo.free_port(TERMINATOR_IP)}
        (root / "nginx.conf").write_text(_ingress_conf(root, replica.front_address, ports, cert, key))
        lo.chown_tree(root)
        procs.start("ingress", [lo.unprivileged_binary(workdir, "nginx"), "-e", "stderr", "-p", str(root),
                                "-c", str(root / "nginx.conf")], user=lo.RUN_AS, listen=(INGRESS_IP, ports["http"]))
        lo.wait_listening(TERMINATOR_IP, ports["terminator"], procs.procs["ingress"], 20, "ingress")
        hosts = {"Disabled": (f"{INGRESS_IP}:{ports['http']}", None),
                 "CertManager": (f"{INGRESS_IP}:{ports['https']}", ingress_ca.cert),
                 "OnlyInURI": (f"{TERMINATOR_IP}:{ports['terminator']}", ingress_ca.cert)}
        yield PushEndpoint(replica, state, hosts)
    except lo.Unavailable as exc:
        pytest.fail(str(exc))
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.parametrize("mode", ["Disabled", "CertManager", "OnlyInURI"])
def test_rw_pushes_an_image_through_the_ingress(endpoint, tmp_path, mode):
    host, ca_pem = endpoint.hosts[mode]
    index = lr.write_index(tmp_path / "layout", f"ingress-{mode}", mode.lower(), architectures=(lr.HOST_ARCH,))
    regctl = lr.make_regctl(tmp_path)
    regctl.trust(host, ca_pem)
    rw = endpoint.user("rw")
    regctl.login(host, rw["name"], rw["password"])

    pushed = regctl.push(index, f"{host}/{lo.IMAGE_REPO}:{index.tag}")
    assert pushed.returncode == 0, pushed.stderr[-2000:]

    _assert_stored(endpoint, index)
    # and the user reads it back through the same endpoint
    copied = regctl.run("image", "copy", f"{host}/{lo.IMAGE_REPO}:{index.tag}", f"ocidir://{tmp_path / 'back'}:x")
    assert copied.returncode == 0, copied.stderr[-2000:]
    assert index.digest.split(":", 1)[1] in (tmp_path / "back" / "index.json").read_text()


def test_d8_mirror_push_client_library_pushes_over_plain_http(endpoint, tmp_path):
    """`d8 mirror push --insecure` is built on go-containerregistry (crane is its CLI). That library puts the
    registry's scheme on every request to the registry host, so it pushed over HTTP even with the absolute
    https:// Locations; here it has to resolve the relative ones against the endpoint it dialled."""
    host, _ = endpoint.hosts["Disabled"]
    index = lr.write_index(tmp_path / "layout", "ingress-crane", "crane", architectures=(lr.HOST_ARCH,))
    rw = endpoint.user("rw")
    env = {**os.environ, **lo.NO_PROXY_ENV, "HOME": str(tmp_path), "DOCKER_CONFIG": str(tmp_path / "docker")}

    def crane(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([lo.binary("crane"), *args], input=stdin, capture_output=True, text=True, env=env,
                              timeout=300, stdin=None if stdin is not None else subprocess.DEVNULL)

    # the password goes through stdin, never onto a command line
    login = crane("auth", "login", host, "-u", rw["name"], "--password-stdin", "--insecure", stdin=rw["password"])
    assert login.returncode == 0, login.stderr[-2000:]
    pushed = crane("push", "--insecure", str(index.layout), f"{host}/{lo.IMAGE_REPO}:{index.tag}")
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    _assert_stored(endpoint, index)


def _assert_stored(endpoint: PushEndpoint, index: lr.ImageIndex) -> None:
    """Every blob is in the store, and nodes (ro, straight at the front) find the index by its tag."""
    for digest in index.blobs:
        assert endpoint.blob_on_disk(digest), digest
    ro = endpoint.user("ro")
    answer = lo.https(endpoint.replica.front_address, "HEAD", f"/v2/{lo.IMAGE_REPO}/manifests/{index.tag}",
                      endpoint.ca_pem, user=ro["name"], password=ro["password"], headers={"Accept": lr.OCI_INDEX})
    assert answer.status == 200 and answer.headers.get("docker-content-digest") == index.digest

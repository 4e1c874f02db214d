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
"""`d8registry up` as a user runs it: every mode ends with a CRI pull through containerd, the upstream is
printed with its real scheme, and generated secrets are only ever in a 0600 file whose path is printed."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from d8registry import local_replicas as lr
from d8registry import loopback as lo

pytestmark = pytest.mark.e2e

if os.geteuid() != 0:
    pytest.skip("up runs containerd, which needs root; run the suite as root like CI", allow_module_level=True)


def _up(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "d8registry", "up", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("mode", "auth"), [("Direct", "basic"), ("Direct", "none"), ("Proxy", "token"),
                                            ("Proxy", "none"),
                                            pytest.param("Local", None, marks=pytest.mark.xdist_group("local_up"))])
def test_every_mode_pulls_through_containerd_cri(mode, auth):
    proc = _up("--mode", mode, *(["--upstream-auth", auth] if auth else []))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert re.search(r"containerd \(CRI\) pulled \S+@sha256:[0-9a-f]{64} ", out), out
    if auth is not None:
        scheme = "http" if auth == "none" else "https"
        assert re.search(rf"upstream registry: {scheme}://127\.0\.0\.1:\d+ \({auth} auth\)", out), out
    if mode == "Direct":
        assert "needs Deckhouse's containerd (hosts.toml `rewrite`)" in out, out
    assert re.search(r"module CA: /tmp/d8up-\S+/module-ca\.crt", out), out
    assert re.search(r"generated credentials \(mode 0600, never printed\): /tmp/d8up-\S+/credentials\.json", out), out
    assert lo.UPSTREAM_PASSWORD not in out + proc.stderr
    assert out.rstrip().endswith("Stopped every process and removed the work dir.")


def _read_until(proc: subprocess.Popen, marker: str, timeout: float) -> str:
    # Raw reads on the descriptor: a buffered readline can pull the marker into Python's buffer, after which
    # select() never reports the descriptor ready again and the marker is never seen.
    data = b""
    deadline = time.monotonic() + timeout
    while marker.encode() not in data:
        left = deadline - time.monotonic()
        assert left > 0 and proc.poll() is None, f"up did not print {marker!r}:\n{data.decode(errors='replace')}"
        ready, _, _ = select.select([proc.stdout], [], [], min(left, 1.0))
        if ready:
            data += os.read(proc.stdout.fileno(), 65536)
    return data.decode()


def _wait_for_tag(address, ca_pem: str, ro: dict, tag: str, digest: str, bound: float = 120) -> None:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        answer = lo.https(address, "HEAD", f"/v2/{lo.IMAGE_REPO}/manifests/{tag}", ca_pem, user=ro["username"],
                          password=ro["password"], headers={"Accept": lr.OCI_INDEX})
        if answer.status == 200 and answer.headers.get("docker-content-digest") == digest:
            return
        time.sleep(0.2)
    raise AssertionError(f"{tag} never reached {address}")


@pytest.mark.xdist_group("local_up")
def test_local_credentials_are_in_a_0600_file_that_works_and_never_on_stdout(tmp_path):
    """--keep leaves the replica set running: a user's OCI client (regctl) pushes with the printed
    coordinates and the rw password from the file, and the push reaches every master."""
    proc = subprocess.Popen([sys.executable, "-u", "-m", "d8registry", "up", "--mode", "Local", "--keep"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        out = _read_until(proc, "Up. Press Ctrl-C to stop.", 240)
        credentials = Path(re.search(r"never printed\): (\S+)", out).group(1))
        ca = Path(re.search(r"module CA: (\S+)", out).group(1))
        front = re.search(r"Local master front: https://([0-9.]+):(\d+)", out)
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        users = json.loads(credentials.read_text())
        assert set(users) == {"ro", "rw", "mirror_puller", "mirror_pusher"}
        for entry in users.values():
            assert entry["password"] not in out
        ro = users["ro"]
        answer = lo.https((front.group(1), int(front.group(2))), "GET", "/v2/", ca.read_text(), user=ro["username"],
                          password=ro["password"])
        assert answer.status == 200, "the file holds the credentials the running front accepts"
        assert "replicated to local-1, local-2" in out and "with local-0 stopped" in out, out
        push_to = re.search(r"push address: (\S+)", out).group(1)
        host = push_to.split("/", 1)[0]
        client = lr.make_regctl(tmp_path)
        client.trust(host, ca.read_text())
        client.login(host, users["rw"]["username"], users["rw"]["password"])
        index = lr.write_index(tmp_path / "mine", "user-push", "mine", architectures=(lr.HOST_ARCH,))
        pushed = client.push(index, f"{push_to}:mine")
        assert pushed.returncode == 0, pushed.stderr
        fronts = re.findall(r"Local master front: https://([0-9.]+):(\d+)", out)
        assert len(fronts) == 3
        for ip, port in fronts[1:]:
            _wait_for_tag((ip, int(port)), ca.read_text(), users["ro"], "mine", index.digest)
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 0
    assert "Stopped every process and removed the work dir." in rest
    assert not credentials.exists()

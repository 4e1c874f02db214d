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
"""The nginx the registry image builds, as tests run it: `make tools` compiles it with
images/registry-nginx/configure-flags (tools/build-nginx.sh). Debian's nginx has modules the image leaves
out (fastcgi, uwsgi, scgi, gzip, ...) and would accept configs the image refuses, so it is never used."""

from __future__ import annotations

import functools
import re
import socket
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NGINX = REPO / ".tools" / "bin" / "nginx"
FLAGS = REPO / "images" / "registry-nginx" / "configure-flags"
# Where the production pods mount what a front or the node LB reads (hooks/lib/front.Layout defaults, lb.py).
POD_DIRS = ("/pki", "/config/front", "/tmp")
_LISTEN = re.compile(r"^(\s*listen )(\d+\.\d+\.\d+\.\d+):(\d+)(\b[^;\n]*;)$", re.M)


@functools.cache
def binary() -> str:
    """Path of the image-flag nginx; the test fails (never skips) when `make tools` has not built it."""
    if not NGINX.exists():
        pytest.fail("nginx built with the image's configure flags is missing: run `make tools`")
    reported = subprocess.run([str(NGINX), "-V"], capture_output=True, text=True, timeout=30).stderr
    if f"configure arguments: {' '.join(FLAGS.read_text().split())}\n" not in reported:
        pytest.fail(f"{NGINX} was not built with images/registry-nginx/configure-flags: run `make tools`")
    return str(NGINX)


def check(conf: Path, prefix: Path) -> subprocess.CompletedProcess:
    """`nginx -t` of one config file with its prefix in a temp dir; the caller asserts on the result."""
    return subprocess.run([binary(), "-t", "-q", "-e", "stderr", "-p", f"{prefix}/", "-c", str(conf)],
                          capture_output=True, text=True, timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def loopback_listens(conf: str) -> str:
    """Every `listen <IPv4>:<port>` moved to 127.0.0.1 and a free port, the rest of each line kept.

    `nginx -t` binds the listeners it checks: a master's InternalIP is not an address of this machine,
    and 0.0.0.0 or a fixed port could collide with servers of other tests.
    """
    return _LISTEN.sub(lambda m: f"{m.group(1)}127.0.0.1:{_free_port()}{m.group(4)}", conf)


def relocate(conf: str, root: Path) -> str:
    """The production config with the pod's mount points moved under `root` and its listeners on loopback.

    Only whole directory names followed by '/' are moved; request paths in `location` lines start
    with /v2/, /healthz or /metrics and are left as they are.
    """
    # one pass: `root` itself may lie under /tmp
    pod_dir = re.compile(" (" + "|".join(re.escape(directory) for directory in POD_DIRS) + ")/")
    return loopback_listens(pod_dir.sub(lambda m: f" {root}{m.group(1)}/", conf))

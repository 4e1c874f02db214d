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
"""What a hook process loads before it does any work (issue #15: hook run time near the interpreter's floor).

Not timed: these hold the structure that keeps a steady-state run cheap. A module listed here is loaded
only by the runs that need it (a settings change, a certificate to issue, a hosts.toml to render).
"""

import hashlib
import subprocess
import sys
from pathlib import Path

from lib import hashing

REPO = Path(__file__).resolve().parents[2]
# Heavy to import and not needed to start a hook: third-party packages, OpenSSL-backed hashlib, pathlib.
ON_DEMAND = ("jsonschema", "yaml", "cryptography", "bcrypt", "tomli_w", "_hashlib", "pathlib", "ipaddress",
             "secrets", "lib.pki", "lib.users", "lib.persist")


def _assert_not_loaded(hooks: str, modules: tuple[str, ...]) -> None:
    """Import the hooks in a fresh interpreter, as addon-operator starts them, and fail when any of the
    modules was loaded by the import alone."""
    code = (
        "import sys; sys.path.insert(0, 'hooks');"
        f"import {hooks};"
        f"loaded = [m for m in {modules!r} if m in sys.modules]; assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_importing_the_hooks_loads_nothing_on_demand():
    _assert_not_loaded("orchestrator, checker_init, checker_loop", ON_DEMAND)


# Loaded by the checker hooks but not needed to start the orchestrator: the renderers, datetime (the
# orchestrator reads its own times as seconds, lib.clock) and base64 (binascii directly).
ORCHESTRATOR_ON_DEMAND = ("datetime", "base64", "lib.front", "lib.lb", "lib.checker")


def test_importing_the_orchestrator_loads_no_renderer_and_no_datetime():
    _assert_not_loaded("orchestrator", ON_DEMAND + ORCHESTRATOR_ON_DEMAND)


def test_builtin_sha256_gives_hashlib_digests():
    for data in (b"", b"abc", bytes(range(256)) * 1000):
        assert hashing.sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
    digest = hashing.sha256()
    digest.update(b"a")
    digest.update(b"bc")
    assert digest.hexdigest() == hashlib.sha256(b"abc").hexdigest()

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
"""The module bundle as `make bundle` assembles it, and copies of it whose hooks run on nothing but the standard
library and what the bundle carries."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON_VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
# The interpreter itself, not this venv: with -E -s -S it has its standard library and nothing else.
BASE_PYTHON = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
ISOLATED = [BASE_PYTHON, "-E", "-s", "-S"]


def build(out: Path, *args: str) -> subprocess.CompletedProcess:
    """The entry point `make bundle` runs."""
    return subprocess.run([sys.executable, str(REPO / "tools" / "build_bundle.py"), *args, str(out)],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "registry"
    proc = build(out, "all")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def add_isolating_venv(module: Path) -> Path:
    """hooks/venv/bin/python3 that runs the real interpreter isolated (-E also makes it ignore the PYTHONHOME
    addon-operator sets) and records that PYTHONHOME, so a test sees both the rule and the isolation."""
    venv = module / "hooks" / "venv"
    (venv / "bin").mkdir(parents=True)
    record = module.parent / f"{module.name}-pythonhome.log"
    wrapper = venv / "bin" / "python3"
    wrapper.write_text("#!/bin/sh\n"
                       f"printf '%s\\n' \"$PYTHONHOME\" >> '{record}'\n"
                       f"exec {' '.join(ISOLATED)} \"$@\"\n", encoding="utf-8")
    wrapper.chmod(0o755)
    return record


@pytest.fixture
def isolated_bundle(bundle, tmp_path) -> Path:
    """A copy of the bundle whose hooks addon-operator's venv rule runs on the isolated interpreter."""
    copy = tmp_path / "registry"
    shutil.copytree(bundle, copy, symlinks=True)
    add_isolating_venv(copy)
    return copy

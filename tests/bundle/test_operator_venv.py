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
"""addon-operator's rule for Python hooks, as the emulation follows it: hooks/venv when it exists, else the system
python3 with a warning; the venv itself is never taken for a hook."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from d8registry.operator import protocol


def _module(tmp_path: Path) -> Path:
    hooks = tmp_path / "registry" / "hooks"
    hooks.mkdir(parents=True)
    hook = hooks / "one.py"
    hook.write_text("#!/usr/bin/env python3\nimport json, os\n"
                    "print(json.dumps({'configVersion': 'v1', 'beforeHelm': 1, "
                    "'x-home': os.environ.get('PYTHONHOME', '')}))\n")
    hook.chmod(0o755)
    return hook


def _config(hook: Path) -> dict:
    argv, env = protocol.hook_command(hook)
    proc = subprocess.run([*argv, "--config"], capture_output=True, text=True, timeout=60,
                          env={**protocol._hook_env(None), **env})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_without_a_venv_the_hook_runs_on_the_system_python_with_a_warning(tmp_path, caplog):
    hook = _module(tmp_path)
    with caplog.at_level(logging.WARNING, logger="d8registry.operator"):
        config = _config(hook)
    assert config["x-home"] == ""
    assert any("venv does not exist" in r.getMessage() and str(hook.parent) in r.getMessage() for r in caplog.records)


def test_with_a_venv_the_hook_runs_on_its_python3_with_pythonhome(tmp_path, caplog):
    hook = _module(tmp_path)
    venv = hook.parent / "venv"
    (venv / "bin").mkdir(parents=True)
    # a stand-in venv interpreter: the real one, told to ignore PYTHON* (a plain venv cannot run under PYTHONHOME)
    python3 = venv / "bin" / "python3"
    python3.write_text(f"#!/bin/sh\nexport SEEN_HOME=\"$PYTHONHOME\"\nexec {sys.executable} -E \"$@\"\n")
    python3.chmod(0o755)
    argv, env = protocol.hook_command(hook)
    assert argv == [str(python3), str(hook)] and env == {"PYTHONHOME": str(venv)}
    with caplog.at_level(logging.WARNING, logger="d8registry.operator"):
        config = _config(hook)
    assert config["x-home"] == str(venv)  # -E hides PYTHON* from the interpreter, not from os.environ
    assert not caplog.records
    # the venv's executables are not hooks
    assert protocol.discover_hooks(hook.parent) == [hook]

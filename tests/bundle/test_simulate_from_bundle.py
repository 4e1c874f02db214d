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
"""The simulator's default scenario on the bundle tree instead of the checkout."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

# make sim's default scenario (cli/d8registry/sim/scenario.py), one switch after the other
DEFAULT_SWITCHES = ["mode=Direct", "mode=Proxy", "mode=Direct", "mode=Local", "mode=Unmanaged"]


def test_default_scenario_reaches_ready_from_the_bundle(isolated_bundle, helm_bin):
    """`make sim`'s switches (Unmanaged -> Direct -> Proxy -> Direct -> Local -> Unmanaged) with every hook started
    from the bundle through hooks/venv on an interpreter that has only its standard library and the bundle.

    This is the suite's play of the real hook protocol without --in-process: every hook is its own process that
    reads its binding context, values and config values from the files named in its environment and writes its
    patches, Kubernetes operations and metrics to the files named there (every other simulation in the suite calls
    the hooks in-process), on the production tree instead of the checkout."""
    proc = subprocess.run([sys.executable, "-m", "d8registry", "--module-dir", str(isolated_bundle), "--json"],
                          capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert [step["request"] for step in summary] == DEFAULT_SWITCHES, summary
    for step in summary:
        assert step["outcome"] == "ready", step
        ready = next(c for c in step["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True", step
    homes = (isolated_bundle.parent / "registry-pythonhome.log").read_text().split()
    assert len(homes) > 20 and set(homes) == {str(isolated_bundle / "hooks" / "venv")}


def test_a_module_dir_that_is_no_module_is_refused(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "d8registry", "simulate", "--module-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and "has no module.yaml and hooks/" in proc.stderr and "Traceback" not in proc.stderr

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
"""`--module-dir` runs another module tree; its hooks then run as processes, with that tree's own hooks/lib."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_in_process_refuses_a_module_dir_whose_lib_it_would_not_load(tmp_path):
    """In process, the hooks would import `lib` from the checkout (the simulator's own import of it comes first),
    so a patched tree's hooks/lib would silently not run. The CLI says so instead of simulating the wrong code."""
    tree = tmp_path / "module"
    subprocess.run([sys.executable, str(REPO / "tools/build_bundle.py"), "tree", str(tree)], check=True,
                   capture_output=True, timeout=120)
    for args in (["simulate", "--in-process", "--set", "mode=Direct"],
                 ["simulate", "--real-dataplane", "--in-process", "--set", "mode=Direct"]):
        proc = subprocess.run([sys.executable, "-m", "d8registry", *args, "--module-dir", str(tree)],
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr
        assert f"--in-process runs this checkout's hooks/lib, not the one in {tree}" in proc.stderr, proc.stderr

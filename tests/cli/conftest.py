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
"""One CLI run shared by the tests that assert on it.

A `simulate` or `plan` of the example cluster costs a whole simulated switch. Several tests (in
test_main_job.py, test_plan_admission.py, test_plan_push_endpoint.py, test_simulate_damaged_secrets.py) run
the very same command and only assert different things on its exit code, output or dump (or start from
it), so `cli_once` runs each distinct command once
per worker and hands every test the same result. Tests that share a run carry one xdist_group, named
after the run ("cli-simulate-direct", "cli-simulate-proxy", "cli-simulate-local", "cli-plan-proxy",
"cli-plan-proxy-ttl"), so that `make test` (--dist loadgroup) puts them on one worker and the run happens
once in the whole suite.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class CliRun:
    proc: subprocess.CompletedProcess
    dump: Path | None          # the --dump-to file, when the run wrote one


@pytest.fixture(scope="session")
def cli_once(tmp_path_factory):
    """cli_once(*args, dump=False) -> CliRun: `python -m d8registry <args>` run once per distinct
    argument list (with `--dump-to <file>` appended when dump is set). The result is shared: a test
    must not write to the dump file (copy it first)."""
    runs: dict[tuple, CliRun] = {}

    def run(*args: str, dump: bool = False) -> CliRun:
        key = (args, dump)
        if key not in runs:
            path = tmp_path_factory.mktemp("cli-once") / "dump.yaml" if dump else None
            extra = ("--dump-to", str(path)) if path else ()
            proc = subprocess.run([sys.executable, "-m", "d8registry", *args, *extra], capture_output=True,
                                  text=True, timeout=900, stdin=subprocess.DEVNULL)
            runs[key] = CliRun(proc, path)
        return runs[key]

    return run

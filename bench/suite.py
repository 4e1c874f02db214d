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
"""Benchmark: `make test` on a fresh clone of this checkout's HEAD, as CI runs it (`.ci/run`).

The clone gets its own venv (pip's wheel cache is reused) and links the Go tools from the shared tool
cache, so the figure is the one issue #15 sets: the whole suite on a fresh clone with the tools cached,
goal <= 10 minutes. Wall minutes and the CPU seconds of the run (user + sys of every process it waited
for) are printed; CPU seconds do not depend on what else the machine was doing, wall time does.
It takes as long as the suite, so `make bench` runs it last.
Usage: python bench/suite.py [--keep]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "bench")]

from figures import figure  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", action="store_true", help="keep the clone and its log")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="d8registry-suite-bench-"))
    clone, log = base / "registry", base / "make-test.log"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True,
                          text=True).stdout.strip()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with log.open("wb") as out:
        code = subprocess.run(["make", "test"], cwd=clone, stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL).returncode
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = [line for line in log.read_text(errors="replace").splitlines() if " passed" in line or " failed" in line]
    print(f"make test on a fresh clone of {head}: exit {code}, {wall / 60:.2f} min wall, "
          f"{cpu:.0f} CPU-seconds; {summary[-1] if summary else 'no pytest summary'}")
    if args.keep:
        print(f"clone and log kept in {base}")
    else:
        shutil.rmtree(base, ignore_errors=True)
    figure("make test on a fresh clone (tools cached), minutes", wall / 60 if code == 0 else float("inf"), 10,
           " min")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

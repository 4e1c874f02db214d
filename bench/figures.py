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
"""One line per benchmark figure: what was measured, the goal beside it, and whether it is met.

Every bench script prints its headline figures through `figure`, so `make bench` reads as a list of
goals (issue #15) with pass/fail; the detail lines above each figure stay free-form.
"""

from __future__ import annotations


def figure(name: str, measured: float, goal: float, unit: str = "×") -> bool:
    """Print `name: measured (goal <= goal) PASS|FAIL`; a lower figure is better for every goal we set."""
    met = measured <= goal
    print(f"FIGURE {name}: {measured:.2f}{unit} (goal <= {goal:g}{unit}) {'PASS' if met else 'FAIL'}")
    return met


def bytecode_env(env: dict[str, str], cache_dir: str) -> dict[str, str]:
    """The environment of a timed Python subprocess: bytecode cached after the warm-up run, on both sides.

    The baseline's SDK lives in site-packages, byte-compiled by pip; the hook's modules get their
    bytecode written on first import wherever Python may write it. PYTHONDONTWRITEBYTECODE in the
    caller's shell would make every hook run recompile its sources while the baseline never does,
    so both get one private bytecode cache (PYTHONPYCACHEPREFIX) that the warm-up runs fill.
    """
    env = dict(env)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache_dir
    return env

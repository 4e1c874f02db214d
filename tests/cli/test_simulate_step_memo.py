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
"""`simulate` with the step memo ($D8REG_SIM_STEP_MEMO, which the test suite turns on) ends exactly as
without it: a first run from an empty memo executes every node step itself, as a run without the memo
does, and a second run from the same memo replays all of them and ends with the same output, the same
files on every node and the same objects. (That an unset memo is neither read nor written is
tests/sim/test_step_memo.py's.)

A switch generates random secret material (CA, certificates, passwords), and the node steps carry it, so
two runs are only comparable when they get the same material: the generators are pinned here (the
first run's results are handed out again, in the same order, to the later runs). The runs go through
the CLI's entry point in this process (--in-process hooks, as `cli_once` runs them), so that the
simulator's node roots can be read before it removes its work directory."""

from __future__ import annotations

import re

import pytest
import yaml
from d8registry.__main__ import main
from d8registry.sim.bashible import MEMO_ENV, tree
from d8registry.sim.engine import Simulator

pytestmark = pytest.mark.xdist_group("cli-simulate-memo")


class Pinned:
    """The hooks' random generators, each handing every run the first run's results in call order."""

    def __init__(self, monkeypatch):
        from lib import pki, users

        self.recorded: dict[str, list] = {}
        self.position: dict[str, int] = {}
        for module, name in ((pki, "_generate_ca"), (pki, "_generate_leaf"), (pki, "_generate_scraper"),
                             (users, "random_password"), (users, "hash_password")):
            monkeypatch.setattr(module, name, self._pinned(name, getattr(module, name)))

    def _pinned(self, name, real):
        def pinned(*args, **kwargs):
            position = self.position.get(name, 0)
            self.position[name] = position + 1
            results = self.recorded.setdefault(name, [])
            if position == len(results):
                results.append(real(*args, **kwargs))
            return results[position]
        return pinned

    def rewind(self) -> None:
        self.position.clear()


def _simulate(tmp_path, monkeypatch, capsys, pinned: Pinned, name: str, memo) -> dict:
    """One `simulate --in-process --set mode=Proxy` of the example cluster: its output (without the
    wall time), the dump, every node's root as it ended and the simulator's bashible counters."""
    seen: dict = {}
    close = Simulator.close

    def closing(sim):
        seen["roots"] = {root.name: tree(root) for root in sorted((sim.workdir / "nodes").iterdir())}
        seen["counts"] = (sim.bashible.executions, sim.bashible.memo_hits)
        close(sim)

    with monkeypatch.context() as patch:
        patch.setattr(Simulator, "close", closing)
        if memo is None:
            patch.delenv(MEMO_ENV, raising=False)
        else:
            patch.setenv(MEMO_ENV, str(memo))
        pinned.rewind()
        dump = tmp_path / f"{name}.yaml"
        capsys.readouterr()
        code = main(["simulate", "--in-process", "--set", "mode=Proxy", "--dump-to", str(dump)])
        out = capsys.readouterr().out
    assert code == 0, out
    seen["out"] = re.sub(r", [0-9.]+ s wall$", ", <wall> s wall", out, flags=re.M)
    seen["objects"] = yaml.safe_load(dump.read_text())
    return seen


def test_simulate_with_the_step_memo_ends_exactly_as_without_it(tmp_path, monkeypatch, capsys):
    """The first run meets an empty memo, so it runs every node step itself (what a run without the memo does)
    and stores each; the second replays them all and must end exactly like the first."""
    pinned = Pinned(monkeypatch)
    memo = tmp_path / "memo"
    cold = _simulate(tmp_path, monkeypatch, capsys, pinned, "cold", memo)
    warm = _simulate(tmp_path, monkeypatch, capsys, pinned, "warm", memo)
    assert cold["counts"][0] > 0 and cold["counts"][1] == 0, "the cold run executes every step itself"
    assert warm["out"] == cold["out"]
    assert warm["roots"].keys() == cold["roots"].keys()
    for node, entries in cold["roots"].items():
        assert warm["roots"][node] == entries, node
    assert warm["objects"] == cold["objects"]
    # the warm run met only executions the cold one stored: bash ran for none of them
    assert warm["counts"][0] == 0
    assert warm["counts"][1] >= cold["counts"][0]


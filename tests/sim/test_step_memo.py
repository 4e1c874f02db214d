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
"""The step memo ($D8REG_SIM_STEP_MEMO, sim/bashible.py): an execution stored by one run is replayed by a
later one only when everything the steps could see is the same, and the replayed root, records and
calls are exactly those of a real execution. Any other input (step, stand-in command, environment,
program on PATH, object read) or an unusable entry means bash runs.

These tests drive Bashible directly with a small step that touches every kind of output (a file, a
stand-in command naming the root, an object read, a kubectl label), each run in its own work directory
and roots as a separate simulation would."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from d8registry.sim.bashible import MEMO_ENV, NAME_FILE, Bashible, tree
from d8registry.sim.engine import STUBS

STEP = r"""set -euo pipefail
root="${D8_REGISTRY_NODE_ROOT}"
node="$(cat "${root}/var/lib/bashible/discovered-node-name")"
kubectl -n d8-system get secret registry-memo-test --ignore-not-found -o json > "${root}/etc/seen.json"
printf 'mirror = "%s"\n' "$(cat "${root}/etc/input")" > "${root}/etc/config.toml"
chown root:root "${root}/etc/config.toml"
systemctl restart containerd
kubectl label node "${node}" --overwrite example.io/done=yes
"""
SECRET = {"kind": "Secret", "metadata": {"name": "registry-memo-test", "namespace": "d8-system"},
          "data": {"mirror": "bWlycm9y"}}


def _steps(content: str = STEP) -> list[dict]:
    return [{"metadata": {"name": "memo-test"}, "spec": {"content": content}}]


class Run:
    """One simulation's bashible: its own work directory and node roots (named without the node's
    name, so only the checks on roots can keep an execution from being replayed)."""

    def __init__(self, base: Path, nodes: list[str], stubs: Path = STUBS):
        self.workdir = base / "work"
        self.workdir.mkdir(parents=True)
        self.roots = {node: base / "roots" / f"r{i}" for i, node in enumerate(nodes)}
        for node, root in self.roots.items():
            (root / "etc").mkdir(parents=True)
            (root / "var/lib/bashible").mkdir(parents=True)
            (root / NAME_FILE).write_text(node + "\n")
            (root / "etc/input").write_text("mirror.example.com\n")
        self.bashible = Bashible(self.workdir, stubs, self.roots.__getitem__)

    def run(self, steps: list[dict] | None = None, objects: list[dict] | None = None) -> list:
        self.last = self.bashible.run([(node, steps or _steps(), "[]") for node in self.roots],
                                      [SECRET] if objects is None else objects)
        return [self.view(run) for run in self.last]

    def view(self, run) -> tuple:
        """A node's result: its files and its own record, with its root written as ROOT."""
        root = str(self.roots[run.node])
        return (run.node, tree(self.roots[run.node]), run.ok, run.failed_step, run.error.replace(root, "ROOT"),
                run.calls, [line.replace(root, "ROOT") for line in run.commands])

    def counts(self) -> tuple[int, int]:
        return self.bashible.executions, self.bashible.memo_hits


@pytest.fixture
def memo(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "memo"
    monkeypatch.setenv(MEMO_ENV, str(directory))
    monkeypatch.delenv("D8SIM_API_DOWN", raising=False)
    return directory


def _reference(tmp_path, monkeypatch, nodes, **kwargs) -> list:
    """The same nodes with every step executed by bash (no memo)."""
    with monkeypatch.context() as patch:
        patch.delenv(MEMO_ENV)
        reference = Run(tmp_path / "reference", nodes, **kwargs)
        assert reference.bashible.memo is None
        return reference.run()


def test_memo_is_off_unless_the_environment_names_a_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(MEMO_ENV, raising=False)
    first, second = Run(tmp_path / "a", ["worker-1"]), Run(tmp_path / "b", ["worker-1"])
    assert first.run() == second.run()
    assert first.counts() == second.counts() == (1, 0)


def test_a_later_run_replays_the_stored_execution_as_bash_would_have_run_it(tmp_path, monkeypatch, memo):
    nodes = ["worker-1", "worker-2"]
    reference = _reference(tmp_path, monkeypatch, nodes)
    cold = Run(tmp_path / "cold", nodes)
    assert cold.run() == reference
    assert cold.counts() == (1, 0)    # the two alike nodes share one execution, which is stored
    warm = Run(tmp_path / "warm", nodes)
    assert warm.run() == reference
    assert warm.counts() == (0, 1)
    assert [run.memo for run in warm.last] == [True, False]   # worker-2 shares worker-1's replay in the tick
    assert [run.memo for run in cold.last] == [False, False]
    # another node of the same kind in yet another run: its own name in its calls, its own root
    other = Run(tmp_path / "other", ["worker-9"])
    result = other.run()
    assert other.counts() == (0, 1)
    assert result[0][5] == [{"verb": "label", "node": "worker-9", "pairs": {"example.io/done": "yes"}}]
    assert result[0][1:] == (tree(other.roots["worker-9"]), *reference[0][2:5],
                             [{"verb": "label", "node": "worker-9", "pairs": {"example.io/done": "yes"}}],
                             reference[0][6])


def _changed_stubs(tmp_path: Path) -> Path:
    stubs = tmp_path / "stubs"
    shutil.copytree(STUBS, stubs)
    with open(stubs / "systemctl", "a") as handle:
        handle.write("# a changed stand-in\n")
    return stubs


@pytest.mark.parametrize("change", ["step", "stub", "api-down", "object", "program", "corrupt", "truncated", "foreign"])
def test_anything_the_steps_could_see_changed_or_an_unusable_entry_runs_bash(tmp_path, monkeypatch, memo, change):
    tool = tmp_path / "bin" / "d8memo-tool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\necho tool-1\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tool.parent}:{os.environ['PATH']}")
    steps = _steps(STEP + 'd8memo-tool > "${root}/etc/tool"\n')
    cold = Run(tmp_path / "cold", ["worker-1"])
    cold.run(steps)
    assert cold.counts() == (1, 0)
    objects, stubs = [SECRET], STUBS
    if change == "step":
        steps = _steps(steps[0]["spec"]["content"] + "# changed\n")
    elif change == "stub":
        stubs = _changed_stubs(tmp_path)
    elif change == "api-down":
        monkeypatch.setenv("D8SIM_API_DOWN", "1")
    elif change == "object":
        objects = [{**SECRET, "data": {"mirror": "b3RoZXI="}}]
    elif change == "program":
        tool.write_text("#!/bin/sh\necho tool-2\n")
    elif change == "corrupt":
        entries = sorted(memo.glob("*.json"))
        assert len(entries) == 1
        text = entries[0].read_text()
        entries[0].write_text(text.replace('"ok": true', '"ok": false'))   # the checksum no longer fits
    elif change == "truncated":
        entry = next(memo.glob("*.json"))
        entry.write_text(entry.read_text()[:200])
    elif change == "foreign":
        # a well-formed entry stored under another key (copied or renamed by hand) is not used
        entry = next(memo.glob("*.json"))
        stored = json.loads(entry.read_text().partition("\n")[2])
        stored["key"] = "0" * 64
        text = json.dumps(stored, sort_keys=True)
        entry.write_text(hashlib.sha256(text.encode()).hexdigest() + "\n" + text)
    warm = Run(tmp_path / "warm", ["worker-1"], stubs=stubs)
    result = warm.run(steps, objects)
    assert warm.counts() == (1, 0), f"{change}: the stored execution was replayed"
    with monkeypatch.context() as patch:
        patch.delenv(MEMO_ENV)
        reference = Run(tmp_path / "reference", ["worker-1"], stubs=stubs)
        assert reference.run(steps, objects) == result
    if change == "api-down":
        assert result[0][2] is False and "unable to handle the request" in result[0][4]
    if change == "program":
        assert (warm.roots["worker-1"] / "etc/tool").read_text() == "tool-2\n"
    # and the miss stored its own execution: the next run with the same change replays it
    again = Run(tmp_path / "again", ["worker-1"], stubs=stubs)
    assert again.run(steps, objects) == result
    assert again.counts() == (0, 1)


def test_an_execution_whose_files_name_its_root_is_never_replayed(tmp_path, monkeypatch, memo):
    """The roots do not contain the node names, so only the root check keeps the second node (in the
    same tick) and a later run from taking a file that names another node's root."""
    steps = _steps('printf "%s\\n" "${D8_REGISTRY_NODE_ROOT}" > "${D8_REGISTRY_NODE_ROOT}/etc/where"\n')
    for name in ("cold", "warm"):
        run = Run(tmp_path / name, ["worker-1", "worker-2"])
        run.run(steps)
        assert run.counts() == (2, 0), name
        for root in run.roots.values():
            assert (root / "etc/where").read_text() == f"{root}\n"

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
"""Bashible's part of one tick: the rendered node steps run as bash on each node's own root.

Nodes that are alike share one execution. Two nodes are alike when everything a step can see is the
same: the step scripts, the environment (the same stand-in commands and one object dump per tick), every
file, directory and symlink under the node's root before the run (its own name in
var/lib/bashible/discovered-node-name aside), and no per-node Secret of their own. The node's name is the
one input that may differ, so the execution's outputs are checked for it: when the files it wrote, the
commands it called or the objects it read name the node (or its root) in any other way than the kubectl
label/annotate target, nothing is shared and each node runs its steps itself.

A shared execution runs bash on the first node's real root. Its file changes (written, removed, mode
changed) are replayed on every other node's root, and that root is then compared, entry by entry, with the
executed node's result; a difference stops the simulation (SharedRunMismatch). The kubectl writes and
stand-in commands it made are reported for each node with that node's name and root, so a node that took
part in a shared execution looks exactly as if it had run its steps itself (NodeRun).

The executions of one tick are independent (each on its own root, with its own call records, reading the
same object dump), so they run side by side, one per CPU; replays and their checks follow in node order.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

NAME_FILE = "var/lib/bashible/discovered-node-name"
# the step's own rule for node names (d8reg_valid_node_name): only such names are interchangeable
_VALID_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
# object kinds, namespaces and names the kubectl stand-in finds as files (stubs/kubectl checks the same)
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")


class SharedRunMismatch(AssertionError):
    """A node root after a replayed execution differs from the executed node's root."""


@dataclass
class NodeRun:
    """What bashible did on one node in one tick."""
    node: str
    ok: bool
    failed_step: str = ""
    error: str = ""
    # the kubectl label/annotate calls, each {"verb", "node", "pairs"}, with this node as the target
    calls: list[dict] = field(default_factory=list)
    # stand-in commands (systemctl, crictl, chown) as they were called for this node, one line each
    commands: list[str] = field(default_factory=list)
    # the node whose bash execution this is (the node itself unless the execution was shared)
    executed_on: str = ""

    @property
    def containerd_restarted(self) -> bool:
        return any(line.split()[:3] == ["systemctl", "restart", "containerd"] for line in self.commands)


@dataclass
class _Execution:
    node: str
    root: Path
    before: dict
    after: dict
    run: NodeRun
    reads: list[tuple[str, str, str]]


def tree(root: Path) -> dict[str, tuple]:
    """Every entry under root: directories and files with their mode, files with their bytes, symlinks
    with their target."""
    entries: dict[str, tuple] = {}
    pending = [(str(root), "")]
    while pending:
        directory, prefix = pending.pop()
        with os.scandir(directory) as listing:
            for item in listing:
                rel = prefix + item.name
                if item.is_symlink():
                    entries[rel] = ("l", os.readlink(item.path))
                elif item.is_dir():
                    entries[rel] = ("d", item.stat().st_mode & 0o7777)
                    pending.append((item.path, rel + "/"))
                else:
                    with open(item.path, "rb") as handle:
                        entries[rel] = ("f", item.stat().st_mode & 0o7777, handle.read())
    return entries


def _normalized(entries: dict[str, tuple], node: str) -> dict[str, tuple]:
    """The tree with the node's own name file standing for any name."""
    if entries.get(NAME_FILE, ("",))[0] == "f" and entries[NAME_FILE][2] == (node + "\n").encode():
        entries = dict(entries)
        entries[NAME_FILE] = ("f", entries[NAME_FILE][1], b"<this node>\n")
    return entries


def _digest(steps: list[dict], entries: dict[str, tuple], secret_view: str, node: str) -> str:
    hasher = hashlib.sha256()
    for step in steps:
        hasher.update(json.dumps([step["metadata"]["name"], step["spec"]["content"]]).encode())
    # a node with a Secret of its own (or a name the step would refuse) is never grouped with another
    own = secret_view if secret_view != "[]" else ""
    if own or not (len(node) <= 253 and _VALID_NAME.fullmatch(node)):
        own += "\0" + node
    hasher.update(b"\0secret\0" + own.encode())
    for rel in sorted(entries):
        entry = entries[rel]
        hasher.update(b"\0entry\0" + rel.encode() + b"\0" + entry[0].encode())
        for part in entry[1:]:
            hasher.update(b"\0" + (part if isinstance(part, bytes) else str(part).encode()))
    return hasher.hexdigest()


class Bashible:
    """Runs a tick's node steps; see the module docstring for when executions are shared."""

    def __init__(self, workdir: Path, stubs: Path, node_root: Callable[[str], Path]):
        self.workdir = Path(workdir)
        self.stubs = Path(stubs)
        self.node_root = node_root
        self.share = True
        self.executions = 0     # bash executions of a node's step list (a shared one counts once)
        # looked up once: a bare "bash" would be searched along PATH (stubs first) for every step
        self.bash = shutil.which("bash") or "bash"
        self._object_files: dict[Path, str] | None = None  # what _write_objects left in each file

    def _write_objects(self, objects: list[dict]) -> Path:
        """The API's state as the kubectl stand-in reads it: one file per object,
        <kind>/<namespace, or _ when cluster-scoped>/<name>.json, holding what `kubectl get -o json` prints.
        Only the files of objects that changed since the last tick are written; objects whose names could
        not be file names (the stand-in refuses to look those up) are left out."""
        directory = self.workdir / "objects"
        wanted: dict[Path, str] = {}
        for obj in objects:
            meta = obj.get("metadata") or {}
            kind, namespace, name = obj.get("kind"), meta.get("namespace") or "", meta.get("name")
            if all(isinstance(part, str) and len(part) <= 200 and _FILE_NAME.fullmatch(part)
                   for part in (kind, name, *([namespace] if namespace else []))):
                wanted.setdefault(directory / kind / (namespace or "_") / f"{name}.json", json.dumps(obj) + "\n")
        if self._object_files is None:  # files of an earlier process are not known: start afresh
            shutil.rmtree(directory, ignore_errors=True)
            self._object_files = {}
        for path in self._object_files.keys() - wanted.keys():
            path.unlink(missing_ok=True)
        for path, text in wanted.items():
            if self._object_files.get(path) != text:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        self._object_files = wanted
        return directory

    def run(self, pending: list[tuple[str, list[dict], str]], objects: list[dict]) -> list[NodeRun]:
        """pending: (node, steps in order, the node's own Secret as JSON); objects: the API's state this
        tick, which kubectl reads. Returns one NodeRun per pending node, in the same order."""
        objects_file = self._write_objects(objects)
        index = {(o.get("kind"), (o.get("metadata") or {}).get("namespace") or "", o["metadata"]["name"]): o
                 for o in objects}
        groups: dict[str, list[tuple[str, list[dict], dict]]] = {}
        for node, steps, secret_view in pending:
            entries = tree(self.node_root(node))
            key = _digest(steps, _normalized(entries, node), secret_view, node) if self.share else node
            groups.setdefault(key, []).append((node, steps, entries))
        runs: dict[str, NodeRun] = {}
        firsts = [members[0] for members in groups.values()]
        with ThreadPoolExecutor(max_workers=max(1, min(len(firsts), os.cpu_count() or 1))) as pool:
            executed = list(pool.map(lambda member: self._execute(member[0], member[1], member[2], objects_file),
                                     firsts))
        self.executions += len(executed)
        for members, first in zip(groups.values(), executed, strict=True):
            runs[first.node] = first.run
            for other, other_steps, _entries in members[1:]:
                replayed = self._replay(first, other, index)
                if replayed is None:
                    self.executions += 1
                    replayed = self._execute(other, other_steps, tree(self.node_root(other)), objects_file).run
                runs[other] = replayed
        return [runs[node] for node, _steps, _view in pending]

    # -- one real execution -------------------------------------------------------------------------
    def _execute(self, node: str, steps: list[dict], before: dict, objects_file: Path) -> _Execution:
        root = self.node_root(node)
        calls, commands, reads = (self.workdir / f"{kind}-{node}.run" for kind in ("calls", "commands", "reads"))
        for path in (calls, commands, reads):
            path.unlink(missing_ok=True)
        env = dict(os.environ)
        env.update({
            "D8_REGISTRY_NODE_ROOT": str(root), "D8SIM_OBJECTS": str(objects_file), "D8SIM_CALLS": str(calls),
            "D8SIM_CALLS_LOG": str(commands), "D8SIM_READS": str(reads),
            "PATH": os.pathsep.join([str(self.stubs), os.path.dirname(sys.executable), env.get("PATH", "")]),
        })
        run = NodeRun(node=node, ok=True, executed_on=node)
        for step in steps:
            proc = subprocess.run([self.bash, "-c", step["spec"]["content"]], env=env, capture_output=True,
                                  text=True, timeout=120, cwd=str(root))
            if proc.returncode != 0:
                run.ok = False
                run.failed_step = step["metadata"]["name"]
                run.error = (proc.stderr.strip().splitlines() or [""])[-1]
                break
        run.calls = [json.loads(line) for line in _lines(calls)]
        run.commands = _lines(commands)
        read_list = [tuple(json.loads(line)) for line in _lines(reads)]
        for path in (calls, commands, reads):
            path.unlink(missing_ok=True)
        return _Execution(node, root, before, tree(root), run, read_list)

    # -- sharing ----------------------------------------------------------------------------------------
    def _replay(self, first: _Execution, node: str, index: dict) -> NodeRun | None:
        """The first execution's result on this node's root, or None when its outputs name the first
        node in a way a replay cannot carry over (the node then runs its steps itself)."""
        root = self.node_root(node)
        old_root, old_name = str(first.root), first.node

        def moved(text: str) -> str | None:
            text = text.replace(old_root, str(root))
            return None if old_name in text.replace(str(root), "") else text

        commands = [moved(line) for line in first.run.commands]
        if None in commands:
            return None
        calls = []
        for call in first.run.calls:
            if call.get("node") != old_name or old_name in json.dumps(call.get("pairs")):
                return None
            calls.append({**call, "node": node})
        for kind, namespace, name in first.reads:
            other = (kind, namespace, name.replace(old_name, node))
            seen, mine = index.get((kind, namespace, name)), index.get(other)
            if (seen is None) != (mine is None):
                return None
            if seen is not None and json.dumps(seen, sort_keys=True).replace(old_name, node) != \
                    json.dumps(mine, sort_keys=True):
                return None
        changed = {rel: entry for rel, entry in first.after.items() if first.before.get(rel) != entry}
        removed = [rel for rel in first.before if rel not in first.after]
        for rel, entry in changed.items():
            if rel == NAME_FILE or old_name.encode() in b"".join(
                    p if isinstance(p, bytes) else str(p).encode() for p in entry[1:]) or old_name in rel:
                return None
        for rel in sorted(removed, key=lambda r: -r.count("/")):
            path = root / rel
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        for rel in sorted(changed, key=lambda r: r.count("/")):
            entry, path = changed[rel], root / rel
            if path.is_symlink() or (path.exists() and entry[0] != "d" and path.is_dir()):
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
            if entry[0] == "d":
                path.mkdir(parents=True, exist_ok=True)
                os.chmod(path, entry[1])
            elif entry[0] == "l":
                path.unlink(missing_ok=True)
                os.symlink(entry[1], path)
            else:
                path.write_bytes(entry[2])
                os.chmod(path, entry[1])
        result = _normalized(tree(root), node)
        expected = _normalized(first.after, first.node)
        if result != expected:
            differ = sorted(rel for rel in set(result) | set(expected) if result.get(rel) != expected.get(rel))
            raise SharedRunMismatch(f"{node}: replaying {first.node}'s node steps left other files: {differ[:5]}")
        run = first.run
        error = run.error.replace(old_root, str(root)).replace(old_name, node)
        return NodeRun(node=node, ok=run.ok, failed_step=run.failed_step, error=error, calls=calls,
                       commands=commands, executed_on=first.node)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []

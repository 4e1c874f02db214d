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

The step memo (only when $D8REG_SIM_STEP_MEMO names a directory; the test suite sets it, users never do)
is the same rule over ticks and runs: an execution is stored under a key of everything it could see (the
alike-digest above, the stand-in commands' bytes, the environment but for this run's paths, and the
identity of every program on the steps' PATH), together with the objects its reads returned. A later
execution with the same key is replayed as a shared one is, its reads compared with the stored objects;
whenever that replay is in doubt (an unreadable entry, another object read, outputs that name the old
root or work directory, a root that does not come out as the stored one) bash runs for real.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

NAME_FILE = "var/lib/bashible/discovered-node-name"
# the step's own rule for node names (d8reg_valid_node_name): only such names are interchangeable
_VALID_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
# object kinds, namespaces and names the kubectl stand-in finds as files (stubs/kubectl checks the same)
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
# the step memo's directory (off when unset); see the module docstring
MEMO_ENV = "D8REG_SIM_STEP_MEMO"
_MEMO_FORMAT = 1
# set by _execute for each execution: this run's own paths, not inputs of what the steps compute
_RUN_PATHS = ("D8_REGISTRY_NODE_ROOT", "D8SIM_OBJECTS", "D8SIM_CALLS", "D8SIM_CALLS_LOG", "D8SIM_READS")
# files outside PATH that the programs on it read: the installed packages' libraries, jq's ~/.jq
_SYSTEM_FILES = ("/var/lib/dpkg/status", "/etc/ld.so.cache")


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
    # the execution was taken from the step memo (an earlier tick or run), not run by bash here
    memo: bool = False

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
    workdir: str = ""


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
        self.memo_hits = 0      # executions replayed from the step memo (never counted as executions)
        memo = os.environ.get(MEMO_ENV, "")
        self.memo: Path | None = Path(memo) if memo else None
        self._programs: dict[tuple, str] = {}   # _programs' results for this simulator
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
        memo_keys: dict[str, str] = {}
        context = self._context() if self.memo is not None else ""
        for node, steps, secret_view in pending:
            entries = tree(self.node_root(node))
            digest = _digest(steps, _normalized(entries, node), secret_view, node) \
                if self.share or self.memo is not None else ""
            key = digest if self.share else node
            if key not in groups and self.memo is not None:
                memo_keys[key] = hashlib.sha256(f"{context}\0{digest}".encode()).hexdigest()
            groups.setdefault(key, []).append((node, steps, entries))
        done: dict[str, _Execution] = {}
        for key, members in groups.items():
            if key in memo_keys:
                recalled = self._recall(memo_keys[key], members[0][0], members[0][2], index)
                if recalled is not None:
                    self.memo_hits += 1
                    done[key] = recalled
        to_run = [key for key in groups if key not in done]
        with ThreadPoolExecutor(max_workers=max(1, min(len(to_run), os.cpu_count() or 1))) as pool:
            executed = list(pool.map(lambda key: self._execute(*groups[key][0], objects_file), to_run))
        self.executions += len(executed)
        for key, execution in zip(to_run, executed, strict=True):
            done[key] = execution
            if key in memo_keys:
                self._store(memo_keys[key], execution, index)
        runs: dict[str, NodeRun] = {}
        for key, members in groups.items():
            first = done[key]
            runs[first.node] = first.run
            for other, other_steps, _entries in members[1:]:
                replayed = self._replay(first, other, index)
                if replayed is None:
                    self.executions += 1
                    replayed = self._execute(other, other_steps, tree(self.node_root(other)), objects_file).run
                runs[other] = replayed
        return [runs[node] for node, _steps, _view in pending]

    # -- one real execution -------------------------------------------------------------------------
    def _path(self) -> str:
        return os.pathsep.join([str(self.stubs), os.path.dirname(sys.executable), os.environ.get("PATH", "")])

    def _execute(self, node: str, steps: list[dict], before: dict, objects_file: Path) -> _Execution:
        root = self.node_root(node)
        calls, commands, reads = (self.workdir / f"{kind}-{node}.run" for kind in ("calls", "commands", "reads"))
        for path in (calls, commands, reads):
            path.unlink(missing_ok=True)
        env = dict(os.environ)
        env.pop(MEMO_ENV, None)
        env.update({
            "D8_REGISTRY_NODE_ROOT": str(root), "D8SIM_OBJECTS": str(objects_file), "D8SIM_CALLS": str(calls),
            "D8SIM_CALLS_LOG": str(commands), "D8SIM_READS": str(reads), "PATH": self._path(),
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
        return _Execution(node, root, before, tree(root), run, read_list, str(self.workdir))

    # -- the step memo ----------------------------------------------------------------------------------
    def _context(self) -> str:
        """What an execution sees besides its steps, root and objects: the stand-in commands' bytes, the
        environment (this run's own paths and pytest's bookkeeping aside), and every program on the
        steps' PATH (resolved target, mode, size, mtime, inode) with the system files they load."""
        hasher = hashlib.sha256(f"d8registry step memo {_MEMO_FORMAT}\0{self.bash}".encode())
        env = {k: v for k, v in os.environ.items()
               if k not in _RUN_PATHS and k not in ("PATH", MEMO_ENV) and not k.startswith("PYTEST_")}
        hasher.update(json.dumps(sorted(env.items())).encode())
        for item in sorted(self.stubs.iterdir()):
            hasher.update(b"\0stub\0" + _identity(str(item)).encode() + b"\0")
            if item.is_file():
                hasher.update(item.read_bytes())
        home = os.environ.get("HOME", "")
        hasher.update(_programs(self._path(), (*_SYSTEM_FILES, os.path.join(home, ".jq") if home else "",
                                               self.bash), self._programs).encode())
        return hasher.hexdigest()

    def _recall(self, key: str, node: str, entries: dict, index: dict) -> _Execution | None:
        """The stored execution for key replayed on this node, or None (then bash runs)."""
        try:
            checksum, _, text = (self.memo / f"{key}.json").read_text().partition("\n")
            if hashlib.sha256(text.encode()).hexdigest() != checksum:
                return None
            stored, seen = _decode_entry(json.loads(text), key)
        except (OSError, ValueError, TypeError, KeyError, AttributeError, IndexError):
            return None
        if _normalized(entries, node) != _normalized(stored.before, stored.node):
            return None
        run = self._replay(stored, node, index, seen=seen, before=entries)
        if run is None:
            return None
        run.executed_on, run.memo = node, True
        old, root = stored.node, self.node_root(node)
        reads = [(kind, namespace, name.replace(old, node)) for kind, namespace, name in stored.reads]
        return _Execution(node, root, entries, tree(root), run, reads, str(self.workdir))

    def _store(self, key: str, execution: _Execution, index: dict) -> None:
        """Kept for later ticks and runs; a memo that cannot be written only means bash runs again."""
        run = execution.run
        entry = {
            "format": _MEMO_FORMAT, "key": key, "node": execution.node, "root": str(execution.root),
            "workdir": execution.workdir, "before": _encode_tree(execution.before),
            "after": _encode_tree(execution.after),
            "run": {"ok": run.ok, "failed_step": run.failed_step, "error": run.error, "calls": run.calls,
                    "commands": run.commands},
            "reads": [[*read, index.get(read)] for read in execution.reads],
        }
        assert self.memo is not None
        tmp = self.memo / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
        text = json.dumps(entry, sort_keys=True)
        try:
            self.memo.mkdir(parents=True, exist_ok=True)
            tmp.write_text(hashlib.sha256(text.encode()).hexdigest() + "\n" + text)
            os.replace(tmp, self.memo / f"{key}.json")
        except OSError:
            tmp.unlink(missing_ok=True)

    # -- sharing ----------------------------------------------------------------------------------------
    def _replay(self, first: _Execution, node: str, index: dict, seen: dict | None = None,
                before: dict | None = None) -> NodeRun | None:
        """The first execution's result on this node's root, or None when its outputs name the first
        node (or its root) in a way a replay cannot carry over (the node then runs its steps itself).
        From the memo (seen: the objects the execution's reads returned then; before: this root's
        entries now), an execution of another run: its outputs must not name its work directory either,
        and a root that does not come out as the stored one is put back and None returned."""
        root = self.node_root(node)
        old_root, old_name = str(first.root), first.node
        # the same node's own execution (from the memo) may name it: its name is this node's name
        foreign = [first.workdir] if seen is not None and first.workdir != str(self.workdir) else []
        names = old_name != node

        def moved(text: str) -> str | None:
            text = text.replace(old_root, str(root))
            if any(path in text.replace(str(root), "") for path in foreign):
                return None
            return None if names and old_name in text.replace(str(root), "") else text

        commands = [moved(line) for line in first.run.commands]
        if None in commands:
            return None
        calls = []
        for call in first.run.calls:
            pairs = json.dumps(call.get("pairs"))
            if call.get("node") != old_name or (names and old_name in pairs) or \
                    any(path in pairs for path in [old_root, *foreign]):
                return None
            calls.append({**call, "node": node})
        for kind, namespace, name in first.reads:
            other = (kind, namespace, name.replace(old_name, node))
            then = (seen if seen is not None else index).get((kind, namespace, name))
            mine = index.get(other)
            if (then is None) != (mine is None):
                return None
            if then is not None and json.dumps(then, sort_keys=True).replace(old_name, node) != \
                    json.dumps(mine, sort_keys=True):
                return None
        changed = {rel: entry for rel, entry in first.after.items() if first.before.get(rel) != entry}
        removed = [rel for rel in first.before if rel not in first.after]
        for rel, entry in changed.items():
            content = b"".join(p if isinstance(p, bytes) else str(p).encode() for p in entry[1:])
            if rel == NAME_FILE or (names and (old_name.encode() in content or old_name in rel)) or \
                    any(path.encode() in content for path in [old_root, *foreign]):
                return None
        error = first.run.error.replace(old_root, str(root))
        if any(path in error for path in foreign):
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
            if before is not None:
                _write_tree(root, before)
                return None
            differ = sorted(rel for rel in set(result) | set(expected) if result.get(rel) != expected.get(rel))
            raise SharedRunMismatch(f"{node}: replaying {first.node}'s node steps left other files: {differ[:5]}")
        run = first.run
        return NodeRun(node=node, ok=run.ok, failed_step=run.failed_step, error=error.replace(old_name, node),
                       calls=calls, commands=commands, executed_on=first.node)


def _programs(path: str, files: tuple[str, ...], known: dict[tuple, str]) -> str:
    """Every entry of every PATH directory and the given files, by _identity. Scanning PATH takes
    tens of milliseconds, so one simulator scans it once and again only when a directory or one of the
    files changed (a package install or upgrade renames files into the directory, rewrites dpkg's status)."""
    directories = path.split(os.pathsep)
    check = tuple(_identity(item) for item in (*directories, *files) if item)
    if check not in known:
        hasher = hashlib.sha256("\0".join(check).encode())
        for directory in directories:
            hasher.update(b"\0dir\0" + directory.encode())
            try:
                names = sorted(os.listdir(directory))
            except OSError:
                continue
            for name in names:
                hasher.update(b"\0" + _identity(os.path.join(directory, name)).encode())
        known[check] = hasher.hexdigest()
    return known[check]


def _identity(path: str) -> str:
    """A program or file as the steps would meet it: where it resolves to and what is there."""
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}\0absent"
    target = os.path.realpath(path) if os.path.islink(path) else ""
    return f"{path}\0{target}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}"


def _encode_tree(entries: dict[str, tuple]) -> dict[str, list]:
    return {rel: [entry[0], entry[1], base64.b64encode(entry[2]).decode()] if entry[0] == "f" else list(entry)
            for rel, entry in entries.items()}


def _decode_tree(encoded: dict) -> dict[str, tuple]:
    entries: dict[str, tuple] = {}
    for rel, entry in encoded.items():
        kind = entry[0]
        if not isinstance(rel, str) or rel.startswith("/") or ".." in rel.split("/"):
            raise ValueError(f"bad path {rel!r}")
        if kind == "d" and len(entry) == 2 and isinstance(entry[1], int):
            entries[rel] = ("d", entry[1])
        elif kind == "l" and len(entry) == 2 and isinstance(entry[1], str):
            entries[rel] = ("l", entry[1])
        elif kind == "f" and len(entry) == 3 and isinstance(entry[1], int):
            entries[rel] = ("f", entry[1], base64.b64decode(entry[2], validate=True))
        else:
            raise ValueError(f"bad entry {rel!r}")
    return entries


def _decode_entry(entry: dict, key: str) -> tuple[_Execution, dict]:
    """A stored execution and the objects its reads returned; ValueError (or a lookup error) when the
    entry is not one this code wrote for this key."""
    if entry.get("format") != _MEMO_FORMAT or entry.get("key") != key:
        raise ValueError("another format or key")
    stored = entry["run"]
    run = NodeRun(node=str(entry["node"]), ok=stored["ok"] is True, failed_step=str(stored["failed_step"]),
                  error=str(stored["error"]), executed_on=str(entry["node"]))
    run.calls = [dict(call) for call in stored["calls"]]
    run.commands = [str(line) for line in stored["commands"]]
    if not all(isinstance(line, str) for line in stored["commands"]):
        raise ValueError("bad commands")
    reads, seen = [], {}
    for kind, namespace, name, obj in entry["reads"]:
        read = (str(kind), str(namespace), str(name))
        reads.append(read)
        seen[read] = obj
    execution = _Execution(run.node, Path(str(entry["root"])), _decode_tree(entry["before"]),
                           _decode_tree(entry["after"]), run, reads, str(entry["workdir"]))
    return execution, seen


def _write_tree(root: Path, entries: dict[str, tuple]) -> None:
    """Put root back to exactly these entries."""
    for item in list(root.iterdir()):
        shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()
    for rel in sorted(entries, key=lambda r: r.count("/")):
        entry, path = entries[rel], root / rel
        if entry[0] == "d":
            path.mkdir()
        elif entry[0] == "l":
            os.symlink(entry[1], path)
        else:
            path.write_bytes(entry[2])
            os.chmod(path, entry[1])
    for rel in sorted((r for r in entries if entries[r][0] == "d"), key=lambda r: -r.count("/")):
        os.chmod(root / rel, entries[rel][1])


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []

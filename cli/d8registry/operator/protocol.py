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
"""Running a hook the way addon-operator does: as a process talking through files named in env vars.

The in-process variant calls the same chained runner the hook's __main__ uses, so tests can pick
speed (in-process) or fidelity (subprocess) without changing what is exercised.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .hook_config import parse_hook_config_output, validate_hook_config
from .memo import clone


class HookConfigError(ValueError):
    """The hook's --config output is not a valid shell-operator v1 configuration."""


class HookFailed(RuntimeError):
    """The hook exited non-zero (addon-operator would retry the module run)."""


@dataclass
class HookResult:
    values_patch: list[dict] = field(default_factory=list)
    kube_operations: list[dict] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)
    logs: list[dict] = field(default_factory=list)
    stderr: str = ""
    stdout: str = ""


def discover_hooks(hooks_dir: Path) -> list[Path]:
    """Executable files addon-operator would run: skips 'lib' dirs, the hooks' venv, hidden files and data files."""
    found = []
    for path in sorted(hooks_dir.rglob("*")):
        rel = path.relative_to(hooks_dir)
        if rel.parts[0] == "venv" or any(part == "lib" or part.startswith(".") or part == "__pycache__"
                                         for part in rel.parts):
            continue
        if not path.is_file() or path.suffix in (".yaml", ".yml", ".json", ".md", ".txt"):
            continue
        if os.access(path, os.X_OK):
            found.append(path)
    return found


def _read_json_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            out.append(json.loads(line))
    return out


def _parse_logs(stderr: str) -> list[dict]:
    records = []
    for line in stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _hook_env(extra_env: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BINDING_CONTEXT", "VALUES_", "CONFIG_VALUES"))}
    # '#!/usr/bin/env python3' must find the interpreter that has the hooks' dependencies,
    # as it does in the Deckhouse image.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(extra_env or {})
    return env


def _module_hooks_dir(hook: Path) -> Path:
    """<module>/hooks for a hook anywhere below it (addon-operator walks that directory for hooks)."""
    for parent in hook.parents:
        if parent.name == "hooks":
            return parent
    return hook.parent


@lru_cache(maxsize=16)
def _warn_system_python(hooks_dir: str) -> None:
    logging.getLogger("d8registry.operator").warning(
        "%s/venv does not exist: Python hooks run on the system python3 (addon-operator warns the same way)", hooks_dir)


def hook_command(hook: Path) -> tuple[list[str], dict[str, str]]:
    """argv and extra env that start a hook as addon-operator does. A *.py hook runs as
    '<module>/hooks/venv/bin/python3 <hook>' with PYTHONHOME=<module>/hooks/venv when that venv exists; otherwise
    the hook is executed itself, its '#!/usr/bin/env python3' finding the system python3, with a warning."""
    hook = Path(hook)
    if hook.suffix != ".py":
        return [str(hook)], {}
    venv = _module_hooks_dir(hook) / "venv"
    if venv.is_dir():
        return [str(venv / "bin" / "python3"), str(hook)], {"PYTHONHOME": str(venv)}
    _warn_system_python(str(_module_hooks_dir(hook)))
    return [str(hook)], {}


@lru_cache(maxsize=64)
def _config_cached(hook: str, content: str) -> str:
    argv, env = hook_command(Path(hook))
    proc = subprocess.run([*argv, "--config"], capture_output=True, text=True, timeout=60,
                          env={**_hook_env(None), **env})
    if proc.returncode != 0:
        raise HookConfigError(f"{hook} --config exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc.stdout


@lru_cache(maxsize=64)
def _validated_config(hook: str, content: str) -> dict:
    """The parsed and validated config of one version (content digest) of a hook file. A refused config
    raises, and lru_cache keeps no exception, so it is refused again on every call; any change to the
    file's content asks the hook again and validates the new answer."""
    text = _config_cached(hook, content)
    name = Path(hook).name
    try:
        config = parse_hook_config_output(text)
    except ValueError as exc:
        raise HookConfigError(f"{name}: {exc}") from exc
    errors = validate_hook_config(config)
    if errors:
        raise HookConfigError(f"{name}: invalid hook config: " + "; ".join(errors))
    return config


def hook_config(hook: Path) -> dict:
    """Ask the hook for its config (as addon-operator does at start) and validate it; each version of the
    hook file is asked and validated once per process, and every caller gets its own copy."""
    content = hashlib.sha256(Path(hook).read_bytes()).hexdigest()
    return clone(_validated_config(str(hook), content))


def hook_configs(hooks: list[Path]) -> dict[Path, dict]:
    """hook_config of each hook, in order. The hooks whose current file was not asked yet are asked
    together, each in its own process as before; then every answer is parsed and validated as in hook_config
    (a failing hook raises there, the first in order first)."""
    from concurrent.futures import ThreadPoolExecutor

    pending = [(str(hook), hashlib.sha256(Path(hook).read_bytes()).hexdigest()) for hook in hooks]

    def ask(key: tuple[str, str]) -> None:
        with contextlib.suppress(Exception):   # hook_config below asks again and reports the failure
            _config_cached(*key)

    if len(pending) > 1:
        with ThreadPoolExecutor(max_workers=min(4, len(pending))) as pool:
            list(pool.map(ask, pending))
    return {hook: hook_config(hook) for hook in hooks}


def run_subprocess(
    hook: Path,
    binding_contexts: list[dict],
    values: dict,
    config_values: dict,
    extra_env: dict[str, str] | None = None,
    timeout: float = 120,
) -> HookResult:
    with tempfile.TemporaryDirectory(prefix="d8registry-hook-") as tmp:
        base = Path(tmp)
        files = {
            "BINDING_CONTEXT_PATH": base / "binding_context.json",
            "VALUES_PATH": base / "values.json",
            "CONFIG_VALUES_PATH": base / "config_values.json",
            "VALUES_JSON_PATCH_PATH": base / "values_patch.jsonl",
            "CONFIG_VALUES_JSON_PATCH_PATH": base / "config_values_patch.jsonl",
            "KUBERNETES_PATCH_PATH": base / "kubernetes.jsonl",
            "METRICS_PATH": base / "metrics.jsonl",
        }
        files["BINDING_CONTEXT_PATH"].write_text(json.dumps(binding_contexts), encoding="utf-8")
        files["VALUES_PATH"].write_text(json.dumps(values), encoding="utf-8")
        files["CONFIG_VALUES_PATH"].write_text(json.dumps(config_values), encoding="utf-8")
        argv, interpreter_env = hook_command(hook)
        env = _hook_env(extra_env)
        env.update(interpreter_env)
        env.update({name: str(path) for name, path in files.items()})
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, cwd=tmp)
        if proc.returncode != 0:
            raise HookFailed(f"{hook.name} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
        return HookResult(
            values_patch=_read_json_lines(files["VALUES_JSON_PATCH_PATH"]),
            kube_operations=_read_json_lines(files["KUBERNETES_PATCH_PATH"]),
            metrics=_read_json_lines(files["METRICS_PATH"]),
            logs=_parse_logs(proc.stderr),
            stderr=proc.stderr,
            stdout=proc.stdout,
        )


@lru_cache(maxsize=64)
def _hook_code(path: str, source: bytes):
    """A hook's source compiled as the import system compiles it, once per path and content; each run still
    executes the module afresh, this only skips compiling the same source again (with bytecode writing
    off, as under PYTHONDONTWRITEBYTECODE, the import system would compile it on every load)."""
    return compile(source, path, "exec", dont_inherit=True)


def load_hook_module(hook: Path):
    """Import a hook file as a new module (its __main__ guard keeps it from running)."""
    hook = Path(hook)
    hooks_root = str(hook.parent)
    if hooks_root not in sys.path:
        sys.path.insert(0, hooks_root)
    name = "d8registry_hook_" + hook.stem
    spec = importlib.util.spec_from_file_location(name, hook)
    module = importlib.util.module_from_spec(spec)
    exec(_hook_code(str(hook), hook.read_bytes()), module.__dict__)  # noqa: S102 - the hook's own code
    return module


@contextlib.contextmanager
def _environment(extra_env: dict[str, str] | None):
    saved = {name: os.environ.get(name) for name in (extra_env or {})}
    os.environ.update(extra_env or {})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_in_process(
    hook: Path,
    binding_contexts: list[dict],
    values: dict,
    config_values: dict,
    extra_env: dict[str, str] | None = None,
) -> HookResult:
    module = load_hook_module(hook)
    from lib import runner  # the hooks' own chained runner, found via the hooks dir on sys.path

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), _environment(extra_env):
        try:
            output = runner.execute(module.main, binding_contexts, values, config_values)
        except Exception as exc:  # mirrors a non-zero exit of the subprocess variant
            raise HookFailed(f"{hook.name} raised {type(exc).__name__}: {exc}") from exc
    return HookResult(
        values_patch=list(output.values_patches.data),
        kube_operations=list(output.kube_operations.data),
        metrics=list(output.metrics.data),
        logs=_parse_logs(stderr.getvalue()),
        stderr=stderr.getvalue(),
    )

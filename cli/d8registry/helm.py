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
"""Rendering the chart with the real Helm v3 CLI from the module's tools dir."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import subprocess
import tempfile
from collections import OrderedDict
from pathlib import Path

import yaml

from .operator.memo import clone, digest

API_VERSIONS = ("admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy",)


class HelmError(RuntimeError):
    pass


CHECKOUT = Path(__file__).resolve().parents[2]


def helm_binary(module_dir: Path) -> Path:
    override = os.environ.get("D8REGISTRY_HELM")
    path = Path(override) if override else Path(module_dir) / ".tools" / "bin" / "helm"
    if not override and not path.exists():  # a bundle tree has no tools: use the checkout's
        path = CHECKOUT / ".tools" / "bin" / "helm"
    if not path.exists():
        raise HelmError(f"Helm v3 CLI not found at {path}; run 'make tools'")
    return path


def _ignored_at_top(module_dir: Path) -> list[str]:
    """The .helmignore patterns that name a top-level entry (no slash); helm leaves those out of the chart."""
    path = module_dir / ".helmignore"
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines())
    return [line for line in lines if line and not line.startswith(("#", "!")) and "/" not in line]


def chart_digest(module_dir: Path) -> str:
    """A digest of every file helm may read from the chart: all files under module_dir but the top-level
    entries .helmignore leaves out (a superset of what helm packages, so any change to the chart changes it)."""
    module_dir = Path(module_dir)
    ignored = _ignored_at_top(module_dir)
    sha = hashlib.sha256()
    for top in sorted(module_dir.iterdir()):
        if any(fnmatch.fnmatchcase(top.name, pattern) for pattern in ignored):
            continue
        files = [top] if not top.is_dir() else sorted(
            Path(root) / name for root, _dirs, names in os.walk(top, followlinks=True) for name in names)
        for path in files:
            sha.update(str(path.relative_to(module_dir)).encode() + b"\0")
            try:
                sha.update(path.read_bytes())
            except OSError as exc:   # a dangling link or unreadable file: its state is part of the key
                sha.update(repr(exc).encode())
            sha.update(b"\0")
    return sha.hexdigest()


_RENDERED: OrderedDict[tuple, list[dict]] = OrderedDict()
_RENDERED_MAX = 64


def render(module_dir: Path, values: dict, api_versions: tuple[str, ...] = API_VERSIONS) -> list[dict]:
    """helm template the chart and return the rendered objects (empty documents dropped). The chart renders
    deterministically (tests/templates/test_chart_determinism.py), so the same chart content, Helm binary,
    API versions and values give the objects this process already rendered, as a copy of its own."""
    module_dir = Path(module_dir)
    binary = helm_binary(module_dir)
    content = digest(values)
    key = None
    if content is not None:
        stat = binary.stat()
        key = (str(module_dir.resolve()), str(binary), stat.st_mtime_ns, stat.st_size, chart_digest(module_dir),
               tuple(api_versions), content)
        if key in _RENDERED:
            _RENDERED.move_to_end(key)
            return clone(_RENDERED[key])
    objects = _helm_template(binary, module_dir, values, api_versions)
    if key is not None:
        _RENDERED[key] = clone(objects)
        if len(_RENDERED) > _RENDERED_MAX:
            _RENDERED.popitem(last=False)
    return objects


def _helm_template(binary: Path, module_dir: Path, values: dict, api_versions: tuple[str, ...]) -> list[dict]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(values, handle)
        values_file = handle.name
    try:
        command = [str(binary), "template", "registry", str(module_dir),
                   "--namespace", "d8-system", "-f", values_file]
        for api in api_versions:
            command += ["--api-versions", api]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    finally:
        os.unlink(values_file)
    if proc.returncode != 0:
        raise HelmError(proc.stderr.strip())
    # libyaml's loader: the same documents, an order of magnitude faster than the pure-Python one
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [doc for doc in yaml.load_all(proc.stdout, Loader=loader) if doc]

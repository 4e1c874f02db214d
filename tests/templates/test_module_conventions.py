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
"""Module-level conventions Deckhouse's linter (dmt) enforces, checked on the tree.

dmt itself runs in test_dmt_lint when it could be built (see the Makefile's tools target); these
checks cover the rules the module relies on either way.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

CYRILLIC = re.compile("[\u0400-\u04ff]")
CAMEL_CASE = re.compile(r"^[A-Z][A-Za-z0-9]*$")


def _tracked_files(repo_root: Path) -> list[Path]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=repo_root,
                         capture_output=True, text=True, check=True).stdout
    return [repo_root / line for line in out.splitlines() if line and (repo_root / line).is_file()]


def test_module_yaml_identity(repo_root):
    module = yaml.safe_load((repo_root / "module.yaml").read_text())
    assert module["name"] == "registry" and module["namespace"] == "d8-system"
    assert module["weight"] == 38 and module["critical"] is True and module["stage"] == "Preview"
    assert set(module["descriptions"]) == {"en", "ru"}
    assert module["disable"]["confirmation"] is True
    assert (repo_root / ".namespace").read_text().strip() == "d8-system"
    chart = yaml.safe_load((repo_root / "Chart.yaml").read_text())
    assert chart == {"apiVersion": "v2", "name": "registry", "version": "0.0.1"}


def test_license_header_on_every_python_and_shell_file(repo_root):
    missing = []
    for path in _tracked_files(repo_root):
        if path.suffix in (".py", ".sh") and path.stat().st_size > 0:
            head = path.read_text(encoding="utf-8")[:600]
            if "Licensed under the Apache License, Version 2.0" not in head or "Copyright" not in head:
                missing.append(str(path.relative_to(repo_root)))
    assert not missing, f"license header missing in: {missing}"


def test_no_cyrillic_outside_russian_docs(repo_root):
    offenders = []
    for path in _tracked_files(repo_root):
        name = path.name
        if name.startswith("doc-ru-") or name.endswith(".ru.md") or path.suffix in (".png", ".jpg"):
            continue
        if name == "module.yaml":
            # descriptions.ru is the one place the module identity carries Russian text
            text = "\n".join(line for line in path.read_text().splitlines() if not line.strip().startswith("ru:"))
        else:
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
        if CYRILLIC.search(text):
            offenders.append(str(path.relative_to(repo_root)))
    assert not offenders, f"Cyrillic text outside doc-ru/.ru.md files: {offenders}"


def _enums(schema, path="") -> list[tuple[str, list]]:
    found = []
    if isinstance(schema, dict):
        if "enum" in schema:
            found.append((path, schema["enum"]))
        for key, value in schema.items():
            found += _enums(value, f"{path}.{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            found += _enums(value, f"{path}[{index}]")
    return found


@pytest.mark.parametrize("name", ["config-values.yaml", "registry-settings.yaml"])
def test_user_facing_enums_are_camel_case(repo_root, name):
    schema = yaml.safe_load((repo_root / "openapi" / name).read_text())
    for path, values in _enums(schema):
        for value in values:
            assert isinstance(value, str) and CAMEL_CASE.match(value), f"{name}{path}: enum value {value!r}"


def _property_paths(schema, prefix="") -> set[str]:
    paths = set()
    if isinstance(schema, dict):
        for name, sub in (schema.get("properties") or {}).items():
            paths.add(prefix + name)
            paths |= _property_paths(sub, prefix + name + ".")
        if isinstance(schema.get("items"), dict):
            paths |= _property_paths(schema["items"], prefix)
    return paths


@pytest.mark.parametrize("name", ["config-values.yaml", "registry-settings.yaml"])
def test_russian_doc_twin_covers_every_property(repo_root, name):
    schema = yaml.safe_load((repo_root / "openapi" / name).read_text())
    twin = yaml.safe_load((repo_root / "openapi" / f"doc-ru-{name}").read_text())
    assert _property_paths(schema) == _property_paths(twin)


def test_oss_yaml_lists_data_plane_components(repo_root):
    entries = yaml.safe_load((repo_root / "oss.yaml").read_text())
    names = " ".join(e["name"].lower() for e in entries)
    for component in ("distribution", "nginx", "regclient", "busybox"):
        assert component in names
    for entry in entries:
        assert {"name", "link", "license"} <= set(entry)


def test_helmignore_keeps_only_the_chart(repo_root):
    ignored = {line.strip() for line in (repo_root / ".helmignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for entry in ("docs", "hooks", "images", "openapi", "tests", "cli", ".tools", ".ci", "*.md",
                  "requirements*.txt", "pyproject.toml", "Makefile"):
        assert entry in ignored
    for kept in ("files", "monitoring", "templates"):
        assert kept not in ignored


def test_hooks_are_executable_and_lib_is_not(repo_root):
    for path in (repo_root / "hooks").glob("*.py"):
        assert os.stat(path).st_mode & stat.S_IXUSR, f"{path.name} must be executable"
        assert path.read_text().startswith("#!/usr/bin/env python3\n")
    for path in (repo_root / "hooks" / "lib").rglob("*.py"):
        assert not os.stat(path).st_mode & stat.S_IXUSR, f"{path.relative_to(repo_root)} must not be executable"


def test_images_only_through_the_digest_helper(repo_root):
    for path in (repo_root / "templates").rglob("*.yaml"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.match(r"^\s*image:\s", line):
                assert "helm_lib_module_image" in line, f"{path.name}:{number}: {line.strip()}"


def test_dmt_lint(repo_root):
    dmt = repo_root / ".tools" / "bin" / "dmt"
    if not dmt.exists():
        pytest.skip("dmt is not available: the Go module proxy refuses github.com/deckhouse/dmt (see README)")
    proc = subprocess.run([str(dmt), "lint", "."], cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr

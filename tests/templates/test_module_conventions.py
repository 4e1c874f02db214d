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

import fnmatch
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


def _is_script(path: Path) -> bool:
    """Sources dmt's license rule looks at: Python, shell (also the node step bodies kept as .sh.tpl) and any
    file that starts with a shebang (`.ci/run` has no extension)."""
    if path.suffix in (".py", ".sh", ".go") or path.name.endswith(".sh.tpl"):
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(2) == b"#!"
    except OSError:
        return False


def test_license_header_on_every_script(repo_root):
    missing = []
    for path in _tracked_files(repo_root):
        if _is_script(path) and path.stat().st_size > 0:
            head = path.read_text(encoding="utf-8")[:800]
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


def _enum_value_problem(value) -> str | None:
    """dmt's enum rule: a string value is empty or starts with a capital letter (when it starts with a letter) and
    holds only letters and digits (a dot only right after a digit); non-strings are not checked."""
    if not isinstance(value, str) or value == "":
        return None
    if value[0].isalpha() and not value[0].isupper():
        return "must start with a capital letter"
    for index, char in enumerate(value):
        if char.isalpha() or char.isdigit():
            continue
        if char == "." and index > 0 and value[index - 1].isdigit():
            continue
        return "must be CamelCase (letters and digits only)"
    return None


def _openapi_files(repo_root: Path) -> list[Path]:
    return sorted((repo_root / "openapi").glob("*.yaml"))


def test_every_openapi_file_is_checked(repo_root):
    names = {path.name for path in _openapi_files(repo_root)}
    assert {"config-values.yaml", "values.yaml", "registry-settings.yaml"} <= names


def test_enums_in_every_openapi_file_are_camel_case(repo_root):
    """Every enum of every schema, the internal values included (dmt reports them as errors)."""
    bad = []
    for path in _openapi_files(repo_root):
        for where, values in _enums(yaml.safe_load(path.read_text())):
            for value in values:
                problem = _enum_value_problem(value)
                if problem:
                    bad.append(f"{path.name}{where}: {value!r} {problem}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("value, ok", [("Final", True), ("InClusterProxy", True), ("", True), ("True", True),
                                       ("1.5", True), ("none", False), ("incluster-proxy", False),
                                       ("Node-Services", False), ("A_B", False)])
def test_enum_rule_itself(value, ok):
    assert (_enum_value_problem(value) is None) is ok


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


def test_oss_yaml_entries_have_unique_ids(repo_root):
    entries = yaml.safe_load((repo_root / "oss.yaml").read_text())
    ids = [entry.get("id") for entry in entries]
    assert all(isinstance(value, str) and re.fullmatch(r"[a-z0-9][a-z0-9-]*", value) for value in ids), ids
    assert len(set(ids)) == len(ids), ids


# What dmt counts as chart content; everything else at the module root must be in .helmignore.
CHART_CONTENT = {"templates", "charts", "monitoring", "Chart.yaml", "values.yaml", ".helmignore"}


def _helmignore_patterns(repo_root: Path) -> list[str]:
    return [line.strip().rstrip("/") for line in (repo_root / ".helmignore").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_helmignore_covers_everything_but_the_chart(repo_root):
    patterns = _helmignore_patterns(repo_root)
    tops = {path.relative_to(repo_root).parts[0] for path in _tracked_files(repo_root)}
    uncovered = sorted(top for top in tops - CHART_CONTENT
                       if not any(fnmatch.fnmatchcase(top, pattern) for pattern in patterns))
    assert not uncovered, f".helmignore does not cover: {uncovered}"
    kept = sorted(top for top in CHART_CONTENT if any(fnmatch.fnmatchcase(top, p) for p in patterns))
    assert not kept, f".helmignore drops chart content: {kept}"


def test_chart_reads_no_file_outside_chart_content(repo_root):
    """A template may only .Files.Get what the chart ships: with .helmignore complete, anything else is empty."""
    for path in (repo_root / "templates").rglob("*"):
        if path.is_file():
            for match in re.finditer(r'\.Files\.(?:Get|Glob)\s+"([^"]+)"', path.read_text()):
                top = match.group(1).split("/")[0]
                assert top in CHART_CONTENT, f"{path.relative_to(repo_root)} reads {match.group(1)}"


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


def test_monitoring_folder_comes_with_its_template(repo_root):
    """dmt: a module with monitoring/prometheus-rules or monitoring/grafana-dashboards renders them from
    templates/monitoring.yaml through the lib-helm helpers."""
    template = repo_root / "templates" / "monitoring.yaml"
    helpers = {"prometheus-rules": "helm_lib_prometheus_rules",
               "grafana-dashboards": "helm_lib_grafana_dashboard_definitions"}
    for folder, helper in helpers.items():
        if (repo_root / "monitoring" / folder).is_dir():
            assert template.is_file(), f"monitoring/{folder} needs templates/monitoring.yaml"
            assert f'include "{helper}"' in template.read_text(), f"templates/monitoring.yaml must use {helper}"


def test_every_template_renders_with_schema_derived_values(repo_root, helm_bin):
    """The values dmt derives from the schemas and their x-examples render the whole chart: no template is
    skipped, and every object is valid."""
    from d8registry import helm

    from .conftest import validate_object
    from .schema_values import module_values

    try:
        objects = helm.render(repo_root, module_values(repo_root))
    except helm.HelmError as exc:
        pytest.fail(f"the chart does not render with schema-derived values: {exc}")
    for obj in objects:
        validate_object(obj)
    kinds = {obj["kind"] for obj in objects}
    assert "NodeGroupConfiguration" in kinds

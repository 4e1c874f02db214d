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
"""The werf configuration that builds the bundle, checked statically (no werf and no container engine here): every
image a stage builds from exists, every define it includes is there, every file and variable it reads is allowed."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
STAGES = REPO / ".werf" / "stages"
sys.path.insert(0, str(REPO / "tools"))
import build_bundle  # noqa: E402

BUILD_FILES = sorted(REPO.glob("images/*/werf.inc.yaml")) + sorted(STAGES.glob("*.yaml"))


def _all_text() -> str:
    return "\n".join(p.read_text() for p in [REPO / "werf.yaml", *BUILD_FILES])


def _base_images() -> list[str]:
    text = (STAGES / "base-images.yaml").read_text()
    return re.findall(r'"((?:builder|common)/[\w-]+)"', re.search(r"range \$name := list ([^}]+)", text).group(1))


def test_every_stage_is_rendered_by_werf_yaml():
    root = (REPO / "werf.yaml").read_text()
    used = set(re.findall(r'\.Files\.Get "(\.werf/stages/[\w-]+\.yaml)"', root))
    assert used == {str(p.relative_to(REPO)) for p in STAGES.glob("*.yaml")}
    head = yaml.safe_load(root.split("\n---", 1)[0])
    assert head["project"] == "registry" and head["configVersion"] == 1


def test_every_from_image_is_a_base_image_or_an_image_built_here():
    bases = set(_base_images())
    assert bases == {k for k in yaml.safe_load((REPO / "base_images.yml.example").read_text()) if k != "REGISTRY_PATH"}
    for path in BUILD_FILES:
        for ref in re.findall(r"^\s*fromImage:\s*(\S+)", path.read_text(), re.M):
            ref = ref.strip("\"'")
            assert ref in bases or ref.startswith("{{"), f"{path.relative_to(REPO)}: fromImage {ref} is not built"
    built = set()
    for path in sorted(REPO.glob("images/*/werf.inc.yaml")):
        for name in re.findall(r'^image: "\{\{ \$\.ModuleName \}\}/\{\{ \$\.ImageName \}\}([\w-]*)"', path.read_text(), re.M):
            built.add(f"registry/{path.parent.name}{name}")
    for path in sorted(REPO.glob("images/*/werf.inc.yaml")):
        for ref in re.findall(r'- image: "\{\{ \$\.ModuleName \}\}/([\w-]+)"', path.read_text()):
            assert f"registry/{ref}" in built, f"{path.relative_to(REPO)} imports registry/{ref}, which no file builds"


def test_every_included_define_exists():
    defined = set()
    for tmpl in (REPO / ".werf").rglob("*.tmpl"):
        defined.update(re.findall(r'define "([^"]+)"', tmpl.read_text()))
    included = set(re.findall(r'include "([^"]+)"', _all_text()))
    assert included and included <= defined, included - defined


def test_only_allowed_environment_variables_and_files_are_read():
    giterminism = yaml.safe_load((REPO / "werf-giterminism.yaml").read_text())["config"]["goTemplateRendering"]
    used = set(re.findall(r'env "(\w+)"', _all_text()))
    assert used and used <= set(giterminism["allowEnvVariables"]), used - set(giterminism["allowEnvVariables"])
    for name in re.findall(r'\.Files\.Get "([^"]+)"', _all_text()):
        assert (REPO / name).is_file() or name in giterminism["allowUncommittedFiles"], name


def test_bundle_stage_is_plain_yaml_with_the_module_files():
    text = (STAGES / "bundle.yaml").read_text()
    assert "{{" not in text
    [bundle] = [d for d in yaml.safe_load_all(text) if d]
    assert bundle["image"] == "bundle"
    include = set(bundle["git"][0]["includePaths"])
    assert {"module.yaml", "Chart.yaml", "openapi", "templates", "hooks", "monitoring", "docs/*.md"} <= include
    imported = {i["image"] for i in bundle["import"]}
    assert imported == {"images-digests-and-version", "python-dependencies"}
    stages = _all_text()
    for image in imported:
        assert re.search(rf"^image: {image}$", stages, re.M), image


def werf_python_versions() -> tuple[str, ...]:
    versions = re.search(r'"HooksPythonVersions" \(list ([^)]+)\)', (REPO / "werf.yaml").read_text()).group(1)
    return tuple(re.findall(r'"(3\.\d+)"', versions))


def test_python_stage_builds_the_runtime_with_the_script_make_bundle_runs():
    text = (STAGES / "python-deps.yaml").read_text()
    assert "tools/build_bundle.py runtime /bundle --python-version" in text
    assert "requirements.txt" in text and "HooksPythonVersions" in text
    assert werf_python_versions() and "3.12" in werf_python_versions()


@pytest.mark.parametrize("version", werf_python_versions())
def test_the_pinned_requirements_build_for_every_python_the_image_carries(version, tmp_path):
    """What the werf stage runs for each version: every pin has a wheel for it, nothing needed is missing, and every
    compiled module is built for that version (or the stable ABI)."""
    target = build_bundle.build_runtime(tmp_path, version)
    tag = "cpython-" + version.replace(".", "")
    for module in target.rglob("*.so"):
        assert module.name.endswith(".abi3.so") or tag in module.name, module.relative_to(target)
    assert (target / "deckhouse").is_dir() and (target / "cryptography").is_dir()

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
"""`make bundle`: the tree the bundle image holds, hooks that run on nothing but it, Helm that sees the same chart."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from d8registry import cluster as cluster_mod
from d8registry import helm
from d8registry.operator import bindings, protocol
from d8registry.operator.hook_config import validate_hook_config
from d8registry.operator.module import ModuleHarness

from .conftest import ISOLATED, PYTHON_VERSION, REPO

sys.path.insert(0, str(REPO / "tools"))
import build_bundle  # noqa: E402

PROXY = {"mode": "Proxy", "proxy": {"imagesRepo": "mirror.example.com:5000/d8/ee", "username": "u", "password": "p4ss"}}
DEV_ONLY = {"pytest", "pytest-benchmark", "hypothesis", "jq", "jsonpatch", "kubernetes-validate", "cel-python", "ruff"}


def _top_level(module: Path) -> set[str]:
    return {p.name for p in module.iterdir()}


def _imports(path: Path) -> set[str]:
    """Top-level names of every import in a file, lazy ones inside functions included."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _hook_modules(module: Path) -> set[str]:
    hooks = module / "hooks"
    own = {p.stem for p in hooks.glob("*.py")} | {"lib"} | {p.stem for p in (hooks / "lib").glob("*.py")}
    names = set().union(*(_imports(p) for p in hooks.rglob("*.py") if "venv" not in p.parts))
    # _sha2 is CPython's built-in SHA-2 module from Python 3.12 on (lib/hashing.py); the bundle targets 3.12+.
    stdlib = sys.stdlib_module_names | {"_sha2"}
    return {n for n in names if n not in stdlib and n not in own}


# -- the tree ----------------------------------------------------------------------------------------------------------

def test_the_tree_holds_what_the_bundle_image_holds_and_nothing_of_the_checkout(bundle):
    assert _top_level(bundle) == {".helmignore", ".namespace", "Chart.yaml", "module.yaml", "docs", "hooks",
                                  "monitoring", "openapi", "templates", "images_digests.json", "version.json", "lib"}
    assert _top_level(bundle / "lib" / "python") == {PYTHON_VERSION}
    for rel in build_bundle.bundle_files(REPO):
        assert (bundle / rel).read_bytes() == (REPO / rel).read_bytes(), rel
    # addon-operator runs only executable hooks
    for hook in (REPO / "hooks").glob("*.py"):
        assert os.access(bundle / "hooks" / hook.name, os.X_OK), hook.name
    # no console scripts with the build interpreter in their shebang, no byte code of the build
    runtime = bundle / "lib" / "python" / PYTHON_VERSION
    assert not (runtime / "bin").exists()
    assert not list(bundle.rglob("__pycache__"))
    # the runtime goes ahead of the standard library on sys.path, so none of it may take a standard module's name
    tops = {p.name.split(".")[0] for p in runtime.iterdir() if not p.name.endswith((".dist-info", ".pth"))}
    assert tops and not tops & set(sys.stdlib_module_names), tops & set(sys.stdlib_module_names)


def test_images_digests_name_every_image_the_chart_uses(bundle):
    digests = json.loads((bundle / "images_digests.json").read_text())
    assert set(digests) == {build_bundle.camel(p.name) for p in (REPO / "images").iterdir() if p.is_dir()}
    used = set()
    for template in (REPO / "templates").rglob("*"):
        if template.is_file():
            used.update(re.findall(r'helm_lib_module_image(?:_no_fail)?" \(list \$?\.? ?"(\w+)"', template.read_text()))
    assert used and used <= set(digests), used - set(digests)
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", d) for d in digests.values())
    assert json.loads((bundle / "version.json").read_text()) == {"version": "dev"}


def test_the_local_tree_follows_the_werf_bundle_stage():
    include, exclude = build_bundle.bundle_git_rules()
    assert "hooks" in include and "templates" in include
    files = build_bundle.bundle_files(REPO)
    assert "templates/_helm_lib.tpl" in files and "templates/node/_lib.sh.tpl" in files and "docs/README.md" in files
    assert not [f for f in files if f.split("/")[0] in {"tests", "cli", "bench", "tools", "images", ".ci"}]
    # the werf stage imports exactly what the script writes
    stage = (REPO / ".werf" / "stages" / "bundle.yaml").read_text()
    assert "add: /bundle/lib/python" in stage and "to: /lib/python" in stage
    assert "images_digests.json" in stage and "version.json" in stage


# -- requirements ------------------------------------------------------------------------------------------------------

def test_requirements_hold_what_the_hooks_import_and_no_dev_tool(bundle):
    runtime = bundle / "lib" / "python" / PYTHON_VERSION
    from importlib import metadata

    provided = {}
    for dist in metadata.distributions(path=[str(runtime)]):
        for line in (dist.read_text("RECORD") or "").splitlines():
            top = line.split(",", 1)[0].split("/", 1)[0]
            provided[top.removesuffix(".py")] = build_bundle._normalize(dist.metadata["Name"])
    pinned = {build_bundle._normalize(n) for n in build_bundle._requirement_names(REPO / "requirements.txt")}
    imported = _hook_modules(REPO)
    assert imported >= {"deckhouse", "yaml", "jsonschema", "cryptography", "bcrypt", "tomli_w"}
    missing = {name for name in imported if provided.get(name) not in pinned}
    assert not missing, f"hooks import {missing}, which requirements.txt does not pin"
    assert not pinned & {build_bundle._normalize(n) for n in DEV_ONLY}


def test_the_build_refuses_a_requirements_file_that_misses_a_needed_package(tmp_path):
    lines = (REPO / "requirements.txt").read_text().splitlines()
    partial = tmp_path / "requirements.txt"
    partial.write_text("\n".join(line for line in lines if not line.startswith("attrs==")) + "\n")
    with pytest.raises(build_bundle.BundleError, match=r"jsonschema needs attrs"):
        build_bundle.build_runtime(tmp_path / "out", PYTHON_VERSION, requirements=partial)


# -- hooks run on nothing but the bundle -------------------------------------------------------------------------------

def test_every_hook_import_resolves_in_the_isolated_interpreter(bundle):
    """Lazy imports included: each third-party name the hooks import comes from the bundle's own runtime."""
    names = sorted(_hook_modules(bundle))
    script = ("import importlib, sys\n"
              "sys.path.insert(0, sys.argv[1])\n"
              "import lib\n"
              "for name in sys.argv[2:]:\n"
              "    print(name, importlib.import_module(name).__file__)\n")
    proc = subprocess.run([*ISOLATED, "-c", script, str(bundle / "hooks"), *names],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    runtime = str(bundle / "lib" / "python" / PYTHON_VERSION)
    found = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert set(found) == set(names)
    assert all(path.startswith(runtime) for path in found.values()), found


def test_hooks_run_from_the_bundle_through_the_venv_rule(isolated_bundle):
    """--config of every hook, then a module run on a Proxy switch (PKI, bcrypt users, hosts.toml) and a checker
    schedule run, all on the isolated interpreter; Helm renders the same objects from the bundle as from the
    checkout."""
    record = isolated_bundle.parent / "registry-pythonhome.log"
    cluster = cluster_mod.load().with_registry_settings(PROXY)
    harness = ModuleHarness(isolated_bundle, cluster.objects, cluster.globals,
                            env={"REGISTRY_FAKE_NOW": "2026-11-27T10:00:00Z"})
    hooks = harness.hooks()
    assert {h.name for h in hooks} == {p.name for p in (REPO / "hooks").glob("*.py")}
    for hook in hooks:
        assert validate_hook_config(protocol.hook_config(hook)) == []
    harness.synchronize()
    harness.before_helm()
    checker = harness.module_values["internal"]["checker"]
    checker["state"] = {"version": checker["params"]["version"], "ready": True, "message": "Mode: Default"}
    harness.before_helm()
    loop = harness.hook("checker_loop")
    harness.run(loop, [bindings.schedule_context(harness.config(loop), "checker", cluster.objects)])
    ran = {name for name, _result in harness.results}
    assert ran == {h.name for h in hooks}
    assert harness.module_values["internal"]["orchestrator"]["state"]
    # every start went through hooks/venv with PYTHONHOME set to it, as addon-operator does
    homes = record.read_text().split()
    assert homes and set(homes) == {str(isolated_bundle / "hooks" / "venv")}

    values = harness.helm_values()
    from_bundle = helm.render(isolated_bundle, values)
    assert from_bundle == helm.render(REPO, values)
    kinds = {obj["kind"] for obj in from_bundle}
    assert {"NodeGroupConfiguration", "Secret"} <= kinds


def test_a_dependency_left_out_of_the_bundle_fails_the_hook(isolated_bundle):
    shutil.rmtree(isolated_bundle / "lib" / "python" / PYTHON_VERSION / "deckhouse")
    hook = isolated_bundle / "hooks" / "orchestrator.py"
    with pytest.raises(protocol.HookConfigError, match=r"No module named 'deckhouse'"):
        protocol.hook_config(hook)


def test_a_bundle_without_a_runtime_for_this_python_says_so(isolated_bundle):
    runtime = isolated_bundle / "lib" / "python"
    (runtime / PYTHON_VERSION).rename(runtime / "3.99")
    hook = isolated_bundle / "hooks" / "checker_loop.py"
    with pytest.raises(protocol.HookConfigError, match=rf"no hook runtime for Python {PYTHON_VERSION}.*it has: 3\.99"):
        protocol.hook_config(hook)


# -- Helm sees the same chart ------------------------------------------------------------------------------------------

def _helm_files(helm_bin: str, chart: Path, out: Path) -> dict[str, str]:
    out.mkdir()
    proc = subprocess.run([helm_bin, "package", str(chart), "-d", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    [archive] = out.glob("*.tgz")
    with tarfile.open(archive) as tar:
        return {m.name.split("/", 1)[1]: hashlib.sha256(tar.extractfile(m).read()).hexdigest()
                for m in tar.getmembers() if m.isfile()}


def test_helm_loads_the_same_files_from_the_bundle_and_the_checkout(bundle, helm_bin, tmp_path):
    """Everything .helmignore leaves out of the chart is out of it in the bundle too (hooks, openapi, docs, the
    Python runtime, images_digests.json), and Helm reads every chart file, the node step bodies templates/node/_*.sh.tpl included, from both."""
    from_bundle = _helm_files(helm_bin, bundle, tmp_path / "bundle")
    assert from_bundle == _helm_files(helm_bin, REPO, tmp_path / "checkout")
    assert "templates/node/_containerd.sh.tpl" in from_bundle and "templates/_helm_lib.tpl" in from_bundle
    assert not [name for name in from_bundle if name.split("/")[0] in {"hooks", "lib", "openapi", "docs"}]

#!/usr/bin/env python3
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
"""Assemble the module bundle (what `<registry>/modules/registry:<semver>` holds) without werf.

  build_bundle.py tree OUT        the module's files, chosen by the git includePaths of .werf/stages/bundle.yaml,
                                  plus images_digests.json and version.json
  build_bundle.py runtime OUT     the hooks' Python dependencies for one interpreter, OUT/lib/python/<X.Y>/
  build_bundle.py all OUT         both (what `make bundle` runs)

The werf stage `python-dependencies` runs the same `runtime` command, once per supported Python version, so the tree
built here holds the hooks' runtime byte for byte as the image does (for the local interpreter's version).
Only the standard library and pip are needed, so the werf builder image needs nothing else.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUNDLE_STAGE = REPO / ".werf" / "stages" / "bundle.yaml"
# manylinux2014 = glibc 2.17, manylinux_2_28 = glibc 2.28: the controller's glibc must be at least the newer one.
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
# Console scripts carry the build interpreter's path in their shebang and are never run by hooks.
DROPPED = ("bin",)


class BundleError(RuntimeError):
    pass


# -- the file tree ---------------------------------------------------------------------------------------------------

def bundle_git_rules(stage: Path = BUNDLE_STAGE) -> tuple[list[str], list[str]]:
    """includePaths/excludePaths of the bundle image's `git` entry (kept template-free so it can be read here)."""
    include: list[str] = []
    exclude: list[str] = []
    section = None
    for raw in stage.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].rstrip()
        key = line.strip()
        if key in ("includePaths:", "excludePaths:"):
            section = include if key == "includePaths:" else exclude
            continue
        if section is not None and key.startswith("- "):
            section.append(key[2:].strip().strip("'\""))
            continue
        if key:
            section = None
    if not include:
        raise BundleError(f"{stage}: no includePaths in the bundle's git entry")
    return include, exclude


def _matches(rel: str, pattern: str) -> bool:
    """werf path rules: a pattern names a file, or a directory with everything below it; '*' stays in one level."""
    parts, pattern_parts = rel.split("/"), pattern.strip("/").split("/")
    if len(parts) < len(pattern_parts):
        return False
    return all(fnmatch.fnmatchcase(part, pat) for part, pat in zip(parts, pattern_parts, strict=False))


def _git_files(repo: Path) -> list[str]:
    """Files werf would see: tracked and not deleted, plus new untracked files that .gitignore lets through."""
    proc = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                          capture_output=True, check=True)
    return sorted({name for name in proc.stdout.decode().split("\0") if name and (repo / name).is_file()})


def bundle_files(repo: Path = REPO) -> list[str]:
    include, exclude = bundle_git_rules(repo / ".werf" / "stages" / "bundle.yaml")
    chosen = []
    for rel in _git_files(repo):
        if any(_matches(rel, p) for p in include) and not any(_matches(rel, p) for p in exclude):
            chosen.append(rel)
    return chosen


def camel(name: str) -> str:
    """Image dir to values key, as the images-digests stage does it: registry-nginx -> registryNginx."""
    head, *rest = re.split(r"[-_]", name)
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def local_images_digests(repo: Path = REPO) -> dict[str, str]:
    """Without werf no image is built here: each digest stands in as the sha256 of the image's build file, so the
    keys are exactly those the werf stage writes and a changed build file changes its digest."""
    digests = {}
    for build_file in sorted(repo.glob("images/*/werf.inc.yaml")):
        digests[camel(build_file.parent.name)] = "sha256:" + hashlib.sha256(build_file.read_bytes()).hexdigest()
    return digests


def build_tree(out: Path, repo: Path = REPO) -> list[str]:
    files = bundle_files(repo)
    for rel in files:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / rel, target)  # keeps the hooks' executable bit, which addon-operator needs
    (out / "images_digests.json").write_text(json.dumps(local_images_digests(repo), indent=2) + "\n", encoding="utf-8")
    version = os.environ.get("MODULES_MODULE_TAG") or "dev"
    (out / "version.json").write_text(json.dumps({"version": version}) + "\n", encoding="utf-8")
    return files


# -- the hooks' runtime ------------------------------------------------------------------------------------------------

def _requirement_names(requirements: Path) -> list[str]:
    names = []
    for raw in requirements.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-"):
            raise BundleError(f"{requirements}: options ({line!r}) are not allowed in the hooks' runtime list")
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==[^=\s;]+$", line)
        if not match:
            raise BundleError(f"{requirements}: {line!r} is not pinned as NAME==VERSION")
        names.append(match.group(1))
    return names


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _marker_environment(python_version: str) -> dict[str, str]:
    return {"python_version": python_version, "python_full_version": python_version + ".0",
            "implementation_name": "cpython", "platform_python_implementation": "CPython",
            "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
            "os_name": "posix", "extra": ""}


def unmet_requirements(target: Path, python_version: str) -> list[str]:
    """Requires-Dist lines of the installed distributions (for this Python, no extras) that nothing installed meets."""
    from importlib import metadata

    try:
        from packaging.requirements import Requirement
    except ImportError:  # the werf builder has pip, which vendors packaging
        from pip._vendor.packaging.requirements import Requirement

    env = _marker_environment(python_version)
    dists = {_normalize(d.metadata["Name"]): d.version for d in metadata.distributions(path=[str(target)])}
    missing = []
    for dist in metadata.distributions(path=[str(target)]):
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            have = dists.get(_normalize(req.name))
            if have is None or (req.specifier and not req.specifier.contains(have, prereleases=True)):
                missing.append(f"{dist.metadata['Name']} needs {line} (installed: {have or 'nothing'})")
    return missing


def build_runtime(out: Path, python_version: str, requirements: Path = REPO / "requirements.txt") -> Path:
    """pip install -t of exactly requirements.txt (no resolver: every transitive package must be pinned there), as
    binary wheels for CPython <python_version> on glibc x86_64, whatever interpreter runs this."""
    if not re.fullmatch(r"3\.\d+", python_version):
        raise BundleError(f"python version must look like 3.X, got {python_version!r}")
    _requirement_names(requirements)
    target = out / "lib" / "python" / python_version
    if target.exists():
        shutil.rmtree(target)
    abi = "cp" + python_version.replace(".", "")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-compile", "--no-deps", "--only-binary=:all:", "--implementation", "cp",
               "--python-version", python_version, "--abi", abi, "--abi", "abi3", "--abi", "none",
               "--target", str(target), "-r", str(requirements)]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BundleError(f"pip install for Python {python_version} failed:\n{proc.stderr.strip()[-3000:]}")
    for name in DROPPED:
        shutil.rmtree(target / name, ignore_errors=True)
    for cache in target.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    missing = unmet_requirements(target, python_version)
    if missing:
        raise BundleError("requirements.txt misses what its packages need (pin them there):\n  " + "\n  ".join(missing))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("what", choices=["tree", "runtime", "all"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--python-version", action="append",
                        help="X.Y of the interpreter that will run the hooks (repeatable); default: this one")
    args = parser.parse_args(argv)
    versions = args.python_version or [f"{sys.version_info[0]}.{sys.version_info[1]}"]
    try:
        if args.what in ("tree", "all"):
            if args.out.exists():
                shutil.rmtree(args.out)
            files = build_tree(args.out)
            print(f"bundle tree: {len(files)} files from the checkout -> {args.out}")
        for version in versions if args.what in ("runtime", "all") else []:
            target = build_runtime(args.out, version)
            print(f"hooks runtime for Python {version}: {target}")
    except (BundleError, subprocess.CalledProcessError) as exc:
        print(f"build_bundle: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

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

import json
import os
import subprocess
import tempfile
from pathlib import Path

import yaml

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


def render(module_dir: Path, values: dict, api_versions: tuple[str, ...] = API_VERSIONS) -> list[dict]:
    """helm template the chart and return the rendered objects (empty documents dropped)."""
    module_dir = Path(module_dir)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(values, handle)
        values_file = handle.name
    try:
        command = [str(helm_binary(module_dir)), "template", "registry", str(module_dir),
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

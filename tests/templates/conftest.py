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
"""Rendering the chart with Helm from values the real hooks produced on fixture clusters."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from d8registry import cluster as cluster_mod
from d8registry import helm
from d8registry.operator.module import ModuleHarness

KUBERNETES_VERSION = "1.31"
SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"

SCENARIOS = {
    "legacy": None,
    "direct": {"mode": "Direct", "direct": {"imagesRepo": "registry.example.com/deckhouse/ee", "license": "lic-123456"}},
    "proxy": {"mode": "Proxy", "proxy": {"imagesRepo": "mirror.example.com:5000/d8/ee", "username": "u", "password": "p4ss"}},
    "local": {"mode": "Local"},
    "unmanaged": {"mode": "Unmanaged", "unmanaged": {"imagesRepo": "plain.example.com/deckhouse/ce", "scheme": "HTTP"}},
    "invalid": {"mode": "Proxy"},
}


def run_module(repo_root: Path, registry: dict | None) -> ModuleHarness:
    cluster = cluster_mod.load()
    if registry is not None:
        cluster = cluster.with_registry_settings(registry)
    harness = ModuleHarness(repo_root, cluster.objects, cluster.globals, in_process=True,
                            env={"REGISTRY_FAKE_NOW": "2026-11-27T10:00:00Z"})
    harness.synchronize()
    harness.before_helm()
    # let the pipeline go past the image check so the later stages' objects (node-services Secrets,
    # NodeGroupConfiguration payloads, the LB) are rendered and validated too
    checker = harness.module_values["internal"]["checker"]
    checker["state"] = {"version": checker["params"]["version"], "ready": True, "message": "Mode: Default"}
    harness.before_helm()
    return harness


@pytest.fixture(scope="session")
def rendered(repo_root, helm_bin):
    """Scenario name -> list of rendered objects."""
    return {name: helm.render(repo_root, run_module(repo_root, registry).helm_values())
            for name, registry in SCENARIOS.items()}


def crd_schema(api_version: str, kind: str) -> dict | None:
    group = api_version.split("/")[0]
    path = SCHEMAS / f"{kind.lower()}.{group}.yaml"
    return yaml.safe_load(path.read_text()) if path.exists() else None


def validate_object(obj: dict) -> None:
    """Strict validation: core kinds by kubernetes-validate, CRD kinds by our small schemas."""
    import jsonschema

    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        return
    except kubernetes_validate.SchemaNotFoundError:
        pass
    except kubernetes_validate.ValidationError as exc:
        raise AssertionError(f"{obj['kind']}/{obj['metadata'].get('name')}: {exc.message} at {list(exc.path)}") from None
    schema = crd_schema(obj["apiVersion"], obj["kind"])
    if schema is None:
        raise AssertionError(f"no schema for {obj['apiVersion']} {obj['kind']}: add one under tests/schemas/")
    jsonschema.validate(obj, schema)

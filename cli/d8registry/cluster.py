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
"""Loading a cluster for the simulator: the built-in example or a YAML file of globals + objects."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import yaml

EXAMPLES = Path(__file__).resolve().parent / "examples"
DEFAULT_CLUSTER = EXAMPLES / "cluster-static-3m2w.yaml"


class ClusterError(ValueError):
    pass


@dataclass
class Cluster:
    globals: dict
    objects: list[dict]
    description: str = ""

    def module_config(self) -> dict | None:
        for obj in self.objects:
            if obj.get("kind") == "ModuleConfig" and obj.get("metadata", {}).get("name") == "deckhouse":
                return obj
        return None

    def with_registry_settings(self, registry: dict | None) -> Cluster:
        """A copy whose ModuleConfig 'deckhouse' carries these registry settings (generation bumped)."""
        clone = copy.deepcopy(self)
        config = clone.module_config()
        if config is None:
            config = {"apiVersion": "deckhouse.io/v1alpha1", "kind": "ModuleConfig",
                      "metadata": {"name": "deckhouse", "generation": 0}, "spec": {"version": 1, "settings": {}}}
            clone.objects.insert(0, config)
        settings = config.setdefault("spec", {}).setdefault("settings", {})
        if registry is None:
            settings.pop("registry", None)
        else:
            settings["registry"] = copy.deepcopy(registry)
        config["metadata"]["generation"] = int(config["metadata"].get("generation", 0)) + 1
        return clone


def parse_yaml(text: str):
    """yaml.safe_load through libyaml when PyYAML has it: a 1,000-node dump parses in well under a second
    instead of many seconds (issue #15). Errors come from the pure-Python loader, so they read the same."""
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is not None:
        try:
            return yaml.load(text, Loader=loader)  # noqa: S506 - libyaml's safe loader
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


def load(path: Path | None = None) -> Cluster:
    path = Path(path) if path else DEFAULT_CLUSTER
    try:
        document = parse_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ClusterError(f"cannot read cluster file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ClusterError(f"cluster file {path} is not valid YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("objects"), list):
        raise ClusterError(f"cluster file {path} must be a mapping with 'globals' and an 'objects' list")
    globals_ = document.get("globals") or {}
    if not isinstance(globals_, dict):
        raise ClusterError(f"cluster file {path}: 'globals' must be a mapping")
    objects = document["objects"]
    for index, obj in enumerate(objects):
        if not isinstance(obj, dict) or not obj.get("kind") or not isinstance(obj.get("metadata"), dict):
            raise ClusterError(f"cluster file {path}: objects[{index}] needs 'kind' and 'metadata'")
    return Cluster(globals=globals_, objects=objects, description=str(document.get("description", "")))

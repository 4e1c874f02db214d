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
"""Turning CLI input into registry settings and driving a simulator through a sequence of switches."""

from __future__ import annotations

import base64
import copy
import json

from ..cluster import Cluster

SECTION = {"Direct": "direct", "Proxy": "proxy", "Unmanaged": "unmanaged"}
FIXED_ADDRESS = "registry.d8-system.svc:5001"  # where deckhouse-registry points in the managed modes


class ScenarioError(ValueError):
    pass


def _configured_upstream(cluster: Cluster) -> dict | None:
    """The upstream section of the mode ModuleConfig 'deckhouse' asks for, when it names one."""
    config = cluster.module_config() or {}
    registry = ((config.get("spec") or {}).get("settings") or {}).get("registry") or {}
    section = registry.get(SECTION.get(registry.get("mode", ""), ""), None) if isinstance(registry, dict) else None
    return copy.deepcopy(section) if isinstance(section, dict) and section.get("imagesRepo") else None


def current_upstream(cluster: Cluster) -> dict:
    """The registry the cluster uses now (deckhouse-registry), as a settings section. In the managed
    modes deckhouse-registry points at the module's own fixed address; the upstream is then the one
    the ModuleConfig's current mode section names."""
    for obj in cluster.objects:
        meta = obj.get("metadata") or {}
        if obj.get("kind") == "Secret" and meta.get("name") == "deckhouse-registry":
            data = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
            if data.get("address") == FIXED_ADDRESS and _configured_upstream(cluster) is not None:
                return _configured_upstream(cluster)
            section = {"imagesRepo": data.get("address", "") + data.get("path", "")}
            if data.get("ca"):
                section["ca"] = data["ca"]
            if data.get("scheme", "https").lower() == "http":
                section["scheme"] = "HTTP"
            try:
                entry = json.loads(data.get(".dockerconfigjson", "{}"))["auths"][data.get("address", "")]
                if entry.get("username") == "license-token":
                    section["license"] = entry.get("password", "")
                elif entry.get("username"):
                    section["username"], section["password"] = entry["username"], entry.get("password", "")
            except (KeyError, ValueError, TypeError):
                pass
            return section
    return {}


def load_settings_file(path: str):
    """The 'registry' section from a YAML file (either the section itself or a mapping holding it)."""
    from pathlib import Path

    import yaml

    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"cannot read settings file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(f"settings file {path} is not valid YAML: {' '.join(str(exc).split())}") from exc
    return loaded.get("registry", loaded) if isinstance(loaded, dict) else loaded


def _assign(target: dict, dotted: str, value: str) -> None:
    parts = dotted.split(".")
    node = target
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ScenarioError(f"--set {dotted}: {part!r} is already a value")
        node = child
    node[parts[-1]] = value


def settings_from_set(expression: str, cluster: Cluster) -> dict | None:
    """'mode=Proxy' or 'mode=Direct,direct.imagesRepo=host/path'. The section of the chosen mode
    defaults to the cluster's current upstream, so '--set mode=Proxy' is a complete request.
    'mode=Legacy' means the non-configurable Unmanaged mode (no settings at all)."""
    result: dict = {}
    for pair in filter(None, (p.strip() for p in expression.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ScenarioError(f"--set expects key=value, got {pair!r}")
        _assign(result, key, value)
    mode = result.get("mode")
    if mode == "Legacy":
        return None
    section = SECTION.get(mode or "")
    if section:
        merged = copy.deepcopy(current_upstream(cluster))
        given = result.get(section) or {}
        if "license" in given or "username" in given:
            merged.pop("license", None)
            merged.pop("username", None)
            merged.pop("password", None)
        merged.update(given)
        result[section] = merged
    return result


DEFAULT_SEQUENCE = ["mode=Direct", "mode=Proxy", "mode=Direct", "mode=Local", "mode=Unmanaged"]

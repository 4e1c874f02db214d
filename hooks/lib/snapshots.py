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
"""Typed views of the orchestrator's snapshots (the jqFilter results of SPEC 7.2).

Immutable records (record.Record, not NamedTuple): every hook run builds these classes, and a hand-written
record class costs a fraction of a NamedTuple's to create (issue #15, hook run time).
"""

from __future__ import annotations

from .record import Record, fields


class Node(Record):
    __slots__ = ()
    _fields = ("name", "ip", "master", "ready", "version", "containerd_config")
    name, ip, master, ready, version, containerd_config = fields(6)

    def __new__(cls, name: str, ip: str, master: bool, ready: bool, version: str, containerd_config: str):
        return tuple.__new__(cls, (name, ip, master, ready, version, containerd_config))


class MirrorPod(Record):
    __slots__ = ()
    _fields = ("node", "ready", "config_version", "mirror")
    node, ready, config_version, mirror = fields(4)

    def __new__(cls, node: str, ready: bool, config_version: str, mirror: bool):
        return tuple.__new__(cls, (node, ready, config_version, mirror))


class InClusterDeployment(Record):
    __slots__ = ()
    _fields = ("version", "generation", "observed_generation", "replicas", "total", "updated", "ready", "available")
    version, generation, observed_generation, replicas, total, updated, ready, available = fields(8)

    def __new__(cls, version: str, generation: int, observed_generation: int, replicas: int, total: int,
                updated: int, ready: int, available: int):
        return tuple.__new__(cls, (version, generation, observed_generation, replicas, total, updated, ready,
                                   available))


class DeckhousePod(Record):
    __slots__ = ()
    _fields = ("name", "ready", "registry_version")
    name, ready, registry_version = fields(3)

    def __new__(cls, name: str, ready: bool, registry_version: str):
        return tuple.__new__(cls, (name, ready, registry_version))


def _results(snapshots: dict, name: str) -> list:
    return [item.get("filterResult") for item in snapshots.get(name) or [] if item.get("filterResult") is not None]


def _int(value, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def nodes(snapshots: dict) -> list[Node]:
    out = []
    for r in _results(snapshots, "nodes"):
        out.append(Node(
            name=str(r.get("name") or ""),
            ip=str(r.get("ip") or ""),
            master=bool(r.get("master")),
            ready=bool(r.get("ready")),
            version=str(r.get("version") or "unknown"),
            containerd_config=str(r.get("containerdConfig") or ""),
        ))
    return sorted(out, key=lambda n: n.name)


def mirror_pods(snapshots: dict) -> list[MirrorPod]:
    return [
        MirrorPod(node=str(r.get("node") or ""), ready=bool(r.get("ready")),
                  config_version=str(r.get("configVersion") or ""), mirror=bool(r.get("mirror")))
        for r in _results(snapshots, "nodeservices_pods")
    ]


def incluster_deployment(snapshots: dict) -> InClusterDeployment | None:
    results = _results(snapshots, "incluster_proxy")
    if not results:
        return None
    r = results[0]
    return InClusterDeployment(
        version=str(r.get("version") or ""),
        generation=_int(r.get("generation")),
        observed_generation=_int(r.get("observedGeneration")),
        replicas=_int(r.get("replicas")),
        total=_int(r.get("total")),
        updated=_int(r.get("updated")),
        ready=_int(r.get("ready")),
        available=_int(r.get("available")),
    )


def deckhouse_pods(snapshots: dict) -> list[DeckhousePod]:
    return [
        DeckhousePod(name=str(r.get("name") or ""), ready=bool(r.get("ready")),
                     registry_version=str(r.get("registryVersion") or ""))
        for r in _results(snapshots, "deckhouse_pods")
    ]


def ngc_versions(snapshots: dict) -> dict[str, str]:
    return {str(r.get("name")): str(r.get("version") or "") for r in _results(snapshots, "node_group_configurations")}


def deckhouse_registry_data(snapshots: dict) -> dict | None:
    results = _results(snapshots, "deckhouse_registry")
    return results[0] if results and isinstance(results[0], dict) else None


def secrets(snapshots: dict, binding: str) -> dict[str, dict]:
    return {str(r.get("name")): r for r in _results(snapshots, binding) if isinstance(r, dict)}

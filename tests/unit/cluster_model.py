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
"""A small model of the cluster reacting to the orchestrator's output, for state-machine tests.

It plays Helm (NGC annotations follow the published payload), bashible (nodes report the version
they applied), kubelet (mirror pods per node-services entry), the Deployment controller, Deckhouse
(restarts on a deckhouse-registry change and carries its checksum) and the image checker. Each
actor can be held back to test the not-ready path of every stage.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from lib import deckhouse_registry, settings, stages
from lib.snapshots import DeckhousePod, InClusterDeployment, MirrorPod, Node

ENV = settings.Environment(cluster_configuration_present=True, default_cri="Containerd", cluster_type="Static")
START = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)
LICENSE = "model-license-secret"


def live_registry_for_upstream(host: str, path: str, username: str, password: str) -> dict:
    return {"address": host, "path": "/" + path, "scheme": "https",
            ".dockerconfigjson": deckhouse_registry.dockerconfigjson(host, username, password)}


@dataclass
class ClusterModel:
    nodes: list[Node] = field(default_factory=lambda: [
        Node("master-0", "10.128.0.10", True, True, "unknown", "default"),
        Node("master-1", "10.128.0.11", True, True, "unknown", "default"),
        Node("master-2", "10.128.0.12", True, True, "unknown", "default"),
        Node("worker-0", "10.128.0.20", False, True, "unknown", "default"),
        Node("worker-1", "10.128.0.21", False, True, "unknown", "default"),
    ])
    live_registry: dict | None = field(default_factory=lambda: live_registry_for_upstream(
        "registry.deckhouse.ru", "deckhouse/ee", "license-token", LICENSE))
    mirror_pods: list[MirrorPod] = field(default_factory=list)
    incluster: InClusterDeployment | None = None
    deckhouse_pods: list[DeckhousePod] = field(default_factory=list)
    ngc_versions: dict[str, str] = field(default_factory=dict)
    checker_state: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)
    generation: int = 1
    settings_raw: object = None
    now: datetime = START
    # actors that can be held back
    bashible: bool = True
    kubelet: bool = True
    controllers: bool = True
    checker: bool = True
    deckhouse: bool = True
    history: list[stages.Outcome] = field(default_factory=list)

    def __post_init__(self):
        if not self.deckhouse_pods:
            self.deckhouse_pods = [DeckhousePod("deckhouse-0", True, deckhouse_registry.checksum(self.live_registry))]

    def set_settings(self, raw) -> None:
        self.settings_raw = copy.deepcopy(raw)
        self.generation += 1

    def inputs(self) -> stages.Inputs:
        return stages.Inputs(
            verdict=settings.evaluate(self.settings_raw, ENV), generation=self.generation, now=self.now,
            nodes=list(self.nodes), mirror_pods=list(self.mirror_pods), incluster=self.incluster,
            deckhouse_pods=list(self.deckhouse_pods), live_registry=copy.deepcopy(self.live_registry),
            ngc_versions=dict(self.ngc_versions), checker_state=copy.deepcopy(self.checker_state),
            lb_image="registry.example/base@sha256:" + "0" * 64)

    def run(self) -> stages.Outcome:
        outcome = stages.reconcile(self.state, self.inputs())
        self.state = outcome.state
        self.history.append(outcome)
        self.react(outcome)
        self.now += timedelta(seconds=10)
        return outcome

    def react(self, outcome: stages.Outcome) -> None:
        state = outcome.state
        containerd = state["node_config"]["containerd"]
        self.ngc_versions["d8-registry-containerd.sh"] = containerd["version"]
        if self.bashible and containerd["kind"] != "None":
            self.nodes = [Node(n.name, n.ip, n.master, n.ready, containerd["version"], n.containerd_config)
                          for n in self.nodes]
        if self.kubelet:
            entries = state["node_services"]["nodes"]
            ready = {n.name for n in self.nodes if n.ready}
            self.mirror_pods = [MirrorPod(name, name in ready, entry["version"], True) for name, entry in entries.items()]
        if self.controllers:
            proxy = state.get("incluster_proxy")
            self.incluster = None if proxy is None else InClusterDeployment(
                proxy["version"], 2, 2, 3, 3, 3, 3, 3)
        if outcome.registry_patch is not None:
            live = dict(self.live_registry or {})
            for key, value in outcome.registry_patch["data"].items():
                if value is None:
                    live.pop(key, None)
                else:
                    live[key] = base64.b64decode(value).decode()
            self.live_registry = live
        if self.deckhouse and self.live_registry is not None:
            self.deckhouse_pods = [DeckhousePod("deckhouse-1", True, deckhouse_registry.checksum(self.live_registry))]
        if self.checker:
            params = outcome.checker_params
            names = sorted(params["registries"])
            self.checker_state = {
                "version": params["version"], "ready": True,
                "message": "\n".join(["Mode: " + params["checkMode"]] + [f"{n}: all 42 items are checked" for n in names]),
            }

    def run_until_ready(self, limit: int = 40) -> stages.Outcome:
        for _ in range(limit):
            outcome = self.run()
            if outcome.ready:
                return outcome
        raise AssertionError(f"not Ready after {limit} runs: {json.dumps(self.conditions(), indent=1)}")

    def conditions(self) -> dict[str, tuple[str, str, str]]:
        return {c["type"]: (c["status"], c["reason"], c["message"]) for c in self.state.get("conditions", [])}

    def switch(self, raw) -> stages.Outcome:
        self.set_settings(raw)
        return self.run_until_ready()

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
"""Simulator-driven tests: the real module (hooks, chart, node steps) on a modelled cluster."""

from __future__ import annotations

import copy

import pytest
from d8registry import cluster as cluster_mod
from d8registry.sim.engine import Faults, Simulator
from d8registry.sim.run import MODULE_DIR

UPSTREAM_HOSTS = ["registry.deckhouse.ru", "nexus.example.com:8443", "nexus.example.com"]


def small_cluster() -> cluster_mod.Cluster:
    """The example cluster cut to one master and one worker (containerd 2 on the worker)."""
    cluster = cluster_mod.load()
    keep = {"master-0", "worker-1"}
    objects = [o for o in cluster.objects if o["kind"] != "Node" or o["metadata"]["name"] in keep]
    globals_ = copy.deepcopy(cluster.globals)
    globals_["discovery"].update({"clusterMasterCount": 1, "clusterControlPlaneIsHighlyAvailable": False})
    return cluster_mod.Cluster(globals=globals_, objects=objects, description="1 master + 1 worker")


@pytest.fixture
def make_sim(helm_bin, tmp_path):
    """Simulators over the real module, closed (registries' servers stopped) after the test."""
    made: list[Simulator] = []

    def build(cluster=None, faults: Faults | None = None) -> Simulator:
        sim = Simulator(MODULE_DIR, cluster or small_cluster(), workdir=tmp_path / f"sim-{len(made)}",
                        in_process=True, faults=faults, registry_hosts=UPSTREAM_HOSTS)
        made.append(sim)
        return sim

    yield build
    for sim in made:
        sim.close()

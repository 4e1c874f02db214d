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
"""Alike nodes share one node-step execution (sim/bashible.py): the simulated cluster must end up exactly
as when every node runs its steps itself, and a node that differs in any starting file runs alone."""

from __future__ import annotations

import copy
import re

from d8registry.sim.bashible import _normalized, tree

from .conftest import small_cluster
from .switching import request, switch


def _cluster_with_clones():
    """One master, worker-1 and three copies of it."""
    cluster = small_cluster()
    template = next(o for o in cluster.objects if o["kind"] == "Node" and o["metadata"]["name"] == "worker-1")
    for i, name in enumerate(("worker-1a", "worker-1b", "worker-1c")):
        node = copy.deepcopy(template)
        node["metadata"]["name"] = name
        node["status"]["addresses"][0]["address"] = f"10.128.9.{i + 1}"
        cluster.objects.append(node)
    return cluster


def _node_view(sim, node: str) -> tuple:
    """What a node holds after the switch: its files (own name aside), the stand-in commands it saw
    (mktemp's random suffix aside) and its labels and annotations."""
    commands = (sim.workdir / f"commands-{node}.log").read_text()
    commands = re.sub(r"\.d8reg\.[A-Za-z0-9]{6}", ".d8reg.TMP", commands).replace(str(sim.node_root(node)), "ROOT")
    meta = sim.store.get("Node", "", node)["metadata"]
    return _normalized(tree(sim.node_root(node)), node), commands, meta.get("labels"), meta.get("annotations")


def _restarted(sim, node: str) -> bool:
    return "systemctl restart containerd" in (sim.workdir / f"commands-{node}.log").read_text()


def test_shared_executions_leave_every_node_as_its_own_run_does(make_sim, monkeypatch):
    monkeypatch.delenv("D8REG_SIM_STEP_MEMO", raising=False)   # every execution here is bash's own
    shared, alone = make_sim(_cluster_with_clones()), make_sim(_cluster_with_clones())
    assert shared.bashible.memo is None and alone.bashible.memo is None
    alone.bashible.share = False
    for sim in (shared, alone):   # one clone differs in a starting file, one the steps do not even read
        (sim.node_root("worker-1c") / "etc/hostname").write_text("worker-1c\n")
    nodes = ["master-0", "worker-1", "worker-1a", "worker-1b", "worker-1c"]
    ticks = [switch(sim, request(sim, "mode=Direct")) for sim in (shared, alone)]
    assert ticks[0] == ticks[1]
    # files, commands, labels and annotations of every node (the CA and passwords are random per run,
    # so the rest of the world is not compared)
    assert [_node_view(shared, n) for n in nodes] == [_node_view(alone, n) for n in nodes]
    # the alike clones took worker-1's execution; the one with another starting file ran its own
    runs = shared.node_runs
    assert {runs[n].executed_on for n in ("worker-1", "worker-1a", "worker-1b")} == {"worker-1"}
    assert runs["worker-1c"].executed_on == "worker-1c"
    assert runs["master-0"].executed_on == "master-0"
    assert shared.bashible.executions < alone.bashible.executions
    assert shared.bashible.memo_hits == alone.bashible.memo_hits == 0
    # each node's own record: the switch restarted containerd on every node, and the label/annotate
    # calls carry the node's own name
    assert all(_restarted(shared, n) and _restarted(alone, n) for n in nodes)
    assert {call["node"] for call in runs["worker-1b"].calls} == {"worker-1b"}

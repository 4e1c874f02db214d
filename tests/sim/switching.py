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
"""Driving switches on a simulator and comparing the worlds they leave behind."""

from __future__ import annotations

import copy
import json

from d8registry.sim.engine import Simulator
from d8registry.sim.scenario import settings_from_set


def request(sim: Simulator, expression: str) -> dict | None:
    """Settings for a `--set` expression; sections default to the example's upstream, as in the CLI."""
    from d8registry import cluster as cluster_mod

    return settings_from_set(expression, cluster_mod.load())


def target_of(registry: dict | None) -> tuple[str, bool]:
    return ("Unmanaged", True) if registry is None else (registry.get("mode", "Unmanaged"), False)


def reached(sim: Simulator, registry: dict | None) -> bool:
    state = sim.state()
    mode, legacy = target_of(registry)
    return sim.ready() and state.get("mode") == mode and (state.get("target_mode"),
                                                          bool(state.get("target_legacy"))) == (mode, legacy)


def switch(sim: Simulator, registry: dict | None, max_ticks: int = 80) -> int:
    """Request `registry` and tick until the switch is done; the number of ticks it took."""
    sim.set_registry(registry)
    if registry is not None and registry.get("mode") == "Local":
        sim.registries.local_filled = True   # d8 mirror push right away
    for tick in range(1, max_ticks + 1):
        sim.step()
        if reached(sim, registry):
            return tick
    raise AssertionError(f"switch to {target_of(registry)} not done in {max_ticks} ticks: "
                         f"{json.dumps(sim.state().get('conditions'), indent=1)}")


def world(sim: Simulator) -> dict:
    """What the cluster holds, as comparable text: every object (without resourceVersion) and the
    module's values. Two equal worlds evolve identically."""
    objects = {}
    for obj in sim.store.objects():
        obj = copy.deepcopy(obj)
        obj["metadata"].pop("resourceVersion", None)
        meta = obj["metadata"]
        objects["/".join((obj["kind"], meta.get("namespace", ""), meta["name"]))] = json.dumps(obj, sort_keys=True)
    return {"objects": objects, "values": json.dumps(sim.harness.module_values, sort_keys=True),
            "material": material(sim.state())}


def material(state: dict) -> dict[str, str]:
    """Generated secret material in the orchestrator state: CA, HTTP secret, passwords, leaf certs."""
    out = {}
    ca = (state.get("pki") or {}).get("ca") or {}
    for key in ("cert", "key"):
        if ca.get(key):
            out[f"ca.{key}"] = ca[key]
    if state.get("http_secret"):
        out["http_secret"] = state["http_secret"]
    for name, user in (state.get("users") or {}).items():
        out[f"user.{name}"] = user.get("password", "")
    for node, entry in ((state.get("node_services") or {}).get("nodes") or {}).items():
        out[f"leaf.{node}"] = entry.get("files", {}).get("front.crt", "")
    proxy = (state.get("incluster_proxy") or {}).get("files") or {}
    if proxy.get("front.crt"):
        out["leaf.incluster-proxy"] = proxy["front.crt"]
    return out


def differences(left: dict, right: dict) -> list[str]:
    keys = sorted(set(left["objects"]) | set(right["objects"]))
    out = [k for k in keys if left["objects"].get(k) != right["objects"].get(k)]
    if left["values"] != right["values"]:
        out.append("module values")
    return out

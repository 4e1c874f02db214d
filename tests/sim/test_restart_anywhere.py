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
"""Restart anywhere (SPEC 4.10.2, 10.5): a Deckhouse restart (module values wiped) at any tick of
any switch changes nothing.

Property over the whole transition matrix of SPEC 2.4, a parameter change within Direct and within
Proxy, and a revert: the switch runs once without restart (the baseline, with a checkpoint of the
whole simulated world before every tick); then, for every tick k of it, the world is restored to
checkpoint k, Deckhouse restarts (values wiped), and the switch runs on. It must reach Ready; no CA,
leaf certificate or password that existed may change at any tick; no object may be deleted that the
baseline keeps (deleted and re-created = a running component restarted); and the final world must be
the baseline's: every object byte for byte and the orchestrator state, up to lastTransitionTime and
the checker's attempt times (a restart may delay a stage by one checker period), and no object may
have changed more often (metadata.generation) than without the restart. When the switch
generates secret material only after the restart point, that material is new random data, so the
final world is compared by its objects and conditions.

Each point runs the real hooks (in process) with the real chart and node steps, on one master and
one worker. A restart delays the next checker run, so the checkpoints are needed: nothing short of
running each branch to its end proves the property.
"""

from __future__ import annotations

import base64
import json
import os
import time

import pytest
import yaml

from .switching import material, reached, request, switch

# from-state: the switches that lead there from the example's legacy Unmanaged
FROM = {
    "Unmanaged(legacy)": [],
    "Unmanaged": ["mode=Unmanaged"],
    "Direct": ["mode=Direct"],
    "Proxy": ["mode=Proxy"],
    "Local": ["mode=Local"],
}
# every allowed from -> to of SPEC 2.4 (Proxy/Local need clusterType Static, which the example is)
TRANSITIONS = [
    ("Unmanaged(legacy)", "mode=Unmanaged"),
    ("Unmanaged(legacy)", "mode=Direct"),
    ("Unmanaged(legacy)", "mode=Proxy"),
    ("Unmanaged(legacy)", "mode=Local"),
    ("Unmanaged", "mode=Legacy"),
    ("Unmanaged", "mode=Direct"),
    ("Unmanaged", "mode=Proxy"),
    ("Unmanaged", "mode=Local"),
    ("Direct", "mode=Unmanaged"),
    ("Direct", "mode=Legacy"),
    ("Direct", "mode=Direct,direct.license=other-license-0001"),
    ("Direct", "mode=Proxy"),
    ("Direct", "mode=Local"),
    ("Proxy", "mode=Unmanaged"),
    ("Proxy", "mode=Legacy"),
    ("Proxy", "mode=Direct"),
    ("Proxy", "mode=Proxy,proxy.ttl=2h"),
    ("Local", "mode=Unmanaged"),
    ("Local", "mode=Direct"),
    # revert: Direct -> Proxy abandoned after a few ticks, back to Direct
    ("Direct", "mode=Proxy@4|mode=Direct"),
]
MAX_TICKS = 80
# Each point runs the rest of the switch; that makes the matrix quadratic in its length. CI runs
# the transitions below (every tick of each); `make fuzz` (HYPOTHESIS_PROFILE=fuzz) runs them all.
CI_TRANSITIONS = [
    ("Unmanaged(legacy)", "mode=Direct"),
    ("Direct", "mode=Direct,direct.license=other-license-0001"),
    ("Direct", "mode=Proxy@4|mode=Direct"),
]
SELECTED = TRANSITIONS if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" else CI_TRANSITIONS
RESULTS: list[tuple[str, int, float]] = []


def _run_baseline(sim, to: str, tmp_path) -> tuple[list[dict], dict | None]:
    """The switch without restart, with a checkpoint before every tick (the request already made)."""
    points: list[dict] = []

    registry = request(sim, to.split("|")[-1])

    def tick(revert_in: int | None = None) -> None:
        point = sim.checkpoint(tmp_path / f"cp-{len(points)}")
        point["material"] = material(sim.state())
        point["events"] = len(sim.store.events)
        point["revert_in"] = revert_in     # ticks until the final request, when it is still to come
        points.append(point)
        sim.step()

    *aborted, _final = to.split("|")
    for part in aborted:
        expression, _, count = part.partition("@")
        sim.set_registry(request(sim, expression))
        for i in range(int(count)):
            tick(int(count) - i)
    sim.set_registry(registry)
    if registry is not None and registry.get("mode") == "Local":
        sim.registries.local_filled = True
    for _ in range(MAX_TICKS):
        tick()
        if reached(sim, registry):
            return points, registry
    raise AssertionError(f"baseline switch {to} did not finish")


def _final_view(sim) -> dict:
    """The finished world, without what only says when things happened (lastTransitionTime, the
    checker's attempt times, resourceVersion) and without the Deckhouse pod (named by its checksum)."""
    def timeless(conditions):
        return [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in conditions or []]

    objects, generations = {}, {}
    for obj in sim.store.objects():
        meta = obj["metadata"]
        if obj["kind"] == "Pod" and (meta.get("labels") or {}).get("app") == "deckhouse":
            continue
        meta.pop("resourceVersion", None)
        if obj["kind"] == "Secret" and meta["name"] == "registry-checker-state":
            continue
        # how often an object changed is compared on its own (_generations): a restart may shift
        # when stages finish against a later request (a revert), and then fewer steps are undone
        generation = meta.pop("generation", None)
        if obj["kind"] == "Secret" and meta["name"] in ("registry-state", "registry-private-state"):
            generation = None   # bookkeeping: how often it was written follows the conditions
        if generation is not None:
            generations[key_of(obj)] = generation
        if obj["kind"] == "Secret" and meta["name"] == "registry-state":
            data = dict(obj["data"])
            data["conditions"] = timeless(yaml.safe_load(base64.b64decode(data["conditions"])))
            obj["data"] = data
        objects[key_of(obj)] = json.dumps(obj, sort_keys=True)
    state = dict(sim.state())
    state["conditions"] = timeless(state.get("conditions"))
    return {"objects": objects, "state": json.dumps(state, sort_keys=True), "generations": generations}


def key_of(obj: dict) -> str:
    return "/".join((obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]))


def _deleted(sim, since: int) -> set:
    return {key for event, key in sim.store.events[since:] if event == "Deleted"}


@pytest.mark.parametrize(("source", "to"), SELECTED, ids=[f"{s}->{t}" for s, t in SELECTED])
def test_property_restart_at_every_tick_of_a_switch(make_sim, tmp_path, source, to):
    started = time.monotonic()
    sim = make_sim()
    for expression in FROM[source]:
        switch(sim, request(sim, expression))
    points, registry = _run_baseline(sim, to, tmp_path)
    final, final_material = _final_view(sim), material(sim.state())
    baseline_deleted = {k: _deleted(sim, point["events"]) for k, point in enumerate(points)}
    for k, point in enumerate(points):
        where = f"{source} -> {to}, restart before tick {k + 1} of {len(points)}"
        sim.restore(point)
        sim.restart_deckhouse()
        revert_in = point["revert_in"]
        for _ in range(MAX_TICKS):
            if revert_in is not None:
                revert_in -= 1
                if revert_in < 0:
                    sim.set_registry(registry)   # the baseline's request, at the same tick
                    revert_in = None
            sim.step()
            now = material(sim.state())
            changed = [key for key, value in point["material"].items() if key in now and now[key] != value]
            assert not changed, f"{where}: {changed} changed"
            if reached(sim, registry):
                break
        assert reached(sim, registry), f"{where}: the switch did not finish"
        recreated = _deleted(sim, point["events"]) - baseline_deleted[k]
        assert not recreated, f"{where}: deleted {sorted(recreated)}, which the switch alone keeps"
        if set(final_material) <= set(point["material"]):
            # all secret material existed before the restart: the end is the baseline's, exactly
            view = _final_view(sim)
            assert view["state"] == final["state"], f"{where}: another final state"
            other = [(final["objects"].get(key), view["objects"].get(key))
                     for key in sorted(set(view["objects"]) | set(final["objects"]))
                     if view["objects"].get(key) != final["objects"].get(key)]
            assert other == [], f"{where}: other objects"
            more = {key: (final["generations"].get(key), number) for key, number in view["generations"].items()
                    if number > final["generations"].get(key, 0)}
            assert not more, f"{where}: changed more often than without the restart (baseline, restart): {more}"
        else:
            # material generated after the restart is new random data; everything else must agree
            assert set(_final_view(sim)["objects"]) == set(final["objects"]), f"{where}: other objects"
            assert sim.state()["conditions"] and _shape(sim) == _shape_of(final), f"{where}: another final state"
    RESULTS.append((f"{source} -> {to}", len(points), time.monotonic() - started))
    print(f"\n{source} -> {to}: {len(points)} restart points, {time.monotonic() - started:.1f} s")


def _shape(sim) -> tuple:
    state = sim.state()
    return state.get("mode"), state.get("target_mode"), [(c["type"], c["status"]) for c in state["conditions"]]


def _shape_of(view: dict) -> tuple:
    state = json.loads(view["state"])
    return state.get("mode"), state.get("target_mode"), [(c["type"], c["status"]) for c in state["conditions"]]

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
whole simulated world after every tick); then, for every tick k of it, the world is restored to
checkpoint k, Deckhouse restarts, and the next tick must leave exactly the world the baseline had
after tick k+1 (every object byte for byte and the module values) — so the same CA, leaf
certificates and passwords, nothing deleted or re-rolled, the same conditions with the same
lastTransitionTime; then the switch runs on to Ready and ends in the baseline's final world.

Each point runs the real hooks (in process) with the real chart and node steps, on one master and
one worker. Every point of every transition runs; nothing is sampled.
"""

from __future__ import annotations

import os
import time

import pytest

from .switching import differences, request, switch, world

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
# After a restart at tick k the next world must equal the baseline's world at k+1, byte for byte;
# from there on the run is the baseline's run (the same inputs to the same pure code), so reaching
# Ready again is implied. `make fuzz` (HYPOTHESIS_PROFILE=fuzz) also runs every restarted branch on
# to Ready and compares its final world, which costs a whole switch per point.
DEEP = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"
POINTS: list[tuple[str, int, float]] = []


def _run_baseline(sim, to: str, tmp_path) -> tuple[list[dict], list[dict], int]:
    """The switch without restart: checkpoints and worlds after every tick, and the tick count."""
    points, worlds = [sim.checkpoint(tmp_path / "cp-0")], [world(sim)]
    *aborted, final = to.split("|")
    for part in aborted:
        expression, _, ticks = part.partition("@")
        sim.set_registry(request(sim, expression))
        for _ in range(int(ticks)):
            sim.step()
            points.append(sim.checkpoint(tmp_path / f"cp-{len(points)}"))
            worlds.append(world(sim))
    registry = request(sim, final)
    sim.set_registry(registry)
    from .switching import reached

    if registry is not None and registry.get("mode") == "Local":
        sim.registries.local_filled = True
    for _ in range(MAX_TICKS):
        sim.step()
        points.append(sim.checkpoint(tmp_path / f"cp-{len(points)}"))
        worlds.append(world(sim))
        if reached(sim, registry):
            return points, worlds, registry
    raise AssertionError(f"baseline switch {to} did not finish")


def _shape(sim) -> tuple:
    """The final world up to generated secret material (which a later tick may generate anew)."""
    state = sim.state()
    objects = sorted("/".join((o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]))
                     for o in sim.store.objects() if o["kind"] != "Pod" or "deckhouse" not in o["metadata"]["name"])
    return (state.get("mode"), state.get("target_mode"), [(c["type"], c["status"]) for c in state["conditions"]],
            objects)


@pytest.mark.parametrize(("source", "to"), TRANSITIONS, ids=[f"{s}->{t}" for s, t in TRANSITIONS])
def test_property_restart_at_every_tick_changes_nothing(make_sim, tmp_path, source, to):
    started = time.monotonic()
    sim = make_sim()
    for expression in FROM[source]:
        switch(sim, request(sim, expression))
    points, worlds, registry = _run_baseline(sim, to, tmp_path)
    final = _shape(sim)
    from .switching import reached

    for k in range(len(points) - 1):
        sim.restore(points[k])
        sim.restart_deckhouse()
        sim.step()
        changed = differences(worlds[k + 1], world(sim))
        assert not changed, f"{source} -> {to}: a restart at tick {k} of {len(points) - 1} changed {changed}"
        if not DEEP:
            continue
        for _ in range(MAX_TICKS):
            if reached(sim, registry):
                break
            sim.step()
        assert reached(sim, registry), f"{source} -> {to}: no Ready after a restart at tick {k}"
        assert _shape(sim) == final, f"{source} -> {to}: restart at tick {k}: another final state"
    POINTS.append((f"{source} -> {to}", len(points) - 1, time.monotonic() - started))
    print(f"\n{source} -> {to}: {len(points) - 1} restart points, {time.monotonic() - started:.1f} s")

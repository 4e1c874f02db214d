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
"""Switches that used to stall or churn, replayed on the simulator (one master, one worker)."""

from __future__ import annotations

import base64

from .switching import reached, request, switch

PROXY_DEPLOYMENT = ("Deployment", "d8-system", "registry-incluster-proxy")


def _conditions(sim) -> dict[str, dict]:
    return {c["type"]: c for c in sim.state().get("conditions", [])}


def _step_until(sim, predicate, limit=60, what="") -> int:
    for tick in range(1, limit + 1):
        sim.step()
        if predicate():
            return tick
    raise AssertionError(f"never reached: {what}: {_conditions(sim)}")


def _deleted(sim, key, since: int) -> bool:
    return ("Deleted", key) in sim.store.events[since:]


def test_license_change_then_restart_mid_switch_keeps_the_in_cluster_proxy(make_sim):
    """Unmanaged -> Direct up to DeckhouseRegistrySwitchReady, new license, Deckhouse restart: the
    proxy that deckhouse-registry already points at must keep running until the new one is up."""
    sim = make_sim()
    direct = request(sim, "mode=Direct")
    sim.set_registry(direct)
    _step_until(sim, lambda: _conditions(sim).get("DeckhouseRegistrySwitchReady", {}).get("status") == "True",
                what="DeckhouseRegistrySwitchReady")
    assert sim.store.get(*PROXY_DEPLOYMENT) is not None
    mark = len(sim.store.events)
    renewed = request(sim, "mode=Direct,direct.license=other-license-0001")
    sim.set_registry(renewed)
    sim.restart_deckhouse()
    for _ in range(60):
        sim.step()
        assert sim.store.get(*PROXY_DEPLOYMENT) is not None, f"in-cluster proxy gone at tick {sim.tick}"
        if reached(sim, renewed):
            break
    assert reached(sim, renewed)
    assert not _deleted(sim, PROXY_DEPLOYMENT, mark)


def test_credential_change_in_direct_converges_and_a_restart_then_changes_nothing(make_sim):
    sim = make_sim()
    switch(sim, request(sim, "mode=Direct"))
    switch(sim, request(sim, "mode=Direct,direct.license=other-license-0001"), max_ticks=30)
    config = sim.store.get("Secret", "d8-system", "registry-incluster-proxy-config")
    deployment = sim.store.get(*PROXY_DEPLOYMENT)
    conditions = _conditions(sim)
    sim.restart_deckhouse()
    for _ in range(4):
        sim.step()
    assert sim.store.get("Secret", "d8-system", "registry-incluster-proxy-config")["data"] == config["data"], \
        "a restart re-rendered the in-cluster proxy config"
    assert sim.store.get(*PROXY_DEPLOYMENT)["metadata"]["generation"] == deployment["metadata"]["generation"]
    assert _conditions(sim) == conditions, "a restart changed conditions (lastTransitionTime included)"


def test_restart_in_a_finished_mode_keeps_every_condition(make_sim):
    """addon-operator runs the orchestrator's Synchronization before checker_init restores the
    checker: that run must not flip RegistryContainsRequiredImages or Ready."""
    sim = make_sim()
    for expression in ("mode=Proxy", "mode=Direct"):
        switch(sim, request(sim, expression))
        conditions = _conditions(sim)
        done = len(sim.harness.results)
        sim.restart_deckhouse()
        sim.step()
        assert _conditions(sim) == conditions
        logs = [log for name, result in sim.harness.results[done:] if name == "orchestrator.py"
                for log in result.logs]
        assert "State not initialized, trying restore from secret" in [log.get("msg") for log in logs]
        assert not [log for log in logs if log.get("msg") == "Stage ready"], "nothing became ready again"


def test_revert_while_final_is_half_applied_goes_through_the_transitional_config(make_sim):
    sim = make_sim()
    unmanaged = request(sim, "mode=Unmanaged")
    switch(sim, unmanaged)
    sim.set_registry(request(sim, "mode=Direct"))
    _step_until(sim, lambda: _conditions(sim).get("TransitionContainerdConfigReady", {}).get("status") == "True",
                what="transitional config everywhere")
    node = sim.store.get("Node", "", "worker-1")
    from d8registry.sim.engine import _set_ready

    _set_ready(node, False)
    sim.store.apply(node)
    _step_until(sim, lambda: "FinalContainerdConfigReady" in _conditions(sim), what="final config published")
    assert sim.state()["node_config"]["containerd"]["kind"] == "Final"
    sim.set_registry(unmanaged)   # roll back: master-0 is applying the final config, worker-1 is down
    published = []
    for _ in range(40):
        sim.step()
        published.append(sim.state()["node_config"]["containerd"]["kind"])
        live = sim.store.get("Secret", "d8-system", "deckhouse-registry")["data"]
        if base64.b64decode(live["address"]).decode() == "registry.deckhouse.ru":
            # deckhouse-registry is back at the upstream: every node must have its hosts dir
            for name in ("master-0", "worker-1"):
                hosts = sim.node_root(name) / "etc/containerd/registry.d/registry.deckhouse.ru/hosts.toml"
                assert hosts.exists(), f"{name} cannot reach the upstream deckhouse-registry points at"
        if "FinalContainerdConfigReady" in _conditions(sim):
            break
    assert "Transitional" in published, "the rollback skipped the transitional config"
    node = sim.store.get("Node", "", "worker-1")
    _set_ready(node, True)
    sim.store.apply(node)
    _step_until(sim, lambda: reached(sim, unmanaged), what="rollback done")


def test_custom_containerd_on_a_containerd_2_node_blocks_the_preflight(make_sim):
    from d8registry.sim.engine import Faults

    sim = make_sim(faults=Faults(custom_containerd={"worker-1"}))
    config = (sim.node_root("worker-1") / "etc/containerd/config.toml").read_text()
    assert "io.containerd.cri.v1.images" in config and "io.containerd.grpc.v1.cri" not in config
    sim.set_registry(request(sim, "mode=Direct"))
    for _ in range(6):
        sim.step()
    preflight = _conditions(sim)["ContainerdConfigPreflightReady"]
    assert preflight["status"] == "False" and "worker-1: has custom toml merge" in preflight["message"]


def test_refused_transition_is_not_logged_as_a_ready_stage(make_sim):
    sim = make_sim()
    switch(sim, request(sim, "mode=Local"))
    done = len(sim.harness.results)
    sim.set_registry(request(sim, "mode=Proxy"))
    for _ in range(2):
        sim.step()
    assert _conditions(sim)["ErrTransitionNotSupported"]["status"] == "True"
    logs = [log for name, result in sim.harness.results[done:] if name == "orchestrator.py" for log in result.logs]
    assert not [log for log in logs if log.get("msg") == "Stage ready"], logs

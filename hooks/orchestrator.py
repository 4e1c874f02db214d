#!/usr/bin/env python3
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
"""Orchestrator hook: moves the cluster to the registry mode of ModuleConfig 'deckhouse'.

Binding config and wiring only; the logic lives in hooks/lib (stages.py is the state machine).
"""

from lib import clock, intake, metrics, runner, settings, snapshots, stages
from lib.enums import KIND_FINAL, KIND_NONE, KIND_TRANSITIONAL
from lib.log import Logger
from lib.values import get_path, set_path

QUEUE = "/modules/registry/orchestrator"
GROUP = "orchestrator"
NAMESPACE = {"nameSelector": {"matchNames": ["d8-system"]}}
READY = '([.status.conditions[]? | select(.type == "Ready") | .status][0] == "True")'


def _binding(name: str, kind: str, jq: str, api_version: str = "v1", **extra) -> dict:
    binding = {"name": name, "group": GROUP, "queue": QUEUE, "apiVersion": api_version, "kind": kind,
               "keepFullObjectsInMemory": False, "jqFilter": jq}
    binding.update(extra)
    return binding


CONFIG = {
    "configVersion": "v1",
    "beforeHelm": 10,
    "kubernetes": [
        _binding("module_config", "ModuleConfig",
                 "{generation: .metadata.generation, registry: (.spec.settings.registry // null)}",
                 api_version="deckhouse.io/v1alpha1", nameSelector={"matchNames": ["deckhouse"]}),
        _binding("state_secrets", "Secret",
                 '{name: .metadata.name, data: .data, '
                 'applied: ((.metadata.annotations // {}) | has("registry.deckhouse.io/is-applied"))}',
                 namespace=NAMESPACE, executeHookOnEvent=[],
                 nameSelector={"matchNames": ["registry-state", "registry-private-state", "registry-pki",
                                              "registry-user-ro", "registry-user-rw", "registry-user-mirror-puller",
                                              "registry-user-mirror-pusher", "registry-init"]}),
        _binding("reusable_certs", "Secret",
                 '{name: .metadata.name, crt: .data["front.crt"], key: .data["front.key"]}',
                 namespace=NAMESPACE, executeHookOnEvent=[],
                 labelSelector={"matchLabels": {"app": "registry"}, "matchExpressions": [
                     {"key": "type", "operator": "In",
                      "values": ["registry-node-services-config", "registry-incluster-proxy-config"]}]}),
        _binding("deckhouse_registry", "Secret", ".data", namespace=NAMESPACE,
                 nameSelector={"matchNames": ["deckhouse-registry"]}),
        _binding("nodes", "Node",
                 '{name: .metadata.name, '
                 'ip: ([.status.addresses[]? | select(.type == "InternalIP") | .address][0] // ""), '
                 'master: ((.metadata.labels // {}) | has("node-role.kubernetes.io/control-plane")), '
                 f"ready: {READY}, "
                 'version: ((.metadata.annotations // {})["registry.deckhouse.io/version"] // "unknown"), '
                 'containerdConfig: ((.metadata.labels // {})["node.deckhouse.io/containerd-config-registry"] // "")}'),
        _binding("nodeservices_pods", "Pod",
                 f"{{node: .spec.nodeName, ready: {READY}, "
                 'configVersion: ((.metadata.annotations // {})["registry.deckhouse.io/config-version"] // ""), '
                 'mirror: ([.metadata.ownerReferences[]? | select(.kind == "Node")] | length > 0)}',
                 namespace=NAMESPACE,
                 labelSelector={"matchLabels": {"app": "registry", "component": "registry-service",
                                                "type": "node-services"}}),
        _binding("incluster_proxy", "Deployment",
                 '{version: ((.metadata.annotations // {})["registry.deckhouse.io/version"] // ""), '
                 "generation: (.metadata.generation // 0), observedGeneration: (.status.observedGeneration // 0), "
                 "replicas: (.spec.replicas // 1), total: (.status.replicas // 0), "
                 "updated: (.status.updatedReplicas // 0), ready: (.status.readyReplicas // 0), "
                 "available: (.status.availableReplicas // 0)}",
                 api_version="apps/v1", namespace=NAMESPACE,
                 nameSelector={"matchNames": ["registry-incluster-proxy"]}),
        _binding("deckhouse_pods", "Pod",
                 f"{{name: .metadata.name, ready: {READY}, "
                 'registryVersion: ((.metadata.annotations // {})["checksum/registry-version"] // "")}',
                 namespace=NAMESPACE, labelSelector={"matchLabels": {"app": "deckhouse", "leader": "true"}}),
        _binding("node_group_configurations", "NodeGroupConfiguration",
                 '{name: .metadata.name, '
                 'version: ((.metadata.annotations // {})["registry.deckhouse.io/config-version"] // "")}',
                 api_version="deckhouse.io/v1alpha1",
                 nameSelector={"matchNames": ["d8-registry-containerd.sh", "d8-registry-node-lb.sh",
                                              "d8-registry-nodeservices.sh"]}),
    ],
}

MODES = ("Unmanaged", "Direct", "Proxy", "Local")
ORCHESTRATOR = "registry.internal.orchestrator"


def _module_config(snaps: dict) -> tuple[object, int | None]:
    items = snaps.get("module_config") or []
    if not items or not items[0].get("filterResult"):
        return None, None
    result = items[0]["filterResult"]
    return result.get("registry"), result.get("generation")


def _lb_image(global_values: dict) -> str:
    base = get_path(global_values, "modulesImages.registry.base", "")
    digest = get_path(global_values, "modulesImages.digests.registry.registryNginx", "")
    return f"{base}@{digest}" if base and digest else ""


def _images(global_values: dict) -> dict:
    from lib import dataplane

    return dataplane.image_refs(get_path(global_values, "modulesImages.registry.base", ""),
                                get_path(global_values, "modulesImages.digests.registry", {}))


def _proxy_env(global_values: dict) -> list[dict]:
    from lib import dataplane

    return dataplane.proxy_env(get_path(global_values, "clusterConfiguration", {}))


def _inputs(ctx, verdict, generation) -> stages.Inputs:
    snaps = ctx.snapshots
    global_values = ctx.values.get("global", {})
    return stages.Inputs(
        verdict=verdict,
        generation=generation,
        now_seconds=clock.now_seconds(),
        bootstrapped=bool(get_path(global_values, "clusterIsBootstrapped", False)),
        cluster_domain=get_path(global_values, "discovery.clusterDomain", "cluster.local") or "cluster.local",
        nodes=snapshots.nodes(snaps),
        mirror_pods=snapshots.mirror_pods(snaps),
        incluster=snapshots.incluster_deployment(snaps),
        deckhouse_pods=snapshots.deckhouse_pods(snaps),
        live_registry=_live_registry(snaps),
        ngc_versions=snapshots.ngc_versions(snaps),
        checker_state=get_path(ctx.values, "registry.internal.checker.state", {}) or {},
        checker_restored=bool(get_path(ctx.values, "registry.internal.checker.initialized", False)
                              or (get_path(ctx.values, "registry.internal.checker.state", {}) or {}).get("version")),
        reusable_certs=_reusable_certs(snaps),
        lb_image=_lb_image(global_values),
        images=_images(global_values),
        proxy_env=_proxy_env(global_values),
    )


def _live_registry(snaps: dict) -> dict | None:
    from lib import deckhouse_registry

    return deckhouse_registry.decode_live(snapshots.deckhouse_registry_data(snaps))


def _reusable_certs(snaps: dict) -> dict:
    from lib import deckhouse_registry

    out = {}
    for name, item in snapshots.secrets(snaps, "reusable_certs").items():
        decoded = deckhouse_registry.decode_live({"front.crt": item.get("crt"), "front.key": item.get("key")})
        if decoded:
            out[name] = decoded
    return out


def _restore(ctx, log: Logger, orchestrator: dict) -> dict:
    state = orchestrator.get("state") or {}
    if state.get("mode"):
        return state
    from lib import persist

    log.info("State not initialized, trying restore from secret")
    try:
        return persist.restore(snapshots.secrets(ctx.snapshots, "state_secrets"), _live_registry(ctx.snapshots))
    except persist.RestoreError as exc:
        log.error("Cannot restore state from secret", error=str(exc))
        raise


def _emit_metrics(ctx, outcome: stages.Outcome, input_valid: bool, inputs: stages.Inputs) -> None:
    state = outcome.state
    collect = ctx.metrics.collect
    collect(metrics.expire())
    for mode in MODES:
        collect(metrics.gauge("d8_registry_mode", 1 if state["mode"] == mode else 0, {"mode": mode}))
    collect(metrics.gauge("d8_registry_target_mode", 1, {"mode": state["target_mode"],
                                                         "legacy": "true" if state["target_legacy"] else "false"}))
    collect(metrics.gauge("d8_registry_ready", 1 if outcome.ready else 0))
    collect(metrics.gauge("d8_registry_input_valid", 1 if input_valid else 0))
    collect(metrics.gauge("d8_registry_transition_not_supported", 1 if outcome.transition_not_supported else 0))
    switch_started = 0.0
    for condition in state["conditions"]:
        collect(metrics.gauge("d8_registry_condition_status", 1 if condition["status"] == "True" else 0,
                              {"type": condition["type"], "reason": condition.get("reason", "")}))
        moment = clock.timestamp(condition["lastTransitionTime"]) if condition.get("lastTransitionTime") else 0.0
        collect(metrics.gauge("d8_registry_condition_last_transition_timestamp_seconds", moment,
                              {"type": condition["type"]}))
        if condition["type"] == "Ready" and condition["status"] == "False":
            switch_started = moment
    collect(metrics.gauge("d8_registry_switch_started_timestamp_seconds", switch_started))
    version = state.get("node_config", {}).get("containerd", {}).get("version", "")
    kind = state.get("node_config", {}).get("containerd", {}).get("kind", KIND_NONE)
    collect(metrics.gauge("d8_registry_nodes_total", len(inputs.nodes)))
    converged = [n for n in inputs.nodes if n.version == version]
    if kind in (KIND_TRANSITIONAL, KIND_FINAL):
        stage = "transition" if kind == KIND_TRANSITIONAL else "final"
        collect(metrics.gauge("d8_registry_nodes_converged", len(converged), {"stage": stage}))
    for node in inputs.nodes:
        collect(metrics.gauge("d8_registry_node_converged", 1 if node.version == version else 0, {"node": node.name}))


def main(ctx) -> None:
    log = Logger("orchestrator")
    raw, generation = _module_config(ctx.snapshots)
    env = settings.environment_from_globals(ctx.values.get("global", {}))
    orchestrator = get_path(ctx.values, ORCHESTRATOR, {}) or {}
    previous = _restore(ctx, log, orchestrator)
    verdict, key = intake.judge(raw, env, {**orchestrator, "state": previous})
    inputs = _inputs(ctx, verdict, generation)
    if not previous:
        from lib import persist

        inputs.adopt = persist.bootstrap_seed(snapshots.secrets(ctx.snapshots, "state_secrets"))
    # previous is this run's copy (in ctx.values, or restored), replaced by the outcome's state below
    outcome = stages.reconcile(previous, inputs, consume=True)
    for message, fields in outcome.events:
        (log.warn if message == "Invalid registry settings" else log.info)(message, **fields)
    if outcome.registry_patch is not None:
        ctx.kubernetes.merge_patch(kind="Secret", namespace="d8-system", name="deckhouse-registry",
                                   patch=outcome.registry_patch)
        changed = sorted(outcome.registry_patch["data"])
        log.info("Deckhouse registry secret patched", keys=changed)
    if outcome.adopted:
        ctx.kubernetes.merge_patch(kind="Secret", namespace="d8-system", name="registry-init",
                                   patch={"metadata": {"annotations": {"registry.deckhouse.io/is-applied": ""}}})
    set_path(ctx.values, f"{ORCHESTRATOR}.input",
             intake.remember(key, verdict, not outcome.transition_not_supported))
    set_path(ctx.values, f"{ORCHESTRATOR}.state", outcome.state)
    set_path(ctx.values, f"{ORCHESTRATOR}.hash", stages.target_hash(outcome.state))
    set_path(ctx.values, f"{ORCHESTRATOR}.ready", outcome.ready)
    set_path(ctx.values, "registry.internal.checker.params", outcome.checker_params)
    _emit_metrics(ctx, outcome, verdict.valid, inputs)


if __name__ == "__main__":
    runner.run(main, CONFIG, cyclic_gc=False)  # one short, socket-free run: see runner.run

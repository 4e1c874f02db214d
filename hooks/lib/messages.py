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
"""User-visible condition messages (SPEC 4.5), reproduced exactly; one function per message shape."""

from __future__ import annotations

from collections.abc import Iterable

MAX_LINES = 10


def short_version(version: str | None) -> str:
    if not version or version == "unknown":
        return "unknown"
    return version[:8] + "\u2026"


def capped(lines: list[str]) -> list[str]:
    """At most ten list lines, then a tab-indented count of the rest."""
    if len(lines) <= MAX_LINES:
        return lines
    return lines[:MAX_LINES] + [f"\t...and {len(lines) - MAX_LINES} more"]


def join(lines: Iterable[str]) -> str:
    return "\n".join(lines)


def transitioning(target_mode: str) -> str:
    return f"Transitioning to {target_mode}"


def bootstrap_hold(target_mode: str) -> str:
    return f"Waiting for the cluster bootstrap to complete before switching to {target_mode}"


def transition_not_supported(source: str, target: str) -> str:
    return f"mode transition from {source} to {target} not supported"


PREFLIGHT_HEADER = "Check current nodes configuration"


def preflight_unready(total: int, problems: list[tuple[str, str]]) -> str:
    texts = {
        "custom": "has custom toml merge containerd configuration",
        "unknown": "unknown containerd configuration, waiting...",
    }
    lines = [f"- {node}: {texts[kind]}" for node, kind in problems]
    return join([PREFLIGHT_HEADER, f"{len(problems)}/{total} node(s) Unready:", *capped(lines)])


def preflight_ready_existing() -> str:
    return join([PREFLIGHT_HEADER, "Configuration from registry module already exists."])


def preflight_ready_all(total: int) -> str:
    return join([PREFLIGHT_HEADER, f"All {total} node(s) Ready to configure."])


APPLYING_HEADER = "Applying configuration to nodes"


def config_not_rendered() -> str:
    return join([APPLYING_HEADER, "Creating Managed configuration..."])


def nodes_waiting(total: int, waiting: list[tuple[str, str, str]]) -> str:
    """waiting = (node, current version, desired version)."""
    ready = total - len(waiting)
    lines = [f'- {node}: "{short_version(cur)}" \u2192 "{short_version(new)}"' for node, cur, new in waiting]
    return join([APPLYING_HEADER, f"{ready}/{total} node(s) ready. Waiting:", *capped(lines)])


def nodes_updated(total: int, version: str) -> str:
    return f"All {total} node(s) updated to version {short_version(version)}."


NODE_SERVICES_REASONS = {
    "not_ready": "node is not Ready",
    "no_ip": "node has no IPv4 InternalIP",
}


def node_services_waiting(total: int, waiting: list[tuple[str, str, str]]) -> str:
    """waiting = (node, reason key or 'pod', expected version)."""
    lines = []
    for node, reason, version in waiting:
        if reason == "pod":
            text = f'services pod(s) is not Ready or config version mismatch (!= "{short_version(version)}")'
        else:
            text = NODE_SERVICES_REASONS[reason]
        lines.append(f"- {node}: {text}")
    return join([f"{total - len(waiting)}/{total} node(s) ready. Waiting:", *capped(lines)])


def cleanup_node_services_waiting(nodes: list[str]) -> str:
    return join(["Waiting for nodes cleanup:", *capped([f"- {node}" for node in nodes])])


INCLUSTER_DEPLOYING = "Deploying incluster-proxy..."
INCLUSTER_DONE = "Incluster-proxy deployed successfully."
INCLUSTER_STOPPING = "Stopping incluster-proxy..."
INCLUSTER_STOPPED = "Incluster-proxy stopped successfully."


def incluster_version_mismatch(current: str, expected: str) -> str:
    return f"Incluster-proxy deployment version mismatch: current {current}, expected {expected}."


def incluster_in_progress(status: str) -> str:
    return f"Incluster-proxy deploying in progress: {status}."


def deployment_status(name: str, observed: bool, replicas: int, updated: int, total: int, available: int) -> str | None:
    """The rollout texts kubectl prints; None when the Deployment is in the desired state."""
    if not observed:
        return "Deployment update is not yet observed by the controller"
    if updated < replicas:
        return f'Deployment "{name}": {updated} of {replicas} Pods have been updated to the latest specification'
    if total > updated:
        return f'Deployment "{name}": {total - updated} outdated Pods are still running'
    if available < updated:
        return f'Deployment "{name}": {available} of {updated} updated Pods are currently available'
    return None


def deployment_ready(name: str) -> str:
    return f'Deployment "{name}" is in the desired state'


SWITCH_UPDATING = "Updating registry for deckhouse components"
SWITCH_APPLYING = "Applying new registry to deckhouse-controller"
SWITCH_WAITING_POD = "Waiting for deckhouse-controller pod"
SWITCH_WAITING_READY = "Waiting for deckhouse-controller to become ready"

CHECKER_INITIALIZING = "Initializing"

# Refusals of the admission policy (SPEC 3.7); templates/admission/policies.yaml carries the same texts
# (tests/templates/test_admission.py holds them equal).
ADMISSION_BOOTSTRAP = "registry: settings cannot be changed until the cluster bootstrap is complete."
ADMISSION_STATIC = "registry: modes 'Proxy' and 'Local' are supported only in static clusters (clusterType: Static)."
ADMISSION_LOCAL_PROXY = "registry: switching between 'Local' and 'Proxy' is only possible through 'Direct' or 'Unmanaged'."
ADMISSION_LEGACY_FROM_LOCAL = (
    "registry: switching from 'Local' to the non-configurable 'Unmanaged' mode is not supported; "
    "use 'Direct' or a configurable 'Unmanaged' first."
)
ADMISSION_MODE_ENUM = "registry: 'mode' must be one of Unmanaged, Direct, Proxy, Local."
ADMISSION_DISABLE = "registry: the module can be disabled only in 'Unmanaged' mode; switch to 'Unmanaged' first."

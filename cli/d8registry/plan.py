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
"""'plan': what a registry switch will do, shown before anything changes.

The switch is played on an in-memory copy of the cluster with the real hooks, chart and node steps;
the plan reports the admission verdict, the stages, every node's containerd hosts files at each
phase (current, transitional, final), static pod changes, and the object changes the chart makes.

Alike nodes (alike.py: equal but for name, hostname label and addresses; never masters) play the switch
through one representative per group, so a 1,000-node cluster plays as fast as a handful of nodes; the
plan names every node of a group under its representative. When a representative's files or any object
name it, the group is split and the switch played again. --all-nodes plays every node on its own.
"""

from __future__ import annotations

import difflib
import functools
import io
import re
import textwrap
from pathlib import Path

from . import alike
from .cluster import Cluster
from .sim.engine import Simulator
from .sim.run import _hosts, cluster_registry

WATCHED = ("etc/containerd/registry.d", "etc/kubernetes/manifests")
STAGE_TITLES = {
    "Direct": ["RegistryContainsRequiredImages", "ContainerdConfigPreflightReady", "TransitionContainerdConfigReady",
               "InClusterProxyReady", "DeckhouseRegistrySwitchReady", "FinalContainerdConfigReady",
               "CleanupNodeServices (when node services run)"],
    "Proxy": ["RegistryContainsRequiredImages", "ContainerdConfigPreflightReady", "NodeServicesReady",
              "TransitionContainerdConfigReady", "DeckhouseRegistrySwitchReady", "FinalContainerdConfigReady",
              "CleanupInClusterProxy (when the in-cluster proxy runs)"],
    "Local": ["ContainerdConfigPreflightReady", "NodeServicesReady", "RegistryContainsRequiredImages",
              "TransitionContainerdConfigReady", "DeckhouseRegistrySwitchReady", "FinalContainerdConfigReady",
              "CleanupInClusterProxy (when the in-cluster proxy runs)"],
    "Unmanaged": ["RegistryContainsRequiredImages", "ContainerdConfigPreflightReady", "TransitionContainerdConfigReady",
                  "DeckhouseRegistrySwitchReady", "FinalContainerdConfigReady",
                  "CleanupNodeServices (when node services run)", "CleanupInClusterProxy (when the in-cluster proxy runs)"],
}


_BASIC = re.compile(r"Basic [A-Za-z0-9+/=]+")
_AUTH = re.compile(r'^(\s*auth\s*=\s*)"[^"]*"', re.MULTILINE)


def redact_hosts(text: str) -> str:
    """The pull credential is the one secret hosts.toml may hold; the plan still never prints it."""
    return _AUTH.sub(r'\1"****"', _BASIC.sub("Basic ****", text))


def _node_files(sim: Simulator, node: str) -> dict[str, str]:
    root = sim.node_root(node)
    files = {}
    for watched in WATCHED:
        base = root / watched
        for path in sorted(base.rglob("*")) if base.exists() else []:
            if path.is_file() and not path.name.startswith("."):
                files[str(path.relative_to(root))] = redact_hosts(path.read_text(errors="replace"))
    return files


def _snapshot(sim: Simulator) -> dict[str, dict[str, str]]:
    return {n["metadata"]["name"]: _node_files(sim, n["metadata"]["name"]) for n in sim.store.list("Node")}


def _diff(before: dict[str, str], after: dict[str, str], label_a: str, label_b: str) -> list[str]:
    lines = []
    for path in sorted(set(before) | set(after)):
        if before.get(path) == after.get(path):
            continue
        lines += _file_diff(path, before.get(path), after.get(path), label_a, label_b)
    return lines


@functools.lru_cache(maxsize=4096)
def _file_diff(path: str, old: str | None, new: str | None, label_a: str, label_b: str) -> tuple[str, ...]:
    """The lines for one changed file; nodes of one group share their files, so each pair is diffed once."""
    verb = "added" if old is None else "removed" if new is None else "changed"
    if path.startswith("etc/kubernetes/manifests"):
        return (f"    static pod manifest /{path} {verb}",)
    if path.endswith(".crt"):
        return (f"    CA file /{path} {verb}",)
    diff = difflib.unified_diff((old or "").splitlines(), (new or "").splitlines(),
                                f"{label_a}:/{path}", f"{label_b}:/{path}", lineterm="")
    return tuple("    " + line for line in diff)


def _object_keys(sim: Simulator) -> dict[tuple, str]:
    import json

    return {key: json.dumps(sim.store.get(*key), sort_keys=True, default=str) for key in sim.helm_keys}


def _print_push_endpoint(sim: Simulator, out) -> None:
    """Where `d8 mirror push` goes in Local mode (SPEC 5.8) and where the rw password is; never the password."""
    ingress = sim.store.get("Ingress", "d8-system", "registry")
    if ingress is None:
        return
    host = ingress["spec"]["rules"][0]["host"]
    scheme = "https" if ingress["spec"].get("tls") else "http (TLS terminated in front of the Ingress, or none)"
    print("Push endpoint (Local):", file=out)
    print(f"  {host}/system/deckhouse over {scheme}, user rw", file=out)
    print("  password: d8 k -n d8-system get secret registry-user-rw -o jsonpath='{.data.password}' | base64 -d",
          file=out)


def _stored_registry(cluster: Cluster) -> dict | None:
    """The registry section the API server holds now; None when ModuleConfig 'deckhouse' does not exist."""
    config = cluster.module_config()
    if config is None:
        return None
    registry = ((config.get("spec") or {}).get("settings") or {}).get("registry")
    return registry if registry is not None else {}


def _alike_lines(members: list[str]) -> list[str]:
    return textwrap.wrap(" ".join(members), width=110, initial_indent="    alike: ", subsequent_indent="    alike: ",
                         break_on_hyphens=False)


def plan(module_dir: Path, cluster: Cluster, registry: dict | None, out, *, all_nodes: bool = False) -> int:
    """Print the plan; alike nodes play through a representative unless all_nodes (module docstring)."""
    filters = [] if all_nodes else alike.node_filters(Path(module_dir))
    single: set[str] = set()
    while True:
        groups = {} if all_nodes else alike.groups(cluster, filters, single)
        buffer = io.StringIO()
        code, leaked = _play(module_dir, alike.reduced(cluster, groups), registry, buffer, groups,
                             sum(1 for o in cluster.objects if o.get("kind") == "Node"))
        if not leaked:
            out.write(buffer.getvalue())
            return code
        # a representative's outcome names it: its group cannot share it, so play those nodes one by one
        for representative in leaked:
            single.update([representative, *groups[representative]])


def _play(module_dir: Path, cluster: Cluster, registry: dict | None, out, groups: dict[str, list[str]],
          total: int) -> tuple[int, list[str]]:
    from lib import admission, settings

    env = settings.environment_from_globals(cluster.globals)
    verdict = settings.evaluate(registry, env)
    target = verdict.params["mode"] if verdict.valid else None
    sim = Simulator(module_dir, cluster, in_process=True,
                    registry_hosts=_hosts([registry, cluster_registry(cluster)]))
    try:
        sim.step()  # the current state: hooks, chart and node steps as they are now
        state = sim.state()
        mode = state.get("mode", "Unmanaged")
        # the same answer the admission policy gives `kubectl apply` (tests/apiserver holds them equal)
        refusal = admission.refusal(_stored_registry(cluster), registry, admission.params(state, sim.globals))
        print("Admission:", file=out)
        if refusal:
            print(f"  refused by kubectl apply: {refusal}", file=out)
        if not verdict.valid:
            if not refusal:
                print("  accepted by kubectl apply, but the module refuses the settings (InvalidConfiguration):",
                      file=out)
            for error in verdict.errors:
                print(f"  - {error}", file=out)
            return 2, []
        if refusal:
            return 3, []
        label = settings.mode_label(target, verdict.params["legacy"])
        print(f"  allowed: {mode} -> {label}", file=out)
        if mode == "Unmanaged" and target in ("Direct", "Proxy", "Local"):
            print("  warning: the first switch into a managed mode changes every DKP image reference to "
                  "registry.d8-system.svc:5001/system/deckhouse, so all DKP components restart once", file=out)
        if mode in ("Direct", "Proxy", "Local") and target == "Unmanaged":
            print("  warning: leaving the managed modes changes every DKP image reference back, so all DKP "
                  "components restart once", file=out)
        print("Stages:", file=out)
        for number, title in enumerate(STAGE_TITLES[target], 1):
            print(f"  {number}. {title}", file=out)

        phases = [("current", _snapshot(sim))]
        objects_before = _object_keys(sim)
        listings = [sim.store.objects()]
        sim.set_registry(registry)
        if target == "Local":
            sim.registries.local_filled = True
        transitional_version, transitional = None, None
        for _ in range(120):
            sim.step()
            containerd = sim.state().get("node_config", {}).get("containerd", {})
            if containerd.get("kind") == "Transitional":
                transitional_version = containerd.get("version")
            applied = {(n["metadata"].get("annotations") or {}).get("registry.deckhouse.io/version")
                       for n in sim.store.list("Node")}
            if transitional is None and transitional_version and applied == {transitional_version}:
                transitional = _snapshot(sim)
            if sim.ready() and sim.state().get("mode") == target:
                break
        if transitional is not None:
            phases.append(("transitional", transitional))
        phases.append(("final", _snapshot(sim)))
        listings.append(sim.store.objects())
        nodes = {n["metadata"]["name"]: n for n in sim.store.list("Node")}
        leaked = [rep for rep in sorted(groups)
                  if alike.leaks(nodes[rep], [snap[rep] for _label, snap in phases], listings)]
        if leaked:
            return 0, leaked
        print("Nodes (files under /etc/containerd/registry.d and static pods):", file=out)
        for node in sorted(phases[0][1]):
            members = groups.get(node, [])
            print(f"  {node} and {len(members)} alike nodes:" if members else f"  {node}:", file=out)
            if members:
                print("\n".join(_alike_lines(members)), file=out)
            changed = False
            for (label_a, snap_a), (label_b, snap_b) in zip(phases, phases[1:], strict=False):
                lines = _diff(snap_a[node], snap_b[node], label_a, label_b)
                if lines:
                    changed = True
                    print(f"   {label_a} -> {label_b}:", file=out)
                    print("\n".join(lines), file=out)
            if not changed:
                print("    no change", file=out)
        objects_after = _object_keys(sim)
        print("Objects rendered by the chart:", file=out)
        for key in sorted(set(objects_before) | set(objects_after)):
            kind, namespace, name = key
            where = f"{namespace}/{name}" if namespace else name
            if key not in objects_before:
                print(f"  create {kind} {where}", file=out)
            elif key not in objects_after:
                print(f"  delete {kind} {where}", file=out)
            elif objects_before[key] != objects_after[key]:
                print(f"  update {kind} {where}", file=out)
        _print_push_endpoint(sim, out)
        print(f"Simulated: {sim.tick} ticks ({sim.tick * 10} s), reached "
              f"{'Ready' if sim.ready() else 'no Ready state'}.", file=out)
        if groups:
            print(f"Played {len(phases[0][1])} of {total} nodes: each group of alike nodes through its first node "
                  "(--all-nodes plays every node).", file=out)
        return 0, []
    finally:
        sim.close()

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
"""The simulation loop: the real module against modelled cluster controllers.

One tick is 10 simulated seconds. Each tick: controllers act (Deckhouse, Deployments, bashible
on every node running the rendered NodeGroupConfiguration steps unchanged (alike nodes share one
execution, sim/bashible.py), kubelet turning static
pod manifests into mirror pods), then every hook whose snapshots changed runs (Group/Event
contexts built with its own jqFilters), schedule bindings fire on simulated time, and when values
changed the module runs (beforeHelm hooks, Helm v3 render applied to the store, afterHelm).
"""

from __future__ import annotations

import base64
import copy
import json
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from .. import helm
from ..cluster import Cluster
from ..operator import bindings
from ..operator.module import ModuleHarness
from .bashible import Bashible, NodeRun
from .store import ObjectStore, clone, key_of

TICK = timedelta(seconds=10)
START = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)
STUBS = Path(__file__).resolve().parent / "stubs"
NAMESPACE = "d8-system"


@dataclass
class TimelineEntry:
    tick: int
    time: str
    kind: str
    text: str


@dataclass
class Faults:
    node_not_ready: dict[int, list[str]] = field(default_factory=dict)
    node_ready: dict[int, list[str]] = field(default_factory=dict)
    restart_deckhouse: set[int] = field(default_factory=set)
    custom_containerd: set[str] = field(default_factory=set)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def _restarts(commands_log: Path) -> int:
    """How many times the node steps asked systemd to restart containerd (the stub records every call)."""
    if not commands_log.exists():
        return 0
    return sum(1 for line in commands_log.read_text().splitlines() if line.strip() == "systemctl restart containerd")


def _ready(obj: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def _set_ready(obj: dict, ready: bool) -> None:
    status = obj.setdefault("status", {})
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "Ready"]
    conditions.append({"type": "Ready", "status": "True" if ready else "False"})
    status["conditions"] = conditions


class NotIdempotent(AssertionError):
    """A module run repeated on its own output changed something (SPEC 4.2)."""


class Simulator:
    # on in every simulation: each module run is repeated on its own output and must change nothing
    check_idempotence = True

    def __init__(self, module_dir: Path, cluster: Cluster, *, workdir: Path | None = None,
                 in_process: bool = False, faults: Faults | None = None, progress=None,
                 registry_hosts: list[str] | None = None):
        from .registries import SimulatedRegistries

        self.module_dir = Path(module_dir)
        self.store = ObjectStore(cluster.objects)
        self.globals = copy.deepcopy(cluster.globals)
        self.faults = faults or Faults()
        self.progress = progress or (lambda _msg: None)
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="d8registry-sim-")
            workdir = Path(self._tmp.name)
        self.workdir = Path(workdir)
        self.tick = 0
        self.now = START
        master_ips = [a["address"] for n in self.store.list("Node")
                      if "node-role.kubernetes.io/control-plane" in (n["metadata"].get("labels") or {})
                      for a in (n.get("status") or {}).get("addresses") or [] if a.get("type") == "InternalIP"]
        hosts = sorted(set(registry_hosts or []))
        self.registries = SimulatedRegistries(hosts + master_ips)
        self._checker_env = {
            "REGISTRY_CHECKER_HOST_OVERRIDES": self.registries.overrides(hosts + [f"{ip}:5001" for ip in master_ips]),
            "REGISTRY_CHECKER_EXTRA_CA_FILE": str(self.registries.ca_file),
        }
        self.harness = ModuleHarness(self.module_dir, [], self.globals, in_process=in_process,
                                     env=self._hook_env())
        self.hook_configs = {hook: self.harness.config(hook) for hook in self.harness.hooks()}
        self.seen: dict[tuple[str, str], list] = {}
        self.helm_keys: set = set()
        self.applied_ngc: dict[str, dict[str, str]] = {}
        self.pod_ready_at: dict[str, int] = {}
        self.timeline: list[TimelineEntry] = []
        self.module_runs = 0
        self._last_conditions: dict[str, tuple] = {}
        self._kube_ops_done = 0
        self.bashible = Bashible(self.workdir, STUBS, self.node_root)
        self.node_runs: dict[str, NodeRun] = {}   # each node's latest bashible run
        # called with each node's NodeRun (its own, also when the execution was shared) after it is applied
        self.after_node_run: list = []
        self._manifests: dict[bytes, object] = {}
        self._filter_results: dict[tuple, object] = {}
        self._render_key, self._rendered = "", []
        # optional: told when Deckhouse moved to another registry, after each node's steps ran (and whether
        # they restarted containerd) and after each tick; the real data plane (sim/dataplane.py) follows the
        # nodes through it
        self.observer = None
        self._prepare_nodes()
        self._started = False
        self._adopt_running_deckhouse()

    def _adopt_running_deckhouse(self) -> None:
        """The example's Deckhouse pod already runs with the current deckhouse-registry."""
        from lib import deckhouse_registry

        secret = self.store.get("Secret", NAMESPACE, "deckhouse-registry")
        if secret is None:
            return
        checksum = deckhouse_registry.checksum({k: _unb64(v) for k, v in (secret.get("data") or {}).items()})
        for pod in self.store.list("Pod", NAMESPACE):
            if (pod["metadata"].get("labels") or {}).get("app") == "deckhouse":
                pod["metadata"].setdefault("annotations", {})["checksum/registry-version"] = checksum
                self.store.apply(pod)

    # -- environment -------------------------------------------------------------------------------
    def _hook_env(self) -> dict[str, str]:
        return {"REGISTRY_FAKE_NOW": self.now.strftime("%Y-%m-%dT%H:%M:%SZ"), **self._checker_env}

    def close(self) -> None:
        self.registries.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def node_root(self, node: str) -> Path:
        return self.workdir / "nodes" / node

    def _prepare_nodes(self) -> None:
        for node in self.store.list("Node"):
            name = node["metadata"]["name"]
            root = self.node_root(name)
            (root / "etc/containerd").mkdir(parents=True, exist_ok=True)
            (root / "etc/kubernetes/manifests").mkdir(parents=True, exist_ok=True)
            (root / "var/lib/bashible").mkdir(parents=True, exist_ok=True)
            (root / "var/lib/bashible/discovered-node-name").write_text(name + "\n")
            (root / "etc/kubernetes/kubelet.conf").write_text("# simulated\n")
            labels = node["metadata"].get("labels") or {}
            if "node-role.kubernetes.io/control-plane" in labels:
                (root / "etc/kubernetes/admin.conf").write_text("# simulated\n")
            version = (node["metadata"].get("annotations") or {}).get("node.deckhouse.io/containerd-config-version", "2")
            plugin = ('[plugins."io.containerd.grpc.v1.cri".registry]' if version == "2"
                      else "[plugins.'io.containerd.cri.v1.images'.registry]")
            config = f"version = {version}\n\n{plugin}\n"
            if name in self.faults.custom_containerd:
                # a user's mirror table in the layout of this node's containerd; the node-manager
                # already reports it, so the label says custom before any step of ours has run
                config += f'  {plugin[:-1]}.mirrors."docker.io"]\n    endpoint = ["https://mirror.example.com"]\n'
                node["metadata"].setdefault("labels", {})["node.deckhouse.io/containerd-config-registry"] = "custom"
                self.store.apply(node)
            (root / "etc/containerd/config.toml").write_text(config)

    # -- timeline ------------------------------------------------------------------------------------
    def note(self, kind: str, text: str) -> None:
        entry = TimelineEntry(self.tick, self.now.strftime("%H:%M:%S"), kind, text)
        self.timeline.append(entry)
        self.progress(entry)

    def state(self) -> dict:
        return self.harness.module_values.get("internal", {}).get("orchestrator", {}).get("state", {})

    def _record_conditions(self) -> None:
        # first two message lines: most messages are a header line followed by the detail
        current = {c["type"]: (c["status"], c.get("reason", ""), (c.get("message") or "").splitlines()[:2])
                   for c in self.state().get("conditions", [])}
        for type_, value in current.items():
            if self._last_conditions.get(type_) != value:
                status, reason, lines = value
                self.note("condition", f"{type_}={status} {reason} {' / '.join(lines)}".rstrip())
        self._last_conditions = current

    # -- hooks ---------------------------------------------------------------------------------------
    def _apply_kube_ops(self) -> None:
        for op in self.harness.kube_operations[self._kube_ops_done:]:
            if op.get("operation") == "MergePatch":
                self.store.merge_patch(op["kind"], op.get("namespace") or "", op["name"], op["mergePatch"])
            elif op.get("operation") in ("Create", "CreateOrUpdate", "CreateIfNotExists"):
                self.store.apply(op["object"])
            elif op.get("operation", "").startswith("Delete"):
                self.store.delete(op["kind"], op.get("namespace") or "", op["name"])
        self._kube_ops_done = len(self.harness.kube_operations)

    def _run_hook(self, hook: Path, contexts: list[dict]) -> bool:
        self.harness.objects = self.store.objects()
        self.harness.env.update(self._hook_env())
        before = clone(self.harness.module_values)
        self.harness.run(hook, contexts)
        self._apply_kube_ops()
        return self.harness.module_values != before

    def _filter_result(self, binding: dict, obj: dict):
        """What the binding's snapshot holds for obj (its jqFilter result, else the object). An object's
        resourceVersion changes with its content, so a result is reused until then (cleared on restore)."""
        if not binding.get("jqFilter"):
            return obj
        key = (binding["jqFilter"], *key_of(obj), obj["metadata"].get("resourceVersion"))
        if key not in self._filter_results:
            self._filter_results[key] = bindings.apply_jq_filter(binding["jqFilter"], obj)
        return self._filter_results[key]

    def _snapshot_changes(self) -> dict[Path, list[str]]:
        """Bindings whose jqFilter results changed since the hook last saw them."""
        objects = self.store.objects()
        changed: dict[Path, list[str]] = {}
        for hook, config in self.hook_configs.items():
            for binding in bindings.kube_bindings(config):
                selected = sorted((o for o in objects if bindings.binding_selects(binding, o)),
                                  key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))
                result = [self._filter_result(binding, obj) for obj in selected]
                key = (hook.name, binding["name"])
                if self.seen.get(key) != result:
                    if key in self.seen and binding.get("executeHookOnEvent", ["Added"]) != []:
                        changed.setdefault(hook, []).append(binding["name"])
                    self.seen[key] = result
        return changed

    def _dispatch_events(self) -> bool:
        values_changed = False
        for hook, names in self._snapshot_changes().items():
            config = self.hook_configs[hook]
            contexts, groups = [], set()
            objects = self.store.objects()
            for name in names:
                binding = next(b for b in bindings.kube_bindings(config) if b["name"] == name)
                if binding.get("group"):
                    if binding["group"] not in groups:
                        groups.add(binding["group"])
                        contexts.append(bindings.group_context(config, binding["group"], objects))
                else:
                    contexts.append({"binding": name, "type": "Synchronization",
                                     "objects": bindings.snapshot(binding, objects), "snapshots": {}})
            values_changed |= self._run_hook(hook, contexts)
        return values_changed

    def _schedules(self) -> bool:
        changed = False
        for hook, config in self.hook_configs.items():
            for schedule in config.get("schedule") or []:
                if self.tick % 3 == 0:  # every crontab here is "every 30 s"
                    changed |= self._run_hook(hook, [bindings.schedule_context(config, schedule["name"],
                                                                               self.store.objects())])
        return changed

    def module_run(self) -> None:
        self.module_runs += 1
        self.harness.objects = self.store.objects()
        self.harness.env.update(self._hook_env())
        if not self._started:
            # addon-operator on start: the Synchronization run of every kube hook, then the module
            # run with its beforeHelm hooks (orchestrator before checker_init restored anything)
            self.harness.synchronize()
            self._apply_kube_ops()
            self._snapshot_changes()
            self.harness.objects = self.store.objects()
            self._started = True
        seen = self.harness.objects
        ops_before = len(self.harness.kube_operations)
        self.harness.before_helm()
        rendered = self._render(self.harness.helm_values())
        if self.check_idempotence:
            self._check_idempotence(seen, ops_before, rendered)
        self._apply_kube_ops()
        keys = set()
        for obj in rendered:
            obj.setdefault("metadata", {}).setdefault("labels", {})
            if obj["kind"] not in ("Namespace",) and "namespace" not in obj["metadata"] and obj["kind"] in (
                    "Secret", "Service", "Deployment", "ConfigMap", "PodDisruptionBudget", "ServiceAccount"):
                obj["metadata"]["namespace"] = NAMESPACE
            keys.add(key_of(obj))
            self.store.apply(obj)
        for stale in self.helm_keys - keys:
            self.store.delete(*stale)
        self.helm_keys = keys
        self.harness.after_helm()
        self._apply_kube_ops()

    def _render(self, values: dict) -> list[dict]:
        """Helm v3 renders the chart; values equal to the last render's give that render again (the chart
        calls no random, time or lookup function: tests/templates/test_chart_determinism.py)."""
        key = json.dumps(values, sort_keys=True)
        if key != self._render_key:
            self._rendered, self._render_key = helm.render(self.module_dir, values), key
        return clone(self._rendered)

    def _check_idempotence(self, seen: list[dict], ops_before: int, rendered: list[dict]) -> None:
        """Hooks are pure functions of snapshots and values (SPEC 4.2): a second module run on the
        same snapshots and on the values the first one produced must give byte-identical values,
        Kubernetes operations and rendered objects. Anything else fails the simulation loudly."""
        def canonical(obj) -> str:
            return json.dumps(obj, sort_keys=True, separators=(",", ":"))

        first_values = canonical(self.harness.module_values)
        first_ops = canonical(self.harness.kube_operations[ops_before:])
        first_rendered = canonical(rendered)
        self.harness.objects = seen
        ops_mark = len(self.harness.kube_operations)
        self.harness.before_helm()
        second_ops = canonical(self.harness.kube_operations[ops_mark:])
        del self.harness.kube_operations[ops_mark:]
        problems = []
        if canonical(self.harness.module_values) != first_values:
            problems.append("values")
        if second_ops != first_ops:
            problems.append("Kubernetes operations")
        if not problems and canonical(self._render(self.harness.helm_values())) != first_rendered:
            problems.append("rendered objects")
        if problems:
            raise NotIdempotent(f"tick {self.tick}: a second module run on unchanged inputs changed "
                                f"{', '.join(problems)}")

    # -- controllers -----------------------------------------------------------------------------------
    def _deckhouse(self) -> None:
        from lib import deckhouse_registry  # the same checksum function the hook uses

        secret = self.store.get("Secret", NAMESPACE, "deckhouse-registry")
        if secret is None:
            return
        data = {k: _unb64(v) for k, v in (secret.get("data") or {}).items()}
        checksum = deckhouse_registry.checksum(data)
        pods = [p for p in self.store.list("Pod", NAMESPACE) if (p["metadata"].get("labels") or {}).get("app") == "deckhouse"]
        current = next((p for p in pods if (p["metadata"].get("annotations") or {}).get("checksum/registry-version") == checksum), None)
        if current is None:
            for pod in pods:
                self.store.delete("Pod", NAMESPACE, pod["metadata"]["name"])
            name = f"deckhouse-{checksum[:10]}"
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": "deckhouse", "leader": "true"},
                                "annotations": {"checksum/registry-version": checksum}},
                   "spec": {"nodeName": "master-0"}, "status": {}}
            _set_ready(pod, False)
            self.store.apply(pod)
            self.pod_ready_at[name] = self.tick + 3
            registry = self.globals.setdefault("modulesImages", {}).setdefault("registry", {})
            registry.update({"address": data.get("address", ""), "path": data.get("path", ""),
                             "scheme": data.get("scheme", ""), "CA": data.get("ca", ""),
                             "dockercfg": _b64(data.get(".dockerconfigjson", "")),
                             "base": data.get("address", "") + data.get("path", "")})
            self.harness.global_values = self.globals
            self.note("deckhouse", f"Deckhouse restarts to pick up deckhouse-registry ({data.get('address')})")
            if self.observer is not None:
                self.observer.deckhouse_moved()
        elif not _ready(current) and self.tick >= self.pod_ready_at.get(current["metadata"]["name"], 0):
            _set_ready(current, True)
            self.store.apply(current)

    def _deployments(self) -> None:
        for deployment in self.store.list("Deployment", NAMESPACE):
            if deployment["metadata"]["name"] == "deckhouse":
                continue
            generation = deployment["metadata"].get("generation", 1)
            replicas = deployment.get("spec", {}).get("replicas", 1)
            status = deployment.get("status") or {}
            if status.get("observedGeneration") != generation:
                deployment["status"] = {"observedGeneration": generation, "replicas": replicas,
                                        "updatedReplicas": 0, "readyReplicas": 0, "availableReplicas": 0}
            else:
                deployment["status"] = {"observedGeneration": generation, "replicas": replicas,
                                        "updatedReplicas": replicas, "readyReplicas": replicas,
                                        "availableReplicas": replicas}
            self.store.apply(deployment)

    def _node_groups(self, node: dict) -> set[str]:
        labels = node["metadata"].get("labels") or {}
        groups = {"*", labels.get("node.deckhouse.io/group", "")}
        if "node-role.kubernetes.io/control-plane" in labels:
            groups.add("master")
        return groups

    def _bashible(self) -> None:
        """Each Ready node runs its steps when their content or the node's own Secret changed (bashible's
        checksum); alike nodes share one execution (sim/bashible.py)."""
        ngcs = sorted((o for o in self.store.list("NodeGroupConfiguration")),
                      key=lambda o: (o["spec"].get("weight", 100), o["metadata"]["name"]))
        secrets = {s["metadata"]["name"]: s for s in self.store.list("Secret", NAMESPACE)}
        pending = []
        for node in self.store.list("Node"):
            name = node["metadata"]["name"]
            if not _ready(node):
                continue
            steps = [o for o in ngcs if set(o["spec"].get("nodeGroups") or []) & self._node_groups(node)]
            digest = {o["metadata"]["name"]: o["spec"]["content"] for o in steps}
            own = secrets.get(f"registry-node-config-{name}")
            digest["__node_secret__"] = json.dumps([own] if own else [], sort_keys=True)
            if self.applied_ngc.get(name) != digest:
                pending.append((name, steps, digest))
        if not pending:
            return
        runs = self.bashible.run([(name, steps, digest["__node_secret__"]) for name, steps, digest in pending],
                                 self.store.objects())
        for (name, _steps, digest), run in zip(pending, runs, strict=True):
            if not run.ok:
                self.note("bashible", f"{name}: step {run.failed_step} failed: {run.error}")
            with open(self.workdir / f"commands-{name}.log", "a") as log:
                log.writelines(line + "\n" for line in run.commands)
            for call in run.calls:
                field_name = "labels" if call["verb"] == "label" else "annotations"
                self.store.merge_patch("Node", "", call["node"], {"metadata": {field_name: call["pairs"]}})
            self.node_runs[name] = run
            for callback in self.after_node_run:
                callback(run)
            if self.observer is not None:
                self.observer.node_steps_ran(name, run.containerd_restarted)
            if run.ok:
                self.applied_ngc[name] = digest

    def _manifest(self, content: bytes):
        """A static pod manifest as kubelet reads it; alike nodes hold the same bytes, parsed once."""
        if content not in self._manifests:
            try:
                self._manifests[content] = yaml.load(content, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            except yaml.YAMLError:
                self._manifests[content] = None
        return clone(self._manifests[content])

    def _kubelet(self) -> None:
        wanted = {}
        for node in self.store.list("Node"):
            name = node["metadata"]["name"]
            manifests = self.node_root(name) / "etc/kubernetes/manifests"
            for path in sorted(manifests.glob("*.yaml")) if manifests.exists() else []:
                manifest = self._manifest(path.read_bytes())
                if not isinstance(manifest, dict) or manifest.get("kind") != "Pod":
                    continue
                meta = manifest.get("metadata") or {}
                pod_name = f"{meta.get('name', path.stem)}-{name}"
                mirror = {"apiVersion": "v1", "kind": "Pod",
                          "metadata": {"name": pod_name, "namespace": meta.get("namespace", "kube-system"),
                                       "labels": meta.get("labels") or {}, "annotations": meta.get("annotations") or {},
                                       "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name}]},
                          "spec": {"nodeName": name}}
                wanted[key_of(mirror)] = mirror
        for pod in self.store.list("Pod"):
            owners = pod["metadata"].get("ownerReferences") or []
            if any(o.get("kind") == "Node" for o in owners) and key_of(pod) not in wanted:
                self.store.delete(*key_of(pod))
        for key, mirror in wanted.items():
            existing = self.store.get(*key)
            same = existing is not None and existing["metadata"].get("annotations") == mirror["metadata"]["annotations"]
            node_ready = _ready(self.store.get("Node", "", mirror["spec"]["nodeName"]) or {})
            _set_ready(mirror, bool(same and node_ready))
            self.store.apply(mirror)

    def _faults(self) -> None:
        for name in self.faults.node_not_ready.get(self.tick, []):
            node = self.store.get("Node", "", name)
            if node:
                _set_ready(node, False)
                self.store.apply(node)
                self.note("fault", f"node {name} becomes NotReady")
        for name in self.faults.node_ready.get(self.tick, []):
            node = self.store.get("Node", "", name)
            if node:
                _set_ready(node, True)
                self.store.apply(node)
                self.note("fault", f"node {name} becomes Ready")
        if self.tick in self.faults.restart_deckhouse:
            self.restart_deckhouse()

    def restart_deckhouse(self) -> None:
        """A new deckhouse-controller process: module values are gone, the cluster stays."""
        self.note("fault", "Deckhouse restarts: module values are wiped")
        from ..operator.values_rules import validate_module_values

        self.harness.module_values = validate_module_values(self.harness.openapi_dir, {})
        self._started = False

    # -- checkpoints: the whole simulated world at one moment, to branch from ------------------------
    _CHECKPOINTED = ("tick", "now", "seen", "helm_keys", "applied_ngc", "node_runs", "pod_ready_at", "timeline", "module_runs",
                     "_last_conditions", "_started", "globals")

    def checkpoint(self, directory: Path) -> dict:
        """Everything the next ticks depend on: objects, values, models' memory and node roots."""
        import shutil

        directory = Path(directory)
        shutil.copytree(self.workdir / "nodes", directory / "nodes", symlinks=True)
        return {
            "dir": directory,
            "store": copy.deepcopy(self.store),
            "values": copy.deepcopy(self.harness.module_values),
            "fields": copy.deepcopy({name: getattr(self, name) for name in self._CHECKPOINTED}),
            "local_filled": self.registries.local_filled,
        }

    def restore(self, point: dict) -> None:
        import shutil

        shutil.rmtree(self.workdir / "nodes")
        shutil.copytree(point["dir"] / "nodes", self.workdir / "nodes", symlinks=True)
        self.store = copy.deepcopy(point["store"])
        for name, value in copy.deepcopy(point["fields"]).items():
            setattr(self, name, value)
        self.harness.module_values = copy.deepcopy(point["values"])
        self.harness.global_values = self.globals
        self.harness.kube_operations.clear()
        self.harness.results.clear()
        self._kube_ops_done = 0
        self.registries.local_filled = point["local_filled"]
        self._filter_results.clear()   # resourceVersions restart from the checkpoint's

    # -- loop ------------------------------------------------------------------------------------------
    def step(self) -> None:
        if self.tick == 0:
            self.module_run()
        self.tick += 1
        self.now += TICK
        self._faults()
        self._deckhouse()
        self._deployments()
        self._bashible()
        self._kubelet()
        changed = self._dispatch_events()
        changed |= self._schedules()
        if changed or not self._started:
            self.module_run()
        self._record_conditions()
        if self.observer is not None:
            self.observer.tick_done()

    def ready(self) -> bool:
        return bool(self.harness.module_values.get("internal", {}).get("orchestrator", {}).get("ready"))

    def set_registry(self, registry: dict | None) -> None:
        config = self.store.get("ModuleConfig", "", "deckhouse")
        settings = config.setdefault("spec", {}).setdefault("settings", {})
        if registry is None:
            settings.pop("registry", None)
        else:
            settings["registry"] = copy.deepcopy(registry)
        self.store.apply(config)
        from ..redact import redact

        self.note("input", f"ModuleConfig deckhouse: registry = {json.dumps(redact(registry), sort_keys=True)}")

    def run_until_ready(self, max_ticks: int = 300, min_ticks: int = 1) -> bool:
        for i in range(max_ticks):
            self.step()
            if i + 1 >= min_ticks and self.ready():
                return True
        return False

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
"""Node steps for real: rendered NodeGroupConfiguration content run with bash in a temp root per node.

The content comes from Helm rendering values the real orchestrator hook produced (or the hook's own
producers for hand-picked payloads) and runs unchanged. Only D8_REGISTRY_NODE_ROOT points it at a
temp dir; the tools that would touch the real machine or the cluster are stubs on PATH
(tests/node/stub_tool.py), each call recorded.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from d8registry import cluster as cluster_mod
from d8registry import containerd_node, helm
from d8registry.operator.module import ModuleHarness

REPO = Path(__file__).resolve().parents[2]
STUB_SOURCE = Path(__file__).with_name("stub_tool.py")
STUB_TOOLS = ("kubectl", "crictl", "systemctl", "chown", "sleep", "containerd")
NGC_BODIES = {
    "d8-registry-containerd.sh": "containerd.sh",
    "d8-registry-node-lb.sh": "node-lb.sh",
    "d8-registry-nodeservices.sh": "nodeservices.sh",
}


def node_file(name: str) -> str:
    """A node step file as the chart includes it: templates/node/_<name>.tpl without its define/end lines."""
    return containerd_node.chart_step_file(name)


HEADER_COMMENT = "# Managed by the Deckhouse registry module (d8-system). Do not edit."
MARKER = "# managed by d8 registry module"
FAKE_NOW = {"REGISTRY_FAKE_NOW": "2026-11-27T10:00:00Z"}
LB_IMAGE = "registry.deckhouse.ru/deckhouse/ee@sha256:03cc39bb8cc75f943ebbc6788112c12c2597b6e98775cff42048a41b41cdedd6"

SETTINGS = {
    "legacy": None,
    "direct": {"mode": "Direct", "direct": {"imagesRepo": "registry.example.com/deckhouse/ee", "license": "lic-123456"}},
    "proxy": {"mode": "Proxy", "proxy": {"imagesRepo": "mirror.example.com:5000/d8/ee", "username": "u",
                                         "password": "p4ss"}},
    "local": {"mode": "Local"},
}

# containerd 1.x layout with the registry table but no config_path: what node-manager wrote before it
# learned about config_path
CONFIG_V2 = """version = 2
oom_score = 0
imports = ["/etc/containerd/conf.d/*.toml"]

[metrics]
  address = "127.0.0.1:9338"

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.9"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = true
    [plugins."io.containerd.grpc.v1.cri".registry]
    [plugins."io.containerd.grpc.v1.cri".registry.headers]
      X-Meta-Source = ["d8"]
"""

# containerd 2.x layout without any registry table
CONFIG_V3 = """version = 3
imports = ["/etc/containerd/conf2.d/*.toml"]

[plugins]
  [plugins.'io.containerd.cri.v1.runtime']
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = 'registry.k8s.io/pause:3.10'
"""


# -- rendering ------------------------------------------------------------------------------------------

def _checker_ready(harness: ModuleHarness) -> None:
    checker = harness.module_values["internal"]["checker"]
    checker["state"] = {"version": checker["params"]["version"], "ready": True, "message": "Mode: Default"}


def _mirror_pods(state: dict) -> list[dict]:
    """What kubelet would report once every master runs its registry-service static pod."""
    pods = []
    for node, entry in state["node_services"]["nodes"].items():
        pods.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"registry-nodeservices-{node}", "namespace": "d8-system",
                         "labels": {"app": "registry", "component": "registry-service", "type": "node-services"},
                         "annotations": {"registry.deckhouse.io/config-version": entry["version"]},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": node}]},
            "spec": {"nodeName": node},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        })
    return pods


def run_orchestrator(settings: dict | None) -> ModuleHarness:
    """The real hooks on the example cluster, driven until node config is published."""
    base = cluster_mod.load()
    if settings is not None:
        base = base.with_registry_settings(settings)
    harness = ModuleHarness(REPO, base.objects, base.globals, in_process=True, env=dict(FAKE_NOW))
    harness.synchronize()
    harness.before_helm()
    if settings is None:
        return harness
    _checker_ready(harness)
    harness.before_helm()
    state = harness.module_values["internal"]["orchestrator"]["state"]
    if state["node_services"]["nodes"] and state["node_config"]["containerd"]["kind"] == "None":
        harness.objects.extend(_mirror_pods(state))
        harness.synchronize()
        harness.before_helm()
    return harness


@dataclass
class Rendered:
    objects: list[dict]
    state: dict

    def ngc(self, name: str) -> dict:
        return next(o for o in self.objects if o["kind"] == "NodeGroupConfiguration" and o["metadata"]["name"] == name)

    def content(self, name: str) -> str:
        return self.ngc(name)["spec"]["content"]

    def secret(self, name: str) -> dict:
        return next(o for o in self.objects if o["kind"] == "Secret" and o["metadata"]["name"] == name)


def render_values(values: dict) -> Rendered:
    state = values["registry"]["internal"]["orchestrator"]["state"]
    return Rendered(helm.render(REPO, values), state)


def render_node_config(node_config: dict) -> Rendered:
    """Helm render for a hand-picked node_config (payloads from the hook's producers, or hostile ones)."""
    values = {"global": copy.deepcopy(cluster_mod.load().globals),
              "registry": {"internal": {"orchestrator": {"state": {"node_config": copy.deepcopy(node_config)}}}}}
    return render_values(values)


@pytest.fixture(scope="session")
def scenarios(helm_bin) -> dict[str, Rendered]:
    out = {}
    for name, settings in SETTINGS.items():
        harness = run_orchestrator(settings)
        out[name] = render_values(harness.helm_values())
    return out


def header(version: str, payload_b64: str) -> str:
    return (f"{HEADER_COMMENT}\nset -Eeuo pipefail\nreadonly D8REG_VERSION='{version}'\n"
            f"readonly D8REG_PAYLOAD='{payload_b64}'\n")


def payload_of(content: str) -> tuple[str, dict]:
    lines = content.split("\n")
    version = lines[2].removeprefix("readonly D8REG_VERSION='").removesuffix("'")
    literal = lines[3].removeprefix("readonly D8REG_PAYLOAD='").removesuffix("'")
    return version, json.loads(base64.b64decode(literal, validate=True))


def version_of(payload: dict) -> str:
    body = {k: v for k, v in payload.items() if k != "version"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# -- a node -----------------------------------------------------------------------------------------------

@dataclass
class NodeRoot:
    """One node: a root dir the step works in, a work dir for stubs and their records."""

    base: Path
    name: str
    real_containerd: bool = False
    runs: list[subprocess.CompletedProcess] = field(default_factory=list)

    def __post_init__(self):
        self.root = self.base / "root"
        self.work = self.base / "work"
        self.bin = self.work / "bin"
        for path in (self.root, self.bin):
            path.mkdir(parents=True, exist_ok=True)
        stub = f"#!{sys.executable} -I\n" + STUB_SOURCE.read_text()
        for tool in STUB_TOOLS:
            if tool == "containerd" and self.real_containerd:
                continue
            target = self.bin / tool
            target.write_text(stub)
            target.chmod(0o755)
        self.write("var/lib/bashible/discovered-node-name", f"{self.name}\n")
        self.kube_objects = [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.name}}]

    # -- setup ----------------------------------------------------------------------------------------
    def path(self, relative: str) -> Path:
        return self.root / relative

    def write(self, relative: str, text: str, mode: int = 0o644) -> Path:
        path = self.path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
        return path

    def read(self, relative: str) -> str:
        return self.path(relative).read_text()

    def with_kubelet(self) -> NodeRoot:
        self.write("etc/kubernetes/kubelet.conf", "apiVersion: v1\nkind: Config\n", 0o600)
        return self

    def with_admin(self) -> NodeRoot:
        self.write("etc/kubernetes/admin.conf", "apiVersion: v1\nkind: Config\n", 0o600)
        return self

    @property
    def kube_objects(self) -> list[dict]:
        path = self.work / "kube.json"
        return json.loads(path.read_text()) if path.exists() else []

    @kube_objects.setter
    def kube_objects(self, objects: list[dict]) -> None:
        (self.work / "kube.json").write_text(json.dumps(objects))

    def fail(self, **calls) -> None:
        """fail(kubectl_get="always", crictl_pull=2): keys are '<tool> <first arg>' with '_' for ' '."""
        (self.work / "fail.json").write_text(json.dumps({k.replace("_", " "): v for k, v in calls.items()}))

    def node_object(self) -> dict:
        return next(o for o in self.kube_objects if o["kind"] == "Node" and o["metadata"]["name"] == self.name)

    # -- running --------------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        return {
            "PATH": f"{self.bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.work),
            "D8_REGISTRY_NODE_ROOT": str(self.root),
            "D8REG_TEST_WORK": str(self.work),
        }

    def run(self, content: str, *, prelude: str = "", trace: bool = False,
            timeout: float = 120) -> subprocess.CompletedProcess:
        """Run the content with bash; `prelude` (bb-* helpers) is defined in a parent shell and exported."""
        script = self.work / f"step-{len(self.runs)}.sh"
        script.write_text(content)
        (self.work / "calls.jsonl").write_text("")
        if prelude:
            command = ["bash", "-c", f'{prelude}\nexec bash "$0"', str(script)]
        else:
            command = ["bash", *(["-x"] if trace else []), str(script)]
        proc = subprocess.run(command, env=self.env(), capture_output=True, text=True, timeout=timeout,
                              check=False)
        self.runs.append(proc)
        return proc

    def calls(self, tool: str | None = None) -> list[list[str]]:
        path = self.work / "calls.jsonl"
        records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        return [r["argv"] for r in records if tool is None or r["tool"] == tool]

    def mutating_calls(self) -> list[tuple[str, list[str]]]:
        out = []
        for line in (self.work / "calls.jsonl").read_text().splitlines():
            record = json.loads(line)
            tool, argv = record["tool"], record["argv"]
            if tool == "kubectl" and "get" in argv:
                continue
            if tool in ("containerd",) or (tool == "crictl" and argv[:1] == ["info"]):
                continue
            out.append((tool, argv))
        return out

    # -- observing ------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, tuple]:
        """Everything a write could change: content, mode, inode, mtime of every path under the root."""
        result = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in dirnames + filenames:
                path = Path(dirpath) / name
                info = path.lstat()
                digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(info.st_mode) else ""
                result[str(path.relative_to(self.root))] = (info.st_mode, info.st_ino, info.st_mtime_ns, digest)
        return result

    def temp_files(self) -> list[str]:
        return [str(p.relative_to(self.root)) for p in self.root.rglob(".d8reg.*")]

    def files_under(self, relative: str) -> dict[str, str]:
        base = self.path(relative)
        return {str(p.relative_to(base)): p.read_text() for p in sorted(base.rglob("*")) if p.is_file()}


@pytest.fixture
def make_node(tmp_path):
    counter = iter(range(1000))

    def build(name: str = "worker-0", *, real_containerd: bool = False) -> NodeRoot:
        return NodeRoot(tmp_path / f"{name}-{next(counter)}", name, real_containerd=real_containerd)

    return build


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)

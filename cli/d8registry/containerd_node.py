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
"""containerd as a node runs it: the containerd step edits the node's config.toml and places the hosts
dir, then the daemon starts from exactly those files (SPEC 6.2-6.4, 12.3).

A node is a temp dir `root`. The step (templates/node/_lib.sh.tpl + _containerd.sh.tpl behind the chart's
four-line header, payload from hooks/lib/node_config) runs with D8_REGISTRY_NODE_ROOT=root, as the node
tests run it. What the step writes is never edited afterwards. Three things relocate the daemon into
the test, none of them touching the registry part:

- the node's config.toml *before* the step (what node-manager wrote) is ours to choose: the version 2
  or 3 layout of a Deckhouse node, with the settings this machine needs (native snapshotter, no
  cgroups or AppArmor, debug log). The step inserts `config_path` into it like on any node;
- the daemon's root, state and socket come from containerd's own flags (--root, --state, --address),
  which take precedence over the file;
- the daemon runs in a private mount namespace where the node root's etc/containerd is bind-mounted on
  /etc/containerd, so `config_path = "/etc/containerd/registry.d"` and the CA paths in hosts.toml
  resolve to the files the step placed. /etc/resolv.conf points at loopback there too: after every
  mirror fails containerd looks up the fixed name itself, and that query must not leave the machine.

The step's `systemctl restart containerd` is a small shim that hands the restart to this module (stop
the daemon if it runs, start it from the step's config.toml) and returns once the daemon is up; the
step then waits for the real `crictl info` like on a node. `containerd` on the step's PATH is the daemon
binary itself, so the step's own candidate check (`containerd config dump`) runs for real.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import platform
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import loopback as lo
from .loopback import node_config

enums = importlib.import_module("lib.enums")  # loopback has put hooks/ on sys.path

REPO = lo.REPO
STEP_HEADER = "# Managed by the Deckhouse registry module (d8-system). Do not edit."
CONTAINERD2 = "containerd2"  # containerd 2.x built by `make tools` (Makefile), named apart from Debian's 1.6
CONFIG_PATH = node_config.HOSTS_ROOT

# Plugins that need what this machine lacks (kernel modules, /opt) or would write outside the root.
_DISABLED_V2 = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                "io.containerd.tracing.processor.v1.otlp"]
_DISABLED_V3 = ["io.containerd.internal.v1.opt", "io.containerd.nri.v1.nri", "io.containerd.snapshotter.v1.erofs",
                "io.containerd.snapshotter.v1.blockfile", "io.containerd.tracing.processor.v1.otlp"]

_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())

# The node's config.toml before the step: Deckhouse's layout for containerd 1.x (version 2, an empty
# registry table the step fills) and 2.x (version 3, no registry table: the step appends one).
NODE_CONFIG = {
    1: f"""version = 2
disabled_plugins = {json.dumps(_DISABLED_V2)}

[debug]
  level = "debug"

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    disable_cgroup = true
    disable_apparmor = true
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "native"
    [plugins."io.containerd.grpc.v1.cri".registry]
""",
    2: f"""version = 3
disabled_plugins = {json.dumps(_DISABLED_V3)}

[debug]
  level = 'debug'

[plugins]
  [plugins.'io.containerd.cri.v1.runtime']
    disable_apparmor = true
    restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'native'
  [plugins.'io.containerd.transfer.v1.local']
    # 2.x pulls through the transfer service, which unpacks only for the snapshotters listed here
    [[plugins.'io.containerd.transfer.v1.local'.unpack_config]]
      platform = 'linux/{_ARCH}'
      snapshotter = 'native'
""",
}

# `systemctl` for the step: only `restart containerd` is expected; it is handed to the Python side.
_SYSTEMCTL_SHIM = """#!/bin/bash
printf '%s\\n' "$*" >>"$D8_NODE_WORK/systemctl.calls"
if [[ "$*" != "restart containerd" ]]; then
  echo "systemctl shim: unexpected call: $*" >&2
  exit 1
fi
rm -f "$D8_NODE_WORK/restart.done"
: >"$D8_NODE_WORK/restart.request"
for _ in $(seq 1 1200); do
  if [[ -e $D8_NODE_WORK/restart.done ]]; then
    exit "$(cat "$D8_NODE_WORK/restart.done")"
  fi
  sleep 0.05
done
echo "systemctl shim: the restart was not handled" >&2
exit 1
"""


def daemon_binary(major: int) -> str:
    return lo.binary("containerd" if major == 1 else CONTAINERD2)


def go_json(value) -> str:
    """JSON as Helm's toJson writes it: sorted keys, no spaces, <, > and & escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def chart_step_file(name: str) -> str:
    """A node step file as the chart includes it: templates/node/_<name>.tpl without its define/end lines."""
    text = (REPO / "templates" / "node" / f"_{name}.tpl").read_text()
    first, rest = text.split("\n", 1)
    if not (first.startswith("{{- define ") and rest.endswith("{{ end }}\n")):
        raise ValueError(f"templates/node/_{name}.tpl is not one define block")
    return rest.removesuffix("{{ end }}\n")


def step_content(payload: dict) -> str:
    """The NodeGroupConfiguration content of d8-registry-containerd.sh as templates/node/ngc-containerd.yaml
    composes it (a node test compares the two)."""
    encoded = base64.b64encode(go_json(payload).encode()).decode()
    body = chart_step_file("lib.sh") + chart_step_file("containerd.sh")
    return (f"{STEP_HEADER}\nset -Eeuo pipefail\nreadonly D8REG_VERSION='{payload['version']}'\n"
            f"readonly D8REG_PAYLOAD='{encoded}'\n{body}")


@dataclass
class Node:
    """One node root with its containerd; `containerd` is None until the daemon started."""

    procs: lo.Processes
    base: Path
    major: int
    name: str = "containerd"
    containerd: lo.Containerd | None = None
    step_log: str = ""

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def work(self) -> Path:
        return self.base / "work"

    @property
    def daemon_dir(self) -> Path:
        return self.base / "daemon"

    @property
    def config_toml(self) -> Path:
        return self.root / "etc/containerd/config.toml"

    @property
    def hosts_dir(self) -> Path:
        return self.root / "etc/containerd/registry.d"

    def systemctl_calls(self) -> list[str]:
        path = self.work / "systemctl.calls"
        return path.read_text().splitlines() if path.exists() else []

    # -- the daemon ---------------------------------------------------------------------------------
    def start_daemon(self, net_namespace: bool = False, netns: str | None = None, env: dict | None = None,
                     hosts_file: Path | None = None) -> lo.Containerd:
        """containerd from the node root's config.toml, as the step left it. `netns` (a path such as
        /proc/<pid>/ns/net) runs it in an existing network namespace; `env` is added to its environment;
        `hosts_file` is bind-mounted on /etc/hosts in its mount namespace."""
        if os.geteuid() != 0:
            raise lo.Unavailable("containerd needs root (mount namespace, snapshotter)")
        if not Path("/etc/containerd").is_dir():
            raise lo.Unavailable("/etc/containerd is missing: it is the mount point of the node root's "
                                 "etc/containerd (`make debs` installs Debian's containerd, which creates it)")
        self.daemon_dir.mkdir(parents=True, exist_ok=True)
        resolv = self.daemon_dir / "resolv.conf"
        resolv.write_text("nameserver 127.0.0.1\noptions attempts:1 timeout:1\n")
        unshare = ["unshare", "--mount", "--propagation", "private"]
        script = 'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/containerd && shift 2 && exec "$@"'
        if net_namespace:
            # Nothing but loopback exists: any mirror a hosts.toml names fails at once, nothing leaves.
            unshare.append("--net")
            script = "ip link set lo up && " + script
        argv = [*unshare, "--", "bash", "-c", script, "bash", str(resolv), str(self.root / "etc/containerd"),
                daemon_binary(self.major), "--config", "/etc/containerd/config.toml",
                "--root", str(self.daemon_dir / "root"), "--state", str(self.daemon_dir / "state"),
                "--address", str(self.daemon_dir / "c.sock")]
        if hosts_file is not None:
            argv[argv.index(script)] = f"mount --bind {shlex.quote(str(hosts_file))} /etc/hosts && {script}"
        if netns is not None:
            argv = ["nsenter", f"--net={netns}", "--", *argv]
        if self.procs.running(self.name):
            self.procs.stop(self.name)
        self.procs.start(self.name, argv, env=env)
        runtime = lo.Containerd(self.procs, self.daemon_dir)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not self.procs.running(self.name):
                raise lo.Unavailable(f"{self.name} exited: {self.procs.tail(self.name)}")
            if (self.daemon_dir / "c.sock").exists():
                # a daemon can be up while its CRI plugin failed to load: ask the CRI itself
                result = runtime.crictl("version", timeout=10)
                if result.returncode == 0 and "RuntimeApiVersion" in result.stdout:
                    self.containerd = runtime
                    return runtime
            time.sleep(0.1)
        raise lo.Unavailable(f"{self.name}'s CRI did not answer: {self.procs.tail(self.name)}")

    # -- the step -----------------------------------------------------------------------------------
    def run_step(self, payload: dict, timeout: float = 180, net_namespace: bool = False) -> subprocess.CompletedProcess:
        """Run the containerd step on this node; a restart it asks for starts the daemon from its config."""
        bindir = self.work / "bin"
        bindir.mkdir(parents=True, exist_ok=True)
        shim = bindir / "systemctl"
        shim.write_text(_SYSTEMCTL_SHIM)
        shim.chmod(0o755)
        for tool, target in (("containerd", daemon_binary(self.major)), ("crictl", lo.binary("crictl"))):
            link = bindir / tool
            link.unlink(missing_ok=True)
            link.symlink_to(target)
        script = self.work / "step.sh"
        script.write_text(step_content(payload))
        socket = f"unix://{self.daemon_dir}/c.sock"
        env = {"PATH": f"{bindir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": str(self.work), "D8_REGISTRY_NODE_ROOT": str(self.root), "D8_NODE_WORK": str(self.work),
               "CONTAINER_RUNTIME_ENDPOINT": socket, "IMAGE_SERVICE_ENDPOINT": socket, **lo.NO_PROXY_ENV}
        request, done = self.work / "restart.request", self.work / "restart.done"
        out, err = self.work / "step.out", self.work / "step.err"
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            proc = subprocess.Popen(["bash", str(script)], env=env, stdout=stdout, stderr=stderr,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        try:
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the containerd step did not finish within {timeout:.0f}s")
                if request.exists():
                    request.unlink()
                    try:
                        self.start_daemon(net_namespace)
                        status = "0"
                    except lo.Unavailable as exc:
                        status = "1"
                        self.step_log = f"restart failed: {exc}\n"
                    # the stand-in polls for the file: it must never see it created but still empty
                    partial = done.with_name(done.name + ".tmp")
                    partial.write_text(status)
                    partial.replace(done)
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        result = subprocess.CompletedProcess(proc.args, proc.returncode, out.read_text(), err.read_text())
        self.step_log += result.stderr
        return result


def make_node(procs: lo.Processes, base: Path, major: int, name: str = "containerd") -> Node:
    """A node root holding the pre-step config.toml of a containerd `major` node (1 or 2)."""
    daemon_binary(major)  # fail early and clearly when the daemon is not built
    node = Node(procs, base, major, name)
    node.config_toml.parent.mkdir(parents=True, exist_ok=True)
    node.config_toml.write_text(NODE_CONFIG[major])
    node.work.mkdir(parents=True, exist_ok=True)
    return node


def start(procs: lo.Processes, base: Path, mirror_map: dict, major: int = 1, name: str = "containerd",
          net_namespace: bool = False) -> Node:
    """A node whose containerd step placed `mirror_map` (kind final) and whose daemon runs from the step's
    config.toml. Raises Unavailable when the step fails."""
    node = make_node(procs, base, major, name)
    payload = node_config.containerd_payload(enums.KIND_FINAL, mirror_map)
    result = node.run_step(payload, net_namespace=net_namespace)
    if result.returncode != 0:
        raise lo.Unavailable(f"the containerd step failed ({result.returncode}): {node.step_log[-3000:]}")
    if node.containerd is None:
        # config_path was there already, so the step did not restart anything: start the daemon now
        node.start_daemon(net_namespace)
    return node


def proxy_mirrors(cluster: lo.ProxyCluster) -> dict:
    """The Proxy node mirrors of a loopback cluster, from the same producers the orchestrator uses."""
    params = node_config.node_params(cluster.params, cluster.ro, cluster.ca_pem)
    return node_config.mirrors(params, [r.ip for r in cluster.replicas], lb_endpoint=f"127.0.0.1:{cluster.lb_port}")


def upstream_mirrors(upstream: lo.Upstream, mode: str) -> tuple[dict, dict]:
    """Direct or Unmanaged node mirrors for an upstream (through the real settings validation) and params."""
    verdict = lo.settings.evaluate(upstream.settings(mode), lo.ENVIRONMENT)
    if not verdict.valid:
        raise AssertionError(f"settings rejected: {verdict.errors}")
    return node_config.mirrors(node_config.node_params(verdict.params, None, None), []), verdict.params

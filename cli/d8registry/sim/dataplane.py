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
"""`simulate --real-dataplane`: every simulated node pulls images over CRI from real binaries during the switches.

What runs (all from unmodified binaries, all bound to 127.0.0.0/8):

- the upstream: CNCF distribution with TLS and htpasswd auth on 127.0.0.1 (loopback.start_upstream), holding
  a test image under the upstream path;
- per node, a network namespace of its own (only `lo`), so every node has the production addresses to itself:
  its node LB on 127.0.0.1:5001, a master's front on <InternalIP>:5001 and its distribution on 127.0.0.1:5003.
  The cluster's InternalIPs are rewritten to 127.0.16.x (they exist inside the namespaces only). Bridges (small
  TCP forwarders in this process) connect a node's namespace to the masters' fronts and to the upstream; that is
  the machine's network between nodes;
- per node, containerd (1.6 for config version 2, the cached 2.x build for version 3) started by
  containerd_node from the node root's config.toml and hosts dir as the simulated node steps leave them, and
  restarted right after the node's steps when one of them ran `systemctl restart containerd` (the simulator's
  systemctl is a stub; the step's own wait for `crictl info` answers at once, the pulls do not);
- per node, the static pods the node steps wrote to /etc/kubernetes/manifests (the node LB on every node, the
  registry node services on masters), run like kubelet runs them: started when the manifest appears, restarted
  when it changes, stopped when it goes. Each container's command is the manifest's, with the binary from
  `make tools`; hostPath volumes are the node root's directories and the container's mount paths in its config
  files and environment are rewritten to them (the one relocation: there is no container filesystem here).
  The step's `chown` is a simulator stub, so the ownership it asks for (the pods' user) is applied here.

Vanilla containerd ignores hosts.toml `rewrite` (Deckhouse's containerd extension; see
tests/e2e/dataplane/test_containerd_node.py), so Direct's node path asks the upstream for `system/deckhouse`
literally: the upstream holds the test image under that path too. Everything else of Direct's hosts.toml (host,
CA, credentials, order) is exercised as written.

The node-manager stand-in for legacy Unmanaged: the node trusts the upstream CA (containerd's SSL_CERT_FILE)
and kubelet passes the pull secret's credentials with every pull of the upstream reference.

A bounded loop per node pulls the reference the cluster's images use right now (modulesImages.registry.base
@ the test image's digest: the upstream in Unmanaged, registry.d8-system.svc:5001/system/deckhouse otherwise)
over CRI with crictl, removes the image after each pull and records result, latency and the current stage.

Every state the cluster passes through is pulled: besides the loops (one pull per node and second, whose
sampling depends on how fast the hooks run), every node pulls once, synchronously, right after Deckhouse moved
to another registry (before any node step of that tick) and at the end of every tick in which a node step ran.
A broken state between two ticks is therefore caught however short it lasts in wall time, with hooks in
process as with hook processes. The report counts these pulls ("pulls right after a change").

Retries, as kubelet: a pull that fails with a registry error is a failed pull (kubelet reports ErrImagePull and
backs off 10 s, doubling to 5 min; the pod does not start meanwhile, which is what the module promises never
to cause). A pull that cannot reach the CRI socket (containerd being restarted by the step: connection refused,
the socket gone, the stream cut) never reached a registry; kubelet's sync loop simply calls the runtime again
once it answers. The loop does the same: it retries only gRPC Unavailable errors of the connection itself,
every 0.5 s for at most 60 s, and counts the pull once with its total latency.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from .. import containerd_node as cn
from .. import loopback as lo
from .scenario import ScenarioError

NET_PREFIX = "127.0.16."  # this feature's own range; the addresses exist only inside the nodes' namespaces
MASTER_OCTET, WORKER_OCTET = 11, 21
FIXED_REF_HOST = lo.FIXED_HOST  # registry.d8-system.svc:5001
LOCAL_REPO = lo.IMAGE_REPO      # system/deckhouse
# The upstream's name: containerd treats a loopback IP as a plain-HTTP registry, so, like a real upstream, it has
# a DNS name (in its certificate and in the /etc/hosts each node's daemons see)
UPSTREAM_NAME = "upstream.d8rdp.test"
CLONE_NEWNET = 0x40000000
CONNECT_RETRY_SECONDS = 60.0
CONNECT_RETRY_INTERVAL = 0.5
PULL_TIMEOUT = 60
MAX_SECONDS = 1800.0  # the pull loops' bound in time (each is also bounded in count: max_pulls)
# the binaries a manifest's command names, by file name; anything else (regsync, the gc shell loop) is not on
# the pull path and is not started
BINARIES = {"nginx": "nginx", "registry": "registry"}

_libc = ctypes.CDLL(None, use_errno=True)


class DataPlaneError(ScenarioError):
    """The real data plane cannot run or broke (a clear CLI error, like bad input)."""


def in_netns(path: str | None, fn):
    """fn() with the calling thread in the network namespace at `path` (None: the current one). Sockets keep the
    namespace they were created in, so a socket made here works from any thread afterwards."""
    if path is None:
        return fn()
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {path}")
        try:
            return fn()
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)


class Bridge:
    """host:port inside namespace `listen_ns` forwarded to host:port inside `target_ns` (None: this process's)."""

    def __init__(self, listen_ns: str, target_ns: str | None, host: str, port: int):
        self.target_ns, self.address = target_ns, (host, port)
        self._closed = threading.Event()

        def listen():
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(self.address)
            sock.listen(64)
            return sock

        self.sock = in_netns(listen_ns, listen)
        self._thread = threading.Thread(target=self._serve, name=f"bridge-{host}:{port}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            remote = in_netns(self.target_ns, lambda: socket.create_connection(self.address, timeout=5))
        except OSError:
            client.close()  # as an unreachable address looks to the client: the connection ends
            return
        remote.settimeout(None)
        threading.Thread(target=_pump, args=(remote, client), daemon=True).start()
        _pump(client, remote)

    def close(self) -> None:
        self._closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(timeout=5)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


# -- the cluster the data plane can serve ---------------------------------------------------------

def upstream_address(upstream: lo.Upstream) -> str:
    return f"{UPSTREAM_NAME}:{upstream.port}"


def _is_master(node: dict) -> bool:
    return "node-role.kubernetes.io/control-plane" in (node["metadata"].get("labels") or {})


def loopback_cluster(cluster, upstream: lo.Upstream):
    """A copy of `cluster` whose nodes have 127.0.16.x InternalIPs and whose registry is the loopback upstream
    (deckhouse-registry and the global registry values, as Deckhouse would have them in legacy Unmanaged)."""
    import base64
    import copy

    from ..cluster import Cluster

    clone = copy.deepcopy(cluster)
    masters = workers = 0
    address, path = upstream_address(upstream), "/" + lo.UPSTREAM_PATH
    auth = base64.b64encode(f"{upstream.username}:{upstream.password}".encode()).decode()
    dockercfg = json.dumps({"auths": {address: {"username": upstream.username, "password": upstream.password,
                                                "auth": auth}}})
    for obj in clone.objects:
        meta = obj.get("metadata") or {}
        if obj.get("kind") == "Node":
            if _is_master(obj):
                ip, masters = f"{NET_PREFIX}{MASTER_OCTET + masters}", masters + 1
            else:
                ip, workers = f"{NET_PREFIX}{WORKER_OCTET + workers}", workers + 1
            addresses = [a for a in (obj.setdefault("status", {}).get("addresses") or []) if a.get("type") != "InternalIP"]
            obj["status"]["addresses"] = [{"type": "InternalIP", "address": ip}, *addresses]
        if obj.get("kind") == "Secret" and meta.get("name") == "deckhouse-registry":
            data = {"address": address, "path": path, "scheme": "https", "ca": upstream.ca_pem,
                    ".dockerconfigjson": dockercfg}
            obj["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    if masters == 0 or masters > 10 or workers > 10:
        raise DataPlaneError(f"--real-dataplane needs 1-10 masters and at most 10 workers, the cluster has "
                             f"{masters} and {workers}")
    registry = clone.globals.setdefault("modulesImages", {}).setdefault("registry", {})
    registry.update({"base": address + path, "address": address, "path": path, "scheme": "https",
                     "CA": upstream.ca_pem, "dockercfg": base64.b64encode(dockercfg.encode()).decode()})
    discovery = clone.globals.setdefault("discovery", {})
    discovery["clusterMasterCount"] = masters
    discovery["clusterControlPlaneIsHighlyAvailable"] = masters > 1
    return Cluster(clone.globals, clone.objects, clone.description + " (on the loopback data plane)")


# -- records ---------------------------------------------------------------------------------------

@dataclass
class Pull:
    node: str
    stage: str
    ref: str
    ok: bool
    seconds: float
    error: str = ""
    cri_retries: int = 0


def pull_secret_creds(registry: dict) -> str | None:
    """What kubelet sends with a pull for Deckhouse's pods (imagePullSecrets: deckhouse-registry): the entry of
    the dockercfg for the registry the reference names, without a server address (so containerd offers it to
    that registry's mirrors too)."""
    import base64

    try:
        auths = json.loads(base64.b64decode(registry.get("dockercfg") or "").decode() or "{}").get("auths") or {}
    except ValueError:
        return None
    entry = auths.get(registry.get("address", "")) or {}
    if entry.get("username") is not None:
        return f"{entry['username']}:{entry.get('password', '')}"
    if entry.get("auth"):
        return base64.b64decode(entry["auth"]).decode()
    return None


def containerd_error(stderr: str) -> str:
    """crictl's last line without its logging prefix: containerd's own message."""
    line = (stderr.strip().splitlines() or ["(no output)"])[-1]
    match = re.search(r'msg="(.*)"\s*$', line)
    return match.group(1).replace('\\"', '"') if match else line


def p95(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


# gRPC's words for "no answer on the socket": dialing failed (refused, socket gone), the stream was cut mid-call
_CONNECTION = re.compile(r"code = Unavailable desc = (connection error|error reading from server|transport is closing)"
                         r"|connect endpoint '?unix://")


def connection_level(stderr: str) -> bool:
    """True when crictl never got an answer from containerd: the socket refused or vanished, or the stream was cut
    (the daemon went away mid-call). A registry error comes back from containerd as an answer (code = Unknown,
    NotFound, ...) and is never matched here."""
    return bool(_CONNECTION.search(stderr))


# -- a node ----------------------------------------------------------------------------------------

class SimNode(cn.Node):
    """containerd_node's node, rooted at the simulator's node root (the step wrote config.toml and hosts there)."""

    sim_root: Path = Path()

    @property
    def root(self) -> Path:
        return self.sim_root


@dataclass
class NodeRuntime:
    name: str
    ip: str
    master: bool
    netns: str
    node: SimNode
    runtime: lo.Containerd
    pods: dict[str, str] = field(default_factory=dict)  # manifest file name -> manifest text running
    restarts: int = 0


class RealDataPlane:
    """The simulator's observer (engine.Simulator.observer): follows the nodes with real processes."""

    def __init__(self, sim, upstream: lo.Upstream, image: lo.Image, procs: lo.Processes, base: Path, *,
                 out=None, max_pulls: int = 5000, max_seconds: float = 1800.0, interval: float = 1.0):
        self.sim, self.upstream, self.image, self.procs, self.base = sim, upstream, image, procs, base
        self.out = out
        self.max_pulls, self.deadline, self.interval = max_pulls, time.monotonic() + max_seconds, interval
        self.nodes: dict[str, NodeRuntime] = {}
        self.bridges: list[Bridge] = []
        self.pulls: list[Pull] = []
        self.stage = "Unmanaged (start)"
        self.stages: list[str] = [self.stage]
        self.pushed = False
        self.changed = False     # a node step ran, or the push filled the replicas, since every node last pulled
        self.state_pulls = 0     # pulls made right after a change (see the module docstring)
        self.notes: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.ca_bundle = base / "node-trust.pem"
        self.hosts_file = base / "node-hosts"
        self.daemon_env = {"SSL_CERT_FILE": str(self.ca_bundle)}

    # -- setup -------------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.notes.append(text)
        if self.out is not None:
            print(f"  [data plane] {text}", file=self.out, flush=True)

    def start(self) -> None:
        system = Path("/etc/ssl/certs/ca-certificates.crt")
        self.ca_bundle.write_text((system.read_text() if system.exists() else "") + self.upstream.ca_pem)
        self.hosts_file.write_text(f"127.0.0.1 localhost\n127.0.0.1 {UPSTREAM_NAME}\n")
        # the pods run as the production user and read the node roots
        for path in [self.sim.workdir, *self.sim.workdir.parents]:
            if path == Path("/"):
                break
            if path.stat().st_mode & 0o005 != 0o005:
                path.chmod(path.stat().st_mode | 0o055)
        nodes = self.sim.store.list("Node")
        for index, node in enumerate(nodes):
            name = node["metadata"]["name"]
            ip = next(a["address"] for a in node["status"]["addresses"] if a.get("type") == "InternalIP")
            if not ip.startswith(NET_PREFIX):
                raise DataPlaneError(f"node {name} has InternalIP {ip}, not one of the data plane's {NET_PREFIX}x")
            version = (node["metadata"].get("annotations") or {}).get("node.deckhouse.io/containerd-config-version", "2")
            major = 2 if version == "3" else 1
            netns = self._netns(name)
            sim_node = SimNode(self.procs, self.base / f"n{index}", major, f"containerd-{name}")
            sim_node.sim_root = self.sim.node_root(name)
            sim_node.work.mkdir(parents=True, exist_ok=True)
            # the node's config.toml before any step of ours: the Deckhouse layout of this containerd
            sim_node.config_toml.write_text(cn.NODE_CONFIG[major])
            runtime = sim_node.start_daemon(netns=netns, env=self.daemon_env, hosts_file=self.hosts_file)
            self.nodes[name] = NodeRuntime(name, ip, _is_master(node), netns, sim_node, runtime)
            self.say(f"{name}: containerd {major}.x on {ip} (config version {version})")
        host, port = self.upstream.host.split(":")
        for item in self.nodes.values():
            self.bridges.append(Bridge(item.netns, None, host, int(port)))
            for master in self.nodes.values():
                if master.master and master is not item:
                    self.bridges.append(Bridge(item.netns, master.netns, master.ip, 5001))
        self.sim.observer = self

    def _netns(self, name: str) -> str:
        proc = self.procs.start(f"netns-{name}", ["unshare", "--net", "--", "sleep", "86400"])
        path = f"/proc/{proc.pid}/ns/net"
        own = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if os.readlink(path) != own:
                    break
            except OSError:
                pass
            time.sleep(0.02)
        else:
            raise DataPlaneError(f"no network namespace for {name}")
        subprocess.run(["nsenter", f"--net={path}", "--", "ip", "link", "set", "lo", "up"], check=True, timeout=10)
        return path

    # -- the simulator's hooks ---------------------------------------------------------------------
    def node_steps_ran(self, name: str, restarted: bool) -> None:
        item = self.nodes.get(name)
        if item is None:
            return
        self.changed = True
        if restarted:
            item.restarts += 1
            self.say(f"{name}: the step restarted containerd (stage {self.stage})")
            # a pull in flight when the daemon goes down, whatever the loop's timing: the case kubelet meets
            probe = threading.Thread(target=self._record_pull, args=(item,), name=f"restart-pull-{name}", daemon=True)
            probe.start()
            time.sleep(0.1)
            item.node.start_daemon(netns=item.netns, env=self.daemon_env, hosts_file=self.hosts_file)
            probe.join(timeout=CONNECT_RETRY_SECONDS + PULL_TIMEOUT + 15)
        self._kubelet(item)

    def deckhouse_moved(self) -> None:
        self.pull_everywhere()

    def tick_done(self) -> None:
        if self.sim.registries.local_filled and not self.pushed:
            self._push()
        if self.changed:
            self.pull_everywhere()

    def pull_everywhere(self) -> None:
        """One pull on every node at once, before the simulation goes on: the state as it is now is pulled."""
        self.changed = False
        threads = [threading.Thread(target=self._record_pull, args=(item,), name=f"state-pull-{item.name}",
                                    daemon=True) for item in self.nodes.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=CONNECT_RETRY_SECONDS + PULL_TIMEOUT + 15)
        self.state_pulls += len(threads)

    # -- static pods, as kubelet runs them -------------------------------------------------------
    def _kubelet(self, item: NodeRuntime) -> None:
        manifests = self.sim.node_root(item.name) / "etc/kubernetes/manifests"
        present = {p.name: p.read_text() for p in sorted(manifests.glob("registry-*.yaml"))} if manifests.exists() else {}
        for name in list(item.pods):
            if present.get(name) != item.pods[name]:
                self._stop_pod(item, name)
                self.say(f"{item.name}: static pod {name} stopped")
        for name, text in present.items():
            if name not in item.pods:
                self._start_pod(item, name, text)
                self.say(f"{item.name}: static pod {name} started")

    def _pod_processes(self, item: NodeRuntime, name: str) -> list[str]:
        return [p for p in self.procs.procs if p.startswith(f"pod-{item.name}-{name}-")]

    def _stop_pod(self, item: NodeRuntime, name: str) -> None:
        for proc in self._pod_processes(item, name):
            self.procs.stop(proc)
            del self.procs.procs[proc]
        item.pods.pop(name, None)

    def _start_pod(self, item: NodeRuntime, name: str, text: str) -> None:
        pod = yaml.safe_load(text)
        root = self.sim.node_root(item.name)
        pod_dir = self.base / "pods" / item.name / name.removesuffix(".yaml")
        if pod_dir.exists():
            shutil.rmtree(pod_dir)
        volumes: dict[str, Path] = {}
        for volume in pod["spec"].get("volumes") or []:
            if "hostPath" in volume:
                host = root / volume["hostPath"]["path"].lstrip("/")
                host.mkdir(parents=True, exist_ok=True)  # DirectoryOrCreate; a missing Directory fails below
            else:
                host = pod_dir / "volumes" / volume["name"]
                host.mkdir(parents=True, exist_ok=True)
            volumes[volume["name"]] = host
            # the step's `chown 64535:64535` of the directories it owns is a stub in the simulator
            for owned in [host, *host.parents]:
                if owned == root:
                    break
                if (owned / ".managed-by-d8-registry").exists():
                    lo.chown_tree(owned)
            lo.chown_tree(host)
        probes = []
        for container in pod["spec"]["containers"]:
            command = list(container.get("command") or [])
            tool = BINARIES.get(Path(command[0]).name) if command else None
            if tool is None:
                continue
            mounts = sorted(((m["mountPath"], volumes[m["name"]]) for m in container.get("volumeMounts") or []),
                            key=lambda pair: -len(pair[0]))

            hosts = dict(mounts)
            pattern = re.compile(rf"(?<![\w./-])({'|'.join(re.escape(m) for m, _ in mounts)})(?=[/\s;\"']|$)", re.M)

            def relocate(value: str, pattern=pattern, hosts=hosts) -> str:
                # one pass: a host path put in place is never rewritten again
                return pattern.sub(lambda match: str(hosts[match.group(1)]), value) if hosts else value

            workdir = pod_dir / container["name"]
            (workdir / "logs").mkdir(parents=True, exist_ok=True)
            argv = [lo.unprivileged_binary(self.base, tool)]
            for arg in command[1:]:
                moved = relocate(arg)
                if moved != arg and Path(moved).is_file() and Path(moved).suffix in (".conf", ".yaml"):
                    copy = workdir / Path(moved).name
                    copy.write_text(relocate(Path(moved).read_text()))
                    moved = str(copy)
                argv.append(moved)
            if tool == "nginx":
                argv[1:1] = ["-p", str(workdir)] + ([] if "-e" in command else ["-e", "stderr"])
            lo.chown_tree(workdir)
            env = {e["name"]: relocate(e.get("value", "")) for e in container.get("env") or []}
            env.setdefault("SSL_CERT_DIR", "/etc/ssl/certs")
            # the node's network, the node's /etc/hosts, the pod's user
            user = str(lo.RUN_AS) if lo.RUN_AS is not None else None
            drop = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--"] if user else []
            wrapper = ["nsenter", f"--net={item.netns}", "--", "unshare", "--mount", "--propagation", "private", "--",
                       "sh", "-c", 'mount --bind "$1" /etc/hosts && shift && exec "$@"', "sh", str(self.hosts_file)]
            proc_name = f"pod-{item.name}-{name}-{container['name']}"
            if user:
                # nginx reopens /dev/stdout by path, which checks the log file's owner
                log = self.procs.log(proc_name)
                log.parent.mkdir(parents=True, exist_ok=True)
                log.touch()
                os.chown(log, lo.RUN_AS, lo.RUN_AS)
            self.procs.start(proc_name, wrapper + drop + argv, env=env)
            probe = container.get("readinessProbe") or {}
            for kind in ("tcpSocket", "httpGet"):
                if kind in probe:
                    probes.append((probe[kind].get("host") or item.ip, int(probe[kind]["port"]), container["name"]))
        item.pods[name] = text
        for host, port, container in probes:
            self._wait(item, host, port, f"{item.name} {name} {container}")

    def _wait(self, item: NodeRuntime, host: str, port: int, what: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                in_netns(item.netns, lambda: socket.create_connection((host, port), timeout=0.5)).close()
                return
            except OSError:
                time.sleep(0.05)
        logs = "\n".join(self.procs.tail(p, 1500) for p in self._pod_processes(item, Path(what.split()[1]).name))
        raise DataPlaneError(f"{what} did not listen on {host}:{port}: {logs}")

    # -- d8 mirror push into Local -----------------------------------------------------------------
    def _push(self) -> None:
        users = self.sim.state().get("users") or {}
        writer = users.get("rw") or {}
        masters = [i for i in self.nodes.values() if i.master and "registry-nodeservices.yaml" in i.pods]
        if not writer.get("password") or not masters:
            return
        ca = self.sim.state().get("pki", {}).get("ca", {}).get("cert", "")
        for item in masters:
            try:
                in_netns(item.netns, lambda item=item: _push_image(item.ip, ca, "rw", writer["password"], self.image))
            except (OSError, DataPlaneError) as exc:
                self.say(f"push to {item.name} not possible yet: {exc}")
                return
        self.pushed = True
        self.changed = True  # the replicas serve the image now: pull the filled state
        self.say(f"pushed {LOCAL_REPO}@{self.image.digest} into the Local replicas (as d8 mirror push)")

    # -- the pull loops ----------------------------------------------------------------------------
    def set_stage(self, stage: str) -> None:
        self.stage = stage
        self.stages.append(stage)

    def current_ref(self) -> tuple[str, str | None]:
        registry = self.sim.globals.get("modulesImages", {}).get("registry", {})
        base = registry.get("base", "")
        return f"{base}@{self.image.digest}", pull_secret_creds(registry)

    def start_pulls(self) -> None:
        for item in self.nodes.values():
            thread = threading.Thread(target=self._loop, args=(item,), name=f"pulls-{item.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _loop(self, item: NodeRuntime) -> None:
        count = 0
        while not self._stop.is_set() and count < self.max_pulls and time.monotonic() < self.deadline:
            self._record_pull(item)
            count += 1
            self._stop.wait(self.interval)

    def _record_pull(self, item: NodeRuntime) -> None:
        stage = self.stage
        ref, creds = self.current_ref()
        record = self._pull(item, stage, ref, creds)
        with self._lock:
            self.pulls.append(record)
        self._rmi(item, ref)

    def _pull(self, item: NodeRuntime, stage: str, ref: str, creds: str | None) -> Pull:
        started = time.monotonic()
        retries = 0
        while True:
            args = ["pull", *(["--creds", creds] if creds else []), ref]
            try:
                result = item.runtime.crictl(*args, timeout=PULL_TIMEOUT)
            except subprocess.TimeoutExpired:
                return Pull(item.name, stage, ref, False, time.monotonic() - started, "crictl did not return", retries)
            if result.returncode == 0:
                return Pull(item.name, stage, ref, True, time.monotonic() - started, "", retries)
            error = containerd_error(result.stderr)
            if connection_level(result.stderr) and time.monotonic() - started < CONNECT_RETRY_SECONDS \
                    and not self._stop.is_set():
                retries += 1
                time.sleep(CONNECT_RETRY_INTERVAL)
                continue
            return Pull(item.name, stage, ref, False, time.monotonic() - started, error, retries)

    def _rmi(self, item: NodeRuntime, ref: str) -> None:
        for _ in range(20):
            result = item.runtime.crictl("rmi", ref, timeout=30)
            if result.returncode == 0 or not connection_level(result.stderr):
                return
            time.sleep(CONNECT_RETRY_INTERVAL)

    def wait_pulls(self, per_node: int, timeout: float = 60) -> None:
        """Until every node did `per_node` more pulls (the steady part of a stage), bounded in time."""
        with self._lock:
            base = {n: sum(1 for p in self.pulls if p.node == n) for n in self.nodes}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                done = all(sum(1 for p in self.pulls if p.node == n) >= base[n] + per_node for n in self.nodes)
            if done or not any(t.is_alive() for t in self._threads):
                return
            time.sleep(0.1)

    # -- teardown and report -----------------------------------------------------------------------
    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=PULL_TIMEOUT + 20)
        for bridge in self.bridges:
            bridge.close()
        self.procs.stop_all()
        if self.sim.observer is self:
            self.sim.observer = None

    def failures(self) -> list[Pull]:
        return [p for p in self.pulls if not p.ok]

    def report(self) -> list[str]:
        lines = ["", "=== data plane: CRI pulls per stage (every node, image removed between pulls)",
                 f"{'stage':<28} {'pulls':>6} {'failed':>7} {'p95 s':>7} {'max s':>7} {'CRI retries':>12}"]
        order = list(dict.fromkeys(self.stages))
        for stage in order:
            pulls = [p for p in self.pulls if p.stage == stage]
            if not pulls:
                lines.append(f"{stage:<28} {0:>6} {0:>7} {'-':>7} {'-':>7} {0:>12}")
                continue
            seconds = [p.seconds for p in pulls]
            lines.append(f"{stage:<28} {len(pulls):>6} {sum(not p.ok for p in pulls):>7} {p95(seconds):>7.2f} "
                         f"{max(seconds):>7.2f} {sum(p.cri_retries for p in pulls):>12}")
        restarts = ", ".join(f"{i.name} {i.restarts}" for i in self.nodes.values())
        lines.append(f"containerd restarts by the steps: {restarts}")
        lines.append(f"pulls right after a change: {self.state_pulls}")
        failures = self.failures()
        lines.append(f"failed pulls: {len(failures)}")
        groups: dict[tuple[str, str, str, str], int] = {}
        for pull in failures:
            # one line per kind of error: the client's ephemeral ports differ from pull to pull
            key = (pull.node, pull.stage, pull.ref, re.sub(r"(\d+\.\d+\.\d+\.\d+):\d+->", r"\1:*->", pull.error))
            groups[key] = groups.get(key, 0) + 1
        for (node, stage, ref, error), count in list(groups.items())[:20]:
            lines.append(f"  FAILED {count}x node={node} stage={stage!r} ref={ref}: containerd: {error}")
        if len(groups) > 20:
            lines.append(f"  ...and {len(groups) - 20} more kinds")
        return lines


def _push_image(ip: str, ca_pem: str, user: str, password: str, image: lo.Image) -> None:
    """A push through the front (blob uploads, then the manifest by digest), as `d8 mirror push` does it."""
    address = (ip, 5001)
    for digest, data in image.blobs.items():
        started = lo.https(address, "POST", f"/v2/{LOCAL_REPO}/blobs/uploads/", ca_pem, user=user, password=password)
        if started.status != 202:
            raise DataPlaneError(f"upload start answered {started.status}")
        location = urlsplit(started.headers["location"])
        done = lo.https(address, "PUT", f"{location.path}?{location.query}&digest={digest}", ca_pem, user=user,
                        password=password, body=data, headers={"Content-Type": "application/octet-stream"})
        if done.status != 201:
            raise DataPlaneError(f"blob upload answered {done.status}")
    answer = lo.https(address, "PUT", f"/v2/{LOCAL_REPO}/manifests/{image.digest}", ca_pem, user=user,
                      password=password, body=image.manifest, headers={"Content-Type": lo.OCI_MANIFEST})
    if answer.status != 201:
        raise DataPlaneError(f"manifest upload answered {answer.status}")


def make_base() -> Path:
    """A short directory (unix socket paths are limited) that the pods' user can traverse."""
    path = Path(tempfile.mkdtemp(prefix="d8rdp-", dir="/tmp"))
    path.chmod(0o755)
    return path


def simulate(args, cluster, out, default: list[str]) -> int:
    """`simulate --real-dataplane`: the switches of `simulate`, with every node pulling over CRI throughout.
    Exit status: 4 a pull failed; otherwise as `simulate` (0 every switch ready, 1 stuck, 3 refused)."""
    from ..redact import redact_assignments
    from . import report
    from .engine import Simulator
    from .run import _hosts, build_faults, cluster_registry, module_dir, run_step, steps_from_args

    if os.geteuid() != 0:
        raise DataPlaneError("--real-dataplane needs root (network and mount namespaces for the nodes)")
    module = module_dir(args)
    wall = time.monotonic()
    base = make_base()
    procs = lo.Processes(base)
    sim = plane = None
    outcomes: list[str] = []
    try:
        try:
            upstream = lo.start_upstream(procs, base, "basic", names=(UPSTREAM_NAME,))
            cn.daemon_binary(1), cn.daemon_binary(2), lo.binary("nginx"), lo.binary("crictl")
        except lo.Unavailable as exc:
            raise DataPlaneError(str(exc)) from None
        image = lo.make_image("real-dataplane")
        lo.seed(upstream, image)
        # vanilla containerd ignores hosts.toml `rewrite` (Deckhouse's containerd extension, see
        # tests/e2e/dataplane/test_containerd_node.py): Direct's node path asks the upstream for system/deckhouse
        # literally, so the upstream serves the image there too
        lo.seed(upstream, image, path=LOCAL_REPO)
        cluster = loopback_cluster(cluster, upstream)
        steps = steps_from_args(args, cluster, default)
        (base / "sim").mkdir()
        sim = Simulator(module, cluster, workdir=base / "sim", in_process=args.in_process,
                        faults=build_faults(args), progress=report.live_printer(out),
                        registry_hosts=_hosts([registry for _label, registry in steps] + [cluster_registry(cluster)]))
        plane = RealDataPlane(sim, upstream, image, procs, base, out=out,
                              max_seconds=MAX_SECONDS)
        print(f"=== real data plane in {base}: upstream https://{upstream_address(upstream)}/{lo.UPSTREAM_PATH} "
              f"(TLS, htpasswd), image {image.digest}", file=out, flush=True)
        plane.start()
        plane.start_pulls()
        plane.wait_pulls(3)
        for index, (request, registry) in enumerate(steps, 1):
            target = (registry or {}).get("mode", "Unmanaged") if registry is not None else "Unmanaged (non-configurable)"
            plane.set_stage(f"{index}: -> {target}")
            print(f"\n=== {redact_assignments(request)}: switch to {target}", file=out, flush=True)
            result = run_step(sim, request, registry, target, args)
            outcomes.append(result.outcome)
            print(f"--- {result.outcome.upper()} after {result.ticks} ticks, {result.module_runs} module runs, "
                  f"{result.seconds:.1f} s wall", file=out, flush=True)
            if result.outcome != "ready":
                break
        plane.set_stage(f"after: {plane.stage.split('-> ')[-1]}")
        plane.wait_pulls(3)
    finally:
        if plane is not None:
            plane.close()
        procs.stop_all()
        if sim is not None:
            sim.close()
        shutil.rmtree(base, ignore_errors=True)
    if plane is not None:
        print("\n".join(plane.report()), file=out)
    print(f"wall time: {time.monotonic() - wall:.1f} s", file=out, flush=True)
    if plane is None or plane.failures():
        return 4  # the promise is broken, whatever the switches did
    if "refused" in outcomes:
        return 3
    return 1 if any(o != "ready" for o in outcomes) else 0

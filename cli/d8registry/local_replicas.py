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
"""Local mode on loopback: several masters, each a front + distribution + regsync, replicating to each
other (SPEC 5.8, 10.6, 11.5).

Every file comes from hooks/lib: `dataplane.node_services_files` renders each master's nginx.conf,
config.yaml, htpasswd, certificates and regsync.yaml (peers from `local_peers`); the node LB is
`lb.lb_nginx_conf`. Only the topology is the test's: the masters' addresses, their internal ports and
directories, and a short sync interval. Fronts listen on the production port 5001, because regsync.yaml
names every peer as `<ip>:5001`.

The push client is regctl (regclient, built by `make tools`) with its own config file, as a user would
run it against the push endpoint: `regctl registry set --cacert`, `regctl registry login`, `regctl image
copy`. Image indexes are written as OCI layouts on disk (`ocidir://`), so the client pushes exactly the
bytes we later look for on the replicas.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import platform
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import loopback as lo
from .loopback import dataplane, lb, node_config, pki

# Masters of Local replica sets on loopback, in 127.0.12.0/24, which no other loopback data plane uses; the
# e2e tests, `up --mode Local` and the bench each take their own slice, so they never meet when run in parallel.
LOCAL_IPS = ("127.0.12.1", "127.0.12.2", "127.0.12.3")
UP_IPS = tuple(f"127.0.12.{n}" for n in range(21, 30))
BENCH_IPS = ("127.0.12.41", "127.0.12.42", "127.0.12.43")
TEST_SYNC_INTERVAL = "2s"
LOCAL_USERS = ("ro", "rw", "mirror_puller", "mirror_pusher")
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
# the manifest inside distribution's filesystem store
_BLOBS = Path("docker/registry/v2/blobs/sha256")


@dataclass
class LocalCluster:
    """Local masters with their stores, the node LB in front of them and the node's mirror map."""

    workdir: Path
    procs: lo.Processes
    params: dict
    state: dict
    replicas: list[lo.Replica]
    lb_port: int
    sync_interval: str

    @property
    def ca_pem(self) -> str:
        return self.state["pki"]["ca"]["cert"]

    def user(self, key: str) -> dict:
        """{name, password} of a module user (state key: ro, rw, mirror_puller, mirror_pusher)."""
        return self.state["users"][key]

    def replica(self, ip: str) -> lo.Replica:
        return next(r for r in self.replicas if r.ip == ip)

    def address(self, replica: lo.Replica) -> str:
        return f"{replica.ip}:{replica.layout.port}"

    # -- processes -------------------------------------------------------------------------------
    def start(self, replica: lo.Replica) -> None:
        """front + distribution, then regsync when the replica has peers (as the static pod's containers)."""
        if not (self.procs.running(f"{replica.name}-distribution") and self.procs.running(f"{replica.name}-front")):
            lo.stop_replica(self.procs, replica)
            lo.start_replica(self.procs, replica)
        if "regsync.yaml" in replica.files and not self.procs.running(f"{replica.name}-sync"):
            self.procs.start(f"{replica.name}-sync", sync_argv(self.procs.workdir, replica), user=lo.RUN_AS,
                             env={"HOME": str(replica.root / "tmp")})

    def stop(self, replica: lo.Replica) -> None:
        self.procs.stop(f"{replica.name}-sync")
        lo.stop_replica(self.procs, replica)

    def start_all(self) -> None:
        for replica in self.replicas:
            self.start(replica)
        if not self.procs.running("local-lb"):
            self.start_lb()

    def start_lb(self) -> None:
        conf = lb.lb_nginx_conf([self.address(r) for r in self.replicas], listen=f"127.0.0.1:{self.lb_port}")
        lb_dir = self.workdir / "lb"
        lb_dir.mkdir(exist_ok=True)
        # lb.py pins its pid file to /tmp; a private one keeps this LB apart from the Proxy tests' LB
        (lb_dir / "nginx.conf").write_text(conf.replace("pid /tmp/registry-proxy.pid;", f"pid {lb_dir}/lb.pid;"))
        self.procs.start("local-lb", [lo.binary("nginx"), "-e", "stderr", "-g", "daemon off;", "-p", str(lb_dir),
                                      "-c", str(lb_dir / "nginx.conf")], listen=("127.0.0.1", self.lb_port))

    def mirrors(self) -> dict:
        """The node's hosts dirs for this cluster, from the producers the orchestrator uses."""
        params = node_config.node_params(self.params, self.user("ro"), self.ca_pem)
        return node_config.mirrors(params, [r.ip for r in self.replicas], lb_endpoint=f"127.0.0.1:{self.lb_port}")

    # -- the stores ------------------------------------------------------------------------------
    def store(self, replica: lo.Replica) -> Path:
        return replica.root / "data"

    def blob_on_disk(self, replica: lo.Replica, digest: str) -> bool:
        hexdigest = digest.split(":", 1)[1]
        return (self.store(replica) / _BLOBS / hexdigest[:2] / hexdigest / "data").is_file()

    def manifest_digest(self, replica: lo.Replica, tag: str, who: str = "ro") -> str | None:
        """The digest a replica serves for `system/deckhouse:<tag>`, or None while it has none."""
        user = self.user(who)
        try:
            answer = lo.https((replica.ip, replica.layout.port), "HEAD", f"/v2/{lo.IMAGE_REPO}/manifests/{tag}",
                              self.ca_pem, user=user["name"], password=user["password"],
                              headers={"Accept": f"{OCI_INDEX}, {lo.OCI_MANIFEST}"})
        except OSError:
            return None
        return answer.headers.get("docker-content-digest") if answer.status == 200 else None

    def wait_replicated(self, tag: str, digest: str, replicas: list[lo.Replica], timeout: float) -> float:
        """Seconds until every replica in `replicas` serves `tag` as `digest` (bounded by `timeout`)."""
        started = time.monotonic()
        pending = list(replicas)
        while pending:
            pending = [r for r in pending if self.manifest_digest(r, tag) != digest]
            if not pending:
                break
            if time.monotonic() - started > timeout:
                logs = "\n".join(f"--- {r.name}-sync ---\n{self.procs.tail(f'{r.name}-sync', 2000)}" for r in pending)
                raise TimeoutError(f"{tag} did not reach {[r.name for r in pending]} within {timeout:.0f}s\n{logs}")
            time.sleep(0.1)
        return time.monotonic() - started

    def gc(self, replica: lo.Replica) -> subprocess.CompletedProcess:
        """One pass of the rendered GC command against this replica's store, as its `gc` container runs it."""
        config = replica.root / "distribution" / "config.yaml"
        argv = dataplane.gc_command(str(config), lo.unprivileged_binary(self.procs.workdir, "registry"))
        kwargs = {"user": lo.RUN_AS, "group": lo.RUN_AS, "extra_groups": []} if lo.RUN_AS is not None else {}
        return subprocess.run(argv, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                              env={**os.environ, **lo.NO_PROXY_ENV}, **kwargs)


def sync_argv(workdir: Path, replica: lo.Replica) -> list[str]:
    """`regsync server -c <regsync.yaml>`: the sync container's command with this replica's file."""
    return [lo.unprivileged_binary(workdir, "regsync"), "server", "-c", str(replica.root / "sync" / "regsync.yaml")]


def build_local_cluster(procs: lo.Processes, workdir: Path, ips: tuple[str, ...] = LOCAL_IPS,
                        sync_interval: str = TEST_SYNC_INTERVAL) -> LocalCluster:
    """Render every master of a Local replica set; nothing is started yet."""
    for ip in ips:
        if not lo.port_is_free(ip, 5001):
            raise lo.Unavailable(f"{ip}:5001 is taken (another Local replica set running?)")
    for tool in ("registry", "nginx", "regsync"):
        lo.binary(tool)
    params, state = lo.module_state("Local", None, LOCAL_USERS)
    ca = pki.KeyPair(state["pki"]["ca"]["cert"], state["pki"]["ca"]["key"])
    masters = [dataplane.Master(f"local-{i}", ip) for i, ip in enumerate(ips)]
    replicas = []
    for master in masters:
        root = workdir / master.name
        layout = lo.replica_layout(master.ip, root)
        entry, _ = dataplane.node_services_files(
            master, masters, "Local", None, ca, state["users"], state["http_secret"], lo.CLUSTER_DOMAIN, None, None,
            lo.now(), layout=layout, data_dir=str(root / "data"), sync_interval=sync_interval)
        replica = lo.Replica(master.name, master.ip, root, layout, entry["files"])
        lo.write_replica(replica)
        replicas.append(replica)
    return LocalCluster(workdir, procs, params, state, replicas, lo.free_port(), sync_interval)


# -- images --------------------------------------------------------------------------------------

@dataclass
class Platform:
    os: str
    architecture: str
    manifest: dict
    digest: str


@dataclass
class ImageIndex:
    """A multi-arch image index written as an OCI layout (`ocidir://<layout>:<tag>`)."""

    layout: Path
    tag: str
    digest: str
    children: list[Platform]
    blobs: dict[str, int] = field(default_factory=dict)  # digest -> size, every blob of every child

    def child(self, architecture: str) -> Platform:
        return next(c for c in self.children if c.architecture == architecture)

    @property
    def size(self) -> int:
        return sum(self.blobs.values())


def _put(layout: Path, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _layer(label: str, size: int) -> tuple[bytes, bytes]:
    """(gzip layer, tar) holding one file of pseudo-random bytes; incompressible, so `size` is what travels."""
    payload = hashlib.shake_256(label.encode()).digest(size) if size <= 1 << 20 else _long_random(label, size)
    tar_bytes = lo.payload_tar(payload)
    return gzip.compress(tar_bytes, compresslevel=1, mtime=0), tar_bytes


def _long_random(label: str, size: int) -> bytes:
    chunks, counter = [], 0
    while sum(map(len, chunks)) < size:
        chunks.append(hashlib.shake_256(f"{label}/{counter}".encode()).digest(1 << 20))
        counter += 1
    return b"".join(chunks)[:size]


def write_index(layout: Path, label: str, tag: str, architectures: tuple[str, ...] = ("amd64", "arm64"),
                layer_bytes: int = 128 * 1024, layers: int = 1) -> ImageIndex:
    """An OCI layout holding an image index with one linux image per architecture (distinct layers)."""
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    children, blobs, descriptors = [], {}, []
    for arch in architectures:
        layer_descs, diff_ids = [], []
        for n in range(layers):
            gz, tar_bytes = _layer(f"{label}/{arch}/{n}", layer_bytes)
            layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **_put(layout, gz)}
            layer_descs.append(layer)
            diff_ids.append("sha256:" + hashlib.sha256(tar_bytes).hexdigest())
            blobs[layer["digest"]] = layer["size"]
        config = json.dumps({"architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/true"]},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}}, sort_keys=True).encode()
        config_desc = {"mediaType": "application/vnd.oci.image.config.v1+json", **_put(layout, config)}
        blobs[config_desc["digest"]] = config_desc["size"]
        manifest = {"schemaVersion": 2, "mediaType": lo.OCI_MANIFEST, "config": config_desc, "layers": layer_descs}
        manifest_desc = _put(layout, json.dumps(manifest, sort_keys=True).encode())
        descriptors.append({"mediaType": lo.OCI_MANIFEST, **manifest_desc,
                            "platform": {"architecture": arch, "os": "linux"}})
        children.append(Platform("linux", arch, manifest, manifest_desc["digest"]))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors,
             "annotations": {"io.deckhouse.e2e/label": label}}
    index_desc = _put(layout, json.dumps(index, sort_keys=True).encode())
    (layout / "index.json").write_text(json.dumps({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_INDEX, **index_desc,
                       "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
    return ImageIndex(layout, tag, index_desc["digest"], children, blobs)


# -- the push client -----------------------------------------------------------------------------

@dataclass
class Regctl:
    """regctl with a private config file: the registries it may reach, their CA, the logins."""

    config_dir: Path

    def run(self, *args: str, stdin: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        env = {**os.environ, **lo.NO_PROXY_ENV, "HOME": str(self.config_dir),
               "REGCTL_CONFIG": str(self.config_dir / "config.json")}
        return subprocess.run([lo.binary("regctl"), *args], input=stdin, capture_output=True, text=True,
                              timeout=timeout, env=env, stdin=None if stdin is not None else subprocess.DEVNULL)

    def checked(self, *args: str, stdin: str | None = None, timeout: float = 300) -> str:
        result = self.run(*args, stdin=stdin, timeout=timeout)
        if result.returncode != 0:
            shown = " ".join(shlex.quote(a) for a in args)
            raise RuntimeError(f"regctl {shown} failed ({result.returncode}): {result.stderr[-2000:]}")
        return result.stdout

    def trust(self, host: str, ca_pem: str | None) -> None:
        """TLS with `ca_pem` for `host`, or plain HTTP when it is None (distribution's own listener).
        No connectivity check: the front answers 401 until `login`."""
        if ca_pem is None:
            self.checked("registry", "set", host, "--skip-check", "--tls", "disabled")
        else:
            self.checked("registry", "set", host, "--skip-check", "--tls", "enabled", "--cacert", ca_pem)

    def login(self, host: str, user: str, password: str) -> None:
        # the password goes through stdin: never on a command line other users can read
        self.checked("registry", "login", host, "-u", user, "--pass-stdin", stdin=password)

    def push(self, index: ImageIndex, target: str) -> subprocess.CompletedProcess:
        """Copy the index with every child and blob from its OCI layout to `target` (`host/repo:tag`)."""
        return self.run("image", "copy", f"ocidir://{index.layout}:{index.tag}", target)


def make_regctl(workdir: Path, name: str = "regctl") -> Regctl:
    path = workdir / name
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return Regctl(path)

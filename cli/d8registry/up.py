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
"""'up': a mode's data plane on loopback with the real binaries, and a CRI pull through it.

Every mode ends with containerd pulling over CRI (crictl), the daemon started from the config.toml and
hosts dir the containerd node step wrote (d8registry.containerd_node). Secrets never go to stdout: the
module CA and every generated credential are written to files in the work dir (credentials: mode 0600),
and only their paths are printed.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

from . import containerd_node as cn
from . import local_replicas as lr
from . import loopback as lo


def _pull(node: cn.Node, ref: str, creds: str | None = None) -> float:
    started = time.monotonic()
    result = node.containerd.crictl("pull", *(["--creds", creds] if creds else []), ref)
    took = time.monotonic() - started
    if result.returncode != 0:
        raise lo.Unavailable(f"CRI pull of {ref} failed: {result.stderr.strip()[-1500:]}")
    return took


def _write_secrets(workdir: Path, ca_pem: str, entries: dict[str, dict]) -> tuple[Path, Path]:
    """The module CA (public, 0644) and the credentials (0600); returns both paths."""
    ca = workdir / "module-ca.crt"
    ca.write_text(ca_pem)
    ca.chmod(0o644)
    credentials = workdir / "credentials.json"
    credentials.touch(mode=0o600)
    credentials.chmod(0o600)  # before any secret is written
    credentials.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
    return ca, credentials


def _print_secrets(out, ca: Path, credentials: Path, keep: bool) -> None:
    print(f"  module CA: {ca}", file=out)
    print(f"  generated credentials (mode 0600, never printed): {credentials}", file=out)
    if not keep:
        print("  (both live in the work dir, which is removed on stop; use --keep to read them)", file=out)


def _upstream_url(upstream: lo.Upstream) -> str:
    return f"{upstream.scheme.lower()}://{upstream.host}"


def _upstream_creds(upstream: lo.Upstream) -> str | None:
    return f"{upstream.username}:{upstream.password}" if upstream.auth != "none" else None


def _proxy(procs: lo.Processes, workdir: Path, upstream: lo.Upstream, args, out) -> None:
    image = lo.make_image("up-proxy")
    lo.seed(upstream, image)
    cluster = lo.build_proxy_cluster(procs, workdir, upstream)
    for replica in cluster.replicas:
        lo.start_replica(procs, replica)
        print(f"  master {replica.name}: front https://{replica.front_address[0]}:{replica.front_address[1]}", file=out)
    cluster.start_lb()
    print(f"  node LB: 127.0.0.1:{cluster.lb_port} (nginx stream over the three fronts)", file=out)
    ro = cluster.ro
    ca, credentials = _write_secrets(workdir, cluster.ca_pem, {"ro": {"username": ro["name"], "password": ro["password"]}})
    _print_secrets(out, ca, credentials, args.keep)
    node = cn.start(procs, workdir / "node", cn.proxy_mirrors(cluster))
    ref = lo.image_ref(image.digest)
    took = _pull(node, ref)
    print(f"  containerd (CRI) pulled {ref} through hosts.toml -> LB -> master cache -> upstream in {took:.2f} s",
          file=out)


def _direct(procs: lo.Processes, workdir: Path, upstream: lo.Upstream, args, out) -> None:
    image = lo.make_image("up-direct")
    lo.seed(upstream, image)
    # on 127.0.0.1, an address the in-cluster proxy's certificate names, so containerd can verify it
    replica, state = lo.build_incluster_proxy(procs, workdir, upstream, ip="127.0.0.1")
    lo.start_replica(procs, replica)
    service = f"{replica.front_address[0]}:{replica.front_address[1]}"
    print(f"  in-cluster proxy (the registry Service): https://{service}", file=out)
    ca_pem = state["pki"]["ca"]["cert"]
    ca, credentials = _write_secrets(workdir, ca_pem, {"upstream": {"username": upstream.username,
                                                                    "password": upstream.password}}
                                     if upstream.auth != "none" else {})
    _print_secrets(out, ca, credentials, args.keep)
    node_mirrors, _ = cn.upstream_mirrors(upstream, "Direct")
    mirror_map = {**node_mirrors, service: [{"scheme": "https", "host": service, "ca": ca_pem}]}
    node = cn.start(procs, workdir / "node", mirror_map)
    creds = _upstream_creds(upstream)  # in-cluster clients use the upstream credentials (SPEC 5.6)
    ref = f"{service}/{lo.IMAGE_REPO}@{image.digest}"
    took = _pull(node, ref, creds)
    print(f"  containerd (CRI) pulled {ref} through the in-cluster proxy from the upstream's "
          f"{lo.UPSTREAM_PATH} in {took:.2f} s", file=out)
    # The node path needs Deckhouse's containerd: vanilla ignores `rewrite` in hosts.toml.
    fixed = lo.image_ref(image.digest)
    result = node.containerd.crictl("pull", *(["--creds", creds] if creds else []), fixed)
    if result.returncode == 0:
        print(f"  node path: containerd pulled {fixed} through the rewrite hosts.toml", file=out)
    else:
        print(f"  node path: {fixed} needs Deckhouse's containerd (hosts.toml `rewrite`); this vanilla containerd "
              "ignores the key and could not pull it, as expected (docs/FAQ.md, \"Which containerd builds does each "
              "mode need?\")", file=out)


def _local(procs: lo.Processes, workdir: Path, args, out) -> None:
    """A Local replica set: every master's front + distribution + regsync, the node LB, a push of an image
    index with `rw` through a real OCI client (regctl), replication, and a CRI pull with the pushed-to master
    down (SPEC 5.8, 10.6)."""
    if not 1 <= args.masters <= len(lr.UP_IPS):
        raise lo.Unavailable(f"--masters must be 1..{len(lr.UP_IPS)} for Local")
    cluster = lr.build_local_cluster(procs, workdir, lr.UP_IPS[:args.masters])
    cluster.start_all()
    for replica in cluster.replicas:
        sync = f"regsync every {cluster.sync_interval} from its peers" if "regsync.yaml" in replica.files else "no peers"
        print(f"  Local master front: https://{cluster.address(replica)} ({replica.name}, {sync})", file=out)
    print(f"  node LB: 127.0.0.1:{cluster.lb_port} (nginx stream over the fronts)", file=out)
    first = cluster.replicas[0]
    push_to = f"{cluster.address(first)}/{lo.IMAGE_REPO}"
    users = {key: {"username": entry["name"], "password": entry["password"]}
             for key, entry in cluster.state["users"].items()}
    ca, credentials = _write_secrets(workdir, cluster.ca_pem, users)
    print(f"  push address: {push_to} (in a cluster: registry.<publicDomain>/{lo.IMAGE_REPO}); "
          "user rw, password in the credentials file", file=out)
    _print_secrets(out, ca, credentials, args.keep)

    client = lr.make_regctl(workdir, "up-regctl")
    for replica in cluster.replicas:
        client.trust(cluster.address(replica), cluster.ca_pem)
    rw = cluster.user("rw")
    client.login(cluster.address(first), rw["name"], rw["password"])
    index = lr.write_index(workdir / "up-image", "up-local", "v1", architectures=("amd64", "arm64"))
    pushed = client.push(index, f"{push_to}:{index.tag}")
    if pushed.returncode != 0:
        raise lo.Unavailable(f"regctl could not push to {push_to}: {pushed.stderr.strip()[-1500:]}")
    print(f"  regctl pushed the image index {lo.IMAGE_REPO}:{index.tag} (linux/amd64 + linux/arm64) to "
          f"{first.name} with user rw", file=out)
    others = cluster.replicas[1:]
    if others:
        took = cluster.wait_replicated(index.tag, index.digest, others, timeout=120)
        print(f"  replicated to {', '.join(r.name for r in others)} in {took:.2f} s "
              f"(sync interval {cluster.sync_interval}; production: 60 s)", file=out)
    node = cn.start(procs, workdir / "node", cluster.mirrors())
    ref = lo.image_ref(index.digest)
    if others:
        cluster.stop(first)
    took = _pull(node, ref)
    where = f"with {first.name} stopped" if others else f"from {first.name}"
    print(f"  containerd (CRI) pulled {ref} through hosts.toml -> LB (user ro) {where} in {took:.2f} s", file=out)
    if others:
        cluster.start(first)
    if args.keep:
        print(f"  push with any OCI client, e.g.: regctl registry set {cluster.address(first)} --cacert \"$(cat {ca})\"; "
              f"regctl registry login {cluster.address(first)} -u rw; "
              f"regctl image copy <image> {push_to}:<tag>", file=out)


def up(args, out) -> int:
    workdir = lo.make_workdir("d8up-")
    procs = lo.Processes(workdir)
    stop = {"now": False}
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        print(f"Starting the {args.mode} data plane on loopback (work dir {workdir})", file=out, flush=True)
        if args.mode == "Local":
            _local(procs, workdir, args, out)
        else:
            upstream = lo.start_upstream(procs, workdir, args.upstream_auth)
            print(f"  upstream registry: {_upstream_url(upstream)} ({args.upstream_auth} auth)", file=out)
            (_proxy if args.mode == "Proxy" else _direct)(procs, workdir, upstream, args, out)
        if args.keep:
            print("Up. Press Ctrl-C to stop.", file=out, flush=True)
            while not stop["now"]:
                time.sleep(0.5)
        return 0
    except lo.Unavailable as exc:
        print(f"d8registry up: {exc}", file=out)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
        print("Stopped every process and removed the work dir.", file=out, flush=True)

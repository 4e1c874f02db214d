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
"""'up': a mode's data plane on loopback with the real binaries, and a pull through it."""

from __future__ import annotations

import shutil
import signal
import time

from . import loopback as lo


def _pull_proxy(procs: lo.Processes, workdir, upstream, out) -> None:
    image = lo.make_image("up-proxy")
    lo.seed(upstream, image)
    cluster = lo.build_proxy_cluster(procs, workdir, upstream)
    for replica in cluster.replicas:
        lo.start_replica(procs, replica)
        print(f"  master {replica.name}: front https://{replica.front_address[0]}:{replica.front_address[1]}", file=out)
    cluster.start_lb()
    print(f"  node LB: 127.0.0.1:{cluster.lb_port} (nginx stream over the three fronts)", file=out)
    containerd = lo.start_containerd(procs, workdir, cluster.hosts_dir)
    ref = lo.image_ref(image.digest)
    started = time.monotonic()
    result = containerd.pull(ref)
    took = time.monotonic() - started
    if result.returncode != 0:
        raise lo.Unavailable(f"pull of {ref} failed: {result.stderr.strip()}")
    print(f"  pulled {ref} through hosts.toml -> LB -> master cache -> upstream in {took:.2f} s", file=out)


def _pull_direct(procs: lo.Processes, workdir, upstream, out) -> None:
    image = lo.make_image("up-direct")
    lo.seed(upstream, image)
    replica, state = lo.build_incluster_proxy(procs, workdir, upstream)
    lo.start_replica(procs, replica)
    user = {"user": upstream.username, "password": upstream.password} if upstream.auth != "none" else {}
    answer = lo.https(replica.front_address, "GET", f"/v2/{lo.IMAGE_REPO}/manifests/{image.digest}",
                      state["pki"]["ca"]["cert"], headers={"Accept": lo.OCI_MANIFEST}, **user)
    if answer.status != 200:
        raise lo.Unavailable(f"in-cluster proxy answered {answer.status} for system/deckhouse@{image.digest}")
    print(f"  in-cluster proxy https://{replica.front_address[0]}:{replica.front_address[1]} serves "
          f"system/deckhouse@{image.digest[:19]}… from the upstream's deckhouse/ee", file=out)


def _local(procs: lo.Processes, workdir, out) -> None:
    replica, state = lo.build_local_replica(procs, workdir)
    lo.start_replica(procs, replica)
    ro = state["users"]["ro"]
    answer = lo.https(replica.front_address, "GET", "/v2/", state["pki"]["ca"]["cert"],
                      user=ro["name"], password=ro["password"])
    print(f"  Local master https://{replica.front_address[0]}:{replica.front_address[1]} answers /v2/ with "
          f"{answer.status} for user ro (push with user rw)", file=out)


def up(args, out) -> int:
    workdir = lo.make_workdir("d8up-")
    procs = lo.Processes(workdir)
    stop = {"now": False}
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        print(f"Starting the {args.mode} data plane on loopback (work dir {workdir})", file=out, flush=True)
        if args.mode == "Local":
            _local(procs, workdir, out)
        else:
            upstream = lo.start_upstream(procs, workdir, args.upstream_auth)
            print(f"  upstream registry: https://{upstream.host} ({args.upstream_auth} auth)", file=out)
            (_pull_proxy if args.mode == "Proxy" else _pull_direct)(procs, workdir, upstream, out)
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

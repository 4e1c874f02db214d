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
"""Benchmark: image pulls through the Proxy-mode data plane on loopback (real containerd, nginx, distribution).

In one run, interleaved so machine speed cancels out in the ratio:
  * a CRI pull of `registry.d8-system.svc:5001/system/deckhouse@<digest>` through the rendered
    hosts.toml -> node LB -> master front -> cache, against a CRI pull straight from one master's
    front (its own hosts dir, same containerd, same client), both with warm caches;
  * upstream requests caused by those repeat pulls (blobs and manifests);
  * pull success and latency with one and with two of the three masters down, and with the LB down
    (containerd falls back to the masters listed in hosts.toml).
Every pull removes the image afterwards, so each one transfers the whole image from the data plane.
Needs root (containerd) and `make deps`. Usage: python bench/dataplane_pull.py [--rounds N] [--layer-mib M]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "cli")]

from d8registry import loopback as lo  # noqa: E402


def _pull_ms(containerd: lo.Containerd, ref: str) -> tuple[bool, float]:
    started = time.perf_counter()
    result = containerd.pull(ref)
    took = (time.perf_counter() - started) * 1000
    containerd.remove(ref)
    return result.returncode == 0, took


def _direct_hosts(cluster: lo.ProxyCluster, replica: lo.Replica) -> str:
    """A hosts dir naming one master as the registry itself, from the same mirror entry nodes get."""
    node_params = lo.node_config.node_params(cluster.params, cluster.ro, cluster.ca_pem)
    entries = lo.node_config.mirrors(node_params, [r.ip for r in cluster.replicas],
                                     lb_endpoint=f"127.0.0.1:{cluster.lb_port}")[lo.FIXED_HOST]
    host = f"{replica.ip}:{replica.layout.port}"
    mirror = next(m for m in entries if m["host"] == host)
    files = lo.node_config.render_hosts({host: [mirror]}, hosts_root=str(cluster.hosts_dir))[host]
    (cluster.hosts_dir / host).mkdir(exist_ok=True)
    for name, content in files.items():
        (cluster.hosts_dir / host / name).write_text(content)
    return host


def _summary(samples: list[tuple[bool, float]]) -> str:
    ok = [ms for success, ms in samples if success]
    median = f"{statistics.median(ok):7.1f} ms" if ok else "      - ms"
    return f"{len(ok)}/{len(samples)} ok, median {median}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--layer-mib", type=int, default=16)
    args = parser.parse_args()

    workdir = lo.make_workdir("d8dp-bench-")
    procs = lo.Processes(workdir)
    try:
        upstream = lo.start_upstream(procs, workdir, "basic")
        image = lo.make_image("bench", layer_bytes=args.layer_mib * 1024 * 1024)
        lo.seed(upstream, image)
        cluster = lo.build_proxy_cluster(procs, workdir, upstream)
        for replica in cluster.replicas:
            lo.start_replica(procs, replica)
        cluster.start_lb()
        containerd = lo.start_containerd(procs, workdir, cluster.hosts_dir)
        ref = lo.image_ref(image.digest)
        direct_host = _direct_hosts(cluster, cluster.replicas[0])
        direct_ref = f"{direct_host}/{lo.IMAGE_REPO}@{image.digest}"

        cold = _pull_ms(containerd, ref)
        for replica in cluster.replicas:  # every cache holds the image: the LB's choice does not matter
            for target in [f"/v2/{lo.IMAGE_REPO}/manifests/{image.digest}",
                           *(f"/v2/{lo.IMAGE_REPO}/blobs/{d}" for d in image.blobs)]:
                lo.https(replica.front_address, "GET", target, cluster.ca_pem, user=cluster.ro["name"],
                         password=cluster.ro["password"], headers={"Accept": lo.OCI_MANIFEST})
        _pull_ms(containerd, direct_ref)  # warm containerd's own code paths for the direct host too

        before = len(upstream.requests())
        via_lb, direct = [], []
        for _ in range(args.rounds):
            via_lb.append(_pull_ms(containerd, ref))
            direct.append(_pull_ms(containerd, direct_ref))
        repeat = upstream.requests()[before:]

        degraded = {}
        lo.stop_replica(procs, cluster.replicas[0])
        degraded["1 of 3 masters down"] = [_pull_ms(containerd, ref) for _ in range(args.rounds)]
        lo.stop_replica(procs, cluster.replicas[1])
        degraded["2 of 3 masters down"] = [_pull_ms(containerd, ref) for _ in range(args.rounds)]
        for replica in cluster.replicas[:2]:
            lo.start_replica(procs, replica)
        cluster.stop_lb()
        degraded["LB down (masters direct)"] = [_pull_ms(containerd, ref) for _ in range(args.rounds)]
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)

    lb_ms = statistics.median(ms for ok, ms in via_lb if ok)
    direct_ms = statistics.median(ms for ok, ms in direct if ok)
    print(f"image: 1 layer of {args.layer_mib} MiB; rounds: {args.rounds} (LB and direct interleaved)")
    print(f"cold pull (caches empty, from upstream):          {cold[1]:7.1f} ms ({'ok' if cold[0] else 'FAILED'})")
    print(f"hosts.toml -> LB -> cache:                        {_summary(via_lb)}")
    print(f"direct from one cache:                            {_summary(direct)}")
    print(f"ratio LB path / direct:                           {lb_ms / direct_ms:.2f}")
    print(f"upstream requests during {2 * args.rounds} warm pulls:           "
          f"blobs {sum('/blobs/' in r for r in repeat)}, manifests {sum('/manifests/' in r for r in repeat)}")
    for name, samples in degraded.items():
        print(f"{name + ':':<50}{_summary(samples)}")


if __name__ == "__main__":
    main()

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
"""Benchmark: Local mode on loopback (three masters: nginx front, distribution, regsync; SPEC 5.8).

In one run:
  * push throughput of regctl through a master's front (TLS, Basic auth with bcrypt, the ACL map,
    nginx proxying without buffering) against regctl straight to the same master's distribution
    listener (plain HTTP, no auth); rounds interleaved so machine speed cancels out in the ratio;
    every round pushes fresh content, so nothing is skipped as already present; sync is stopped meanwhile;
  * replication delay: from the end of a push to one master until both others serve the tag, with the
    sync interval of the e2e tests (regsync `@every <interval>`; production uses 60 s);
  * garbage collection: one pass of the rendered GC command over the store the run filled.
Needs `make deps` (regctl, regsync, registry, nginx). Usage: python bench/local_push.py [--rounds N] [--layer-mib M]
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

from d8registry import local_replicas as lr  # noqa: E402
from d8registry import loopback as lo  # noqa: E402


def _push_seconds(client: lr.Regctl, index: lr.ImageIndex, target: str) -> float:
    started = time.perf_counter()
    result = client.push(index, target)
    took = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"push to {target} failed: {result.stderr[-1000:]}")
    return took


def _store_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("data") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--layer-mib", type=int, default=32)
    args = parser.parse_args()
    if not 1 <= args.rounds <= 20 or not 1 <= args.layer_mib <= 256:
        parser.error("--rounds 1..20, --layer-mib 1..256")
    workdir = lo.make_workdir("d8local-bench-")
    procs = lo.Processes(workdir)
    try:
        cluster = lr.build_local_cluster(procs, workdir, lr.BENCH_IPS)
        cluster.start_all()
        first = cluster.replicas[0]
        front = cluster.address(first)
        direct = first.layout.distribution
        client = lr.make_regctl(workdir)
        client.trust(front, cluster.ca_pem)
        client.trust(direct, None)
        rw = cluster.user("rw")
        client.login(front, rw["name"], rw["password"])

        # -- push throughput: front vs distribution, sync stopped so nothing else competes -----------
        for replica in cluster.replicas:
            procs.stop(f"{replica.name}-sync")
        timings: dict[str, list[float]] = {"front": [], "direct": []}
        size = 0
        pushed: list[tuple[str, str]] = []
        for n in range(args.rounds):
            for path, target in (("front", front), ("direct", direct)):
                index = lr.write_index(workdir / f"push-{path}-{n}", f"bench-{path}-{n}", f"{path}-{n}",
                                       architectures=(lr.HOST_ARCH,), layer_bytes=args.layer_mib << 20)
                size = index.size
                pushed.append((index.tag, index.digest))
                timings[path].append(_push_seconds(client, index, f"{target}/{lo.IMAGE_REPO}:{index.tag}"))
                shutil.rmtree(index.layout)
        mib = size / (1 << 20)
        print(f"push of one {mib:.1f} MiB image with regctl, {args.rounds} rounds each:")
        for path in ("front", "direct"):
            median = statistics.median(timings[path])
            print(f"  {path:6s}  median {median * 1000:8.1f} ms  {mib / median:7.1f} MiB/s")
        ratio = statistics.median(timings["front"]) / statistics.median(timings["direct"])
        print(f"  ratio front / direct (time): {ratio:.2f}")

        # -- replication delay ----------------------------------------------------------------------
        for replica in cluster.replicas:
            cluster.start(replica)
        # first let the restarted sync catch up with the images above, so each delay is one push's own
        for tag, digest in pushed:
            cluster.wait_replicated(tag, digest, cluster.replicas[1:], timeout=300)
        delays = []
        for n in range(args.rounds):
            index = lr.write_index(workdir / f"sync-{n}", f"bench-sync-{n}", f"sync-{n}", architectures=(lr.HOST_ARCH,))
            _push_seconds(client, index, f"{front}/{lo.IMAGE_REPO}:{index.tag}")
            delays.append(cluster.wait_replicated(index.tag, index.digest, cluster.replicas[1:], timeout=120))
        print(f"replication to both other masters, sync interval {cluster.sync_interval}, {args.rounds} pushes:")
        print(f"  median {statistics.median(delays):.2f} s, max {max(delays):.2f} s")

        # -- garbage collection ---------------------------------------------------------------------
        blobs, stored = _store_size(cluster.store(first) / "docker/registry/v2/blobs")
        started = time.perf_counter()
        collected = cluster.gc(first)
        took = time.perf_counter() - started
        if collected.returncode != 0:
            raise RuntimeError(f"garbage-collect failed: {collected.stderr[-1000:]}")
        print(f"garbage-collect of {first.name}'s store ({blobs} blobs, {stored / (1 << 20):.1f} MiB): {took:.2f} s")
        return 0
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

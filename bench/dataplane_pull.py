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
  * failover (SPEC 10.6), each case from a fresh LB: one master silent (its packets dropped, so
    connect() hangs until the LB's connect timeout), the master serving the layer killed
    mid-transfer, one and two of the three masters stopped, and the LB down (containerd falls back
    to the masters listed in hosts.toml). For each case: the first pull after the fault and the p95
    of the next `--rounds`, as ratios to the healthy median, and every failed pull.
Every pull removes the image afterwards, so each one transfers the whole image from the data plane.
The whole topology runs in a network namespace of its own (d8registry.faults), so the drop rule
never touches the machine's network. Needs root (containerd, namespaces) and `make deps`.
Usage: python bench/dataplane_pull.py [--rounds N] [--layer-mib M]
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "cli")]

from d8registry import faults  # noqa: E402
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


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class Case:
    """One fault: the first pull after it, the pulls that follow, and what the LB saw."""

    name: str
    healthy_ms: float              # median of healthy pulls of the same image through the LB
    first: tuple[bool, float]
    rest: list[tuple[bool, float]]
    lb_timeouts: int | None = None  # connects the LB gave up on after proxy_connect_timeout
    note: str = ""

    @property
    def failed(self) -> int:
        return sum(not ok for ok, _ in [self.first, *self.rest])

    @property
    def penalty_s(self) -> float:
        return (self.first[1] - self.healthy_ms) / 1000

    def line(self) -> str:
        ok_rest = [ms for ok, ms in self.rest if ok]
        p95 = _p95(ok_rest) if ok_rest else float("nan")
        timeouts = "" if self.lb_timeouts is None else f", LB connect timeouts {self.lb_timeouts}"
        return (f"{self.name + ':':<32} first {self.first[1]:7.1f} ms = {self.first[1] / self.healthy_ms:4.2f}x "
                f"({self.penalty_s:+5.2f} s); p95 of next {len(self.rest)}: {p95:7.1f} ms = "
                f"{p95 / self.healthy_ms:4.2f}x; failed {self.failed}/{1 + len(self.rest)}{timeouts}"
                f"{'; ' + self.note if self.note else ''}")


def _fresh_lb(cluster: lo.ProxyCluster) -> int:
    """Restart the LB so no case inherits another's failure marks; returns its log offset."""
    cluster.stop_lb()
    cluster.start_lb()
    return faults.log_size(cluster.procs, "lb")


def _warm(cluster: lo.ProxyCluster, image: lo.Image) -> None:
    """Every cache holds the image: the LB's choice does not matter, any master can take over any range."""
    for replica in cluster.replicas:
        for target in [f"/v2/{lo.IMAGE_REPO}/manifests/{image.digest}",
                       *(f"/v2/{lo.IMAGE_REPO}/blobs/{d}" for d in image.blobs)]:
            lo.https(replica.front_address, "GET", target, cluster.ca_pem, user=cluster.ro["name"],
                     password=cluster.ro["password"], headers={"Accept": lo.OCI_MANIFEST})


@dataclass
class Pulls:
    containerd: lo.Containerd
    rounds: int

    def one(self, ref: str) -> tuple[bool, float]:
        return _pull_ms(self.containerd, ref)

    def many(self, ref: str) -> list[tuple[bool, float]]:
        return [self.one(ref) for _ in range(self.rounds)]


def _fault_cases(cluster: lo.ProxyCluster, pulls: Pulls, network: faults.PrivateNetwork, small: tuple[str, float],
                 large: tuple[str, float, int]) -> list[Case]:
    """Each case on the small image, except the kill, which needs a layer that takes a while to stream."""
    procs, replicas = cluster.procs, cluster.replicas
    ref, healthy = small
    big_ref, big_healthy, big_layer = large
    cases = []

    def timeouts(mark: int) -> int:
        return len(faults.lb_connect_timeouts(procs, mark))

    # A silent master, and the LB's next choice: the other two carry a connection each (held open
    # through the first pull), so least_conn sends the first connection of the pull to the silent one.
    silent = replicas[1]
    mark = _fresh_lb(cluster)
    fault = faults.Silence(network, silent.ip, silent.layout.port)
    try:
        with faults.next_pick(("127.0.0.1", cluster.lb_port), replicas, silent):
            fault.apply()
            first = pulls.one(ref)
        first_timeouts = timeouts(mark)
        rest = pulls.many(ref)
    finally:
        fault.lift()
    cases.append(Case(f"1 master silent ({silent.ip})", healthy, first, rest, timeouts(mark),
                      f"{first_timeouts} of them in the first pull"))

    # The master streaming the layer SIGKILLed once a quarter of it has been sent.
    mark = _fresh_lb(cluster)
    killed = faults.pull_and_kill_server(pulls.containerd, procs, replicas, big_ref, after_bytes=big_layer // 4)
    pulls.containerd.remove(big_ref)
    rest = pulls.many(big_ref)
    note = (f"{killed.victim} killed after sending {killed.sent_at_kill / 2**20:.1f} MiB" if killed.victim
            else "NOT KILLED: the pull ended before a quarter of the layer was sent")
    cases.append(Case("1 master killed mid-transfer", big_healthy, (killed.pull_ok, killed.pull_ms), rest,
                      timeouts(mark), note))
    for replica in replicas:
        if not (procs.running(f"{replica.name}-front") and procs.running(f"{replica.name}-distribution")):
            lo.stop_replica(procs, replica)  # reaps what the kill left
            lo.start_replica(procs, replica)

    mark = _fresh_lb(cluster)
    lo.stop_replica(procs, replicas[0])
    first = pulls.one(ref)
    cases.append(Case("1 of 3 masters stopped", healthy, first, pulls.many(ref), timeouts(mark)))
    mark = faults.log_size(procs, "lb")
    lo.stop_replica(procs, replicas[1])
    first = pulls.one(ref)
    cases.append(Case("2 of 3 masters stopped", healthy, first, pulls.many(ref), timeouts(mark)))
    for replica in replicas[:2]:
        lo.start_replica(procs, replica)
    cluster.stop_lb()
    first = pulls.one(ref)
    cases.append(Case("LB down (masters direct)", healthy, first, pulls.many(ref)))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--layer-mib", type=int, default=16)
    parser.add_argument("--kill-layer-mib", type=int, default=64, help="layer of the image pulled in the kill case")
    args = parser.parse_args()
    big_layer = args.kill_layer_mib * 1024 * 1024

    workdir = lo.make_workdir("d8dp-bench-")
    procs = lo.Processes(workdir)
    with faults.PrivateNetwork() as network:
        try:
            upstream = lo.start_upstream(procs, workdir, "basic")
            image = lo.make_image("bench", layer_bytes=args.layer_mib * 1024 * 1024)
            big = lo.make_image("bench-large", layer_bytes=big_layer)
            lo.seed(upstream, image)
            lo.seed(upstream, big)
            cluster = lo.build_proxy_cluster(procs, workdir, upstream)
            for replica in cluster.replicas:
                lo.start_replica(procs, replica)
            cluster.start_lb()
            containerd = lo.start_containerd(procs, workdir, cluster.hosts_dir)
            pulls = Pulls(containerd, args.rounds)
            ref, big_ref = lo.image_ref(image.digest), lo.image_ref(big.digest)
            direct_host = _direct_hosts(cluster, cluster.replicas[0])
            direct_ref = f"{direct_host}/{lo.IMAGE_REPO}@{image.digest}"

            cold = pulls.one(ref)
            _warm(cluster, image)
            _warm(cluster, big)
            pulls.one(direct_ref)  # warm containerd's own code paths for the direct host too

            before = len(upstream.requests())
            via_lb, direct, via_lb_big = [], [], []
            for _ in range(args.rounds):
                via_lb.append(pulls.one(ref))
                direct.append(pulls.one(direct_ref))
                via_lb_big.append(pulls.one(big_ref))
            repeat = upstream.requests()[before:]
            lb_ms = statistics.median(ms for ok, ms in via_lb if ok)
            big_ms = statistics.median(ms for ok, ms in via_lb_big if ok)
            cases = _fault_cases(cluster, pulls, network, (ref, lb_ms), (big_ref, big_ms, big_layer))
        finally:
            procs.stop_all()
            shutil.rmtree(workdir, ignore_errors=True)

    direct_ms = statistics.median(ms for ok, ms in direct if ok)
    print(f"images: 1 layer of {args.layer_mib} MiB (1 of {args.kill_layer_mib} MiB for the kill); "
          f"rounds: {args.rounds} (healthy pulls interleaved)")
    print(f"cold pull (caches empty, from upstream):          {cold[1]:7.1f} ms ({'ok' if cold[0] else 'FAILED'})")
    print(f"hosts.toml -> LB -> cache (healthy):              {_summary(via_lb)}")
    print(f"direct from one cache:                            {_summary(direct)}")
    print(f"ratio LB path / direct:                           {lb_ms / direct_ms:.2f}")
    print(f"healthy, {args.kill_layer_mib} MiB layer through the LB:           {_summary(via_lb_big)}")
    print(f"upstream requests during {3 * args.rounds} warm pulls:           "
          f"blobs {sum('/blobs/' in r for r in repeat)}, manifests {sum('/manifests/' in r for r in repeat)}")
    print("failover, each case from a fresh LB; ratios to the healthy median of the same image:")
    for case in cases:
        print(f"  {case.line()}")
    silent = cases[0]
    failed = sum(case.failed for case in cases) + sum(not ok for ok, _ in via_lb + via_lb_big)
    exercised = "" if silent.lb_timeouts else ", but the LB never dialled the silent master"
    print(f"goal: first-pull penalty <= 1.2 s with one silent master: {silent.penalty_s:+.2f} s "
          f"({'met' if silent.penalty_s <= 1.2 and silent.lb_timeouts else 'NOT met'}{exercised})")
    print(f"goal: 0 failed pulls in every case:                      {failed} failed "
          f"({'met' if failed == 0 else 'NOT met'})")


if __name__ == "__main__":
    main()

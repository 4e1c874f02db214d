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
"""Proxy-mode failover where it hurts (SPEC 10.6): a master that stops answering without refusing, and the
master streaming a layer killed mid-transfer. Counts only; the latency of each case is in
bench/dataplane_pull.py. The topology runs in a network namespace of the test's own, where the drop
rule lives and dies."""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass

import pytest
from d8registry import faults
from d8registry import loopback as lo

pytestmark = pytest.mark.e2e

BATCH = 6
LAYER_BYTES = 48 * 1024 * 1024  # big enough that a kill lands while the layer still flows


@dataclass
class FaultEnv:
    network: faults.PrivateNetwork
    cluster: lo.ProxyCluster
    containerd: lo.Containerd
    image: lo.Image

    @property
    def procs(self) -> lo.Processes:
        return self.cluster.procs

    @property
    def ref(self) -> str:
        return lo.image_ref(self.image.digest)

    def pull_batch(self, count: int) -> list[str]:
        """`count` pulls, each removed afterwards so the next transfers the image again; the errors."""
        failures = []
        for _ in range(count):
            result = self.containerd.pull(self.ref)
            if result.returncode != 0:
                failures.append(result.stderr[-500:])
            self.containerd.remove(self.ref)
        return failures


@pytest.fixture(scope="module")
def fault_env():
    for name in ("registry", "nginx", "crictl", "containerd", "nft", "ip", "ss"):
        try:
            lo.binary(name)
        except lo.Unavailable as exc:
            pytest.fail(str(exc))
    if os.geteuid() != 0:
        pytest.skip("containerd and network namespaces need root; run the e2e suite as root like CI")
    workdir = lo.make_workdir()
    procs = lo.Processes(workdir)
    with faults.PrivateNetwork() as network:
        try:
            upstream = lo.start_upstream(procs, workdir, "basic")
            image = lo.make_image("faults", layer_bytes=LAYER_BYTES)
            lo.seed(upstream, image)
            cluster = lo.build_proxy_cluster(procs, workdir, upstream)
            for replica in cluster.replicas:
                lo.start_replica(procs, replica)
            cluster.start_lb()
            containerd = lo.start_containerd(procs, workdir, cluster.hosts_dir)
            # every cache holds the image, so whichever master takes over has each byte range at hand
            for replica in cluster.replicas:
                for target in [f"/v2/{lo.IMAGE_REPO}/manifests/{image.digest}",
                               *(f"/v2/{lo.IMAGE_REPO}/blobs/{d}" for d in image.blobs)]:
                    answer = lo.https(replica.front_address, "GET", target, cluster.ca_pem, user=cluster.ro["name"],
                                      password=cluster.ro["password"], headers={"Accept": lo.OCI_MANIFEST})
                    assert answer.status == 200, (replica.name, target, answer.status)
            yield FaultEnv(network, cluster, containerd, image)
        except lo.Unavailable as exc:
            pytest.fail(str(exc))
        finally:
            procs.stop_all()
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(autouse=True)
def _fresh(fault_env):
    """Every master up and a fresh LB (no failure marks from an earlier test), the image absent."""
    env = fault_env
    for replica in env.cluster.replicas:
        if not (env.procs.running(f"{replica.name}-front") and env.procs.running(f"{replica.name}-distribution")):
            lo.stop_replica(env.procs, replica)
            lo.start_replica(env.procs, replica)
    env.cluster.stop_lb()
    env.cluster.start_lb()
    env.containerd.remove(env.ref)
    yield


def test_every_pull_succeeds_with_one_silent_master(fault_env):
    env = fault_env
    silent = env.cluster.replicas[1]
    mark = faults.log_size(env.procs, "lb")
    fault = faults.Silence(env.network, silent.ip, silent.layout.port)
    try:
        # the LB's next choice is the silent master: the first pull meets it, not a lucky later one
        with faults.next_pick(("127.0.0.1", env.cluster.lb_port), env.cluster.replicas, silent):
            fault.apply()
            failures = env.pull_batch(1)
        # the fault was exercised: the LB dialled the silent master and gave up on the connect timeout,
        # rather than being refused at once as with a stopped master
        assert set(faults.lb_connect_timeouts(env.procs, mark)) == {f"{silent.ip}:{silent.layout.port}"}, \
            env.procs.tail("lb")
        failures += env.pull_batch(BATCH - 1)
    finally:
        fault.lift()
    assert failures == [], failures
    assert set(faults.lb_connect_timeouts(env.procs, mark)) == {f"{silent.ip}:{silent.layout.port}"}


def test_the_drop_rule_lives_only_in_the_test_namespace(fault_env):
    env = fault_env
    silent = env.cluster.replicas[1]
    with faults.Silence(env.network, silent.ip, silent.layout.port):
        assert env.network.inside
        inside = env.network.nft_tables()
        outside = env.network.run_outside([lo.binary("nft"), "list", "tables"])
        assert outside.returncode == 0, outside.stderr
        with pytest.raises(OSError):
            socket.create_connection(silent.front_address, timeout=0.5).close()
    assert faults.NFT_TABLE in inside
    assert faults.NFT_TABLE not in outside.stdout, "the machine's own network namespace got a drop rule"
    assert faults.NFT_TABLE not in env.network.nft_tables(), "lifting the fault removes the rule"
    socket.create_connection(silent.front_address, timeout=5).close()


def test_every_pull_succeeds_when_the_serving_master_is_killed_mid_transfer(fault_env):
    env = fault_env
    killed = faults.pull_and_kill_server(env.containerd, env.procs, env.cluster.replicas, env.ref,
                                         after_bytes=LAYER_BYTES // 4)
    assert killed.victim is not None, "the pull ended before a quarter of the layer had been sent"
    assert not env.procs.running(f"{killed.victim}-front")
    assert killed.pull_ok, killed.stderr[-2000:]
    assert env.image.digest.split(":")[1][:12] in env.containerd.images()
    env.containerd.remove(env.ref)
    assert env.pull_batch(BATCH) == []

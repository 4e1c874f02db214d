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
"""Fixtures for the data plane on loopback: upstreams, the Proxy masters + LB + containerd, and the
Direct in-cluster composition. Each fixture owns its processes and stops every one of them."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import pytest
from d8registry import containerd_node
from d8registry import loopback as lo

TAGS = [f"v1.{n}" for n in range(5)]


def _require_tools(*names: str) -> None:
    for name in names:
        try:
            lo.binary(name)
        except lo.Unavailable as exc:
            pytest.fail(str(exc))


@dataclass
class ProxyEnv:
    cluster: lo.ProxyCluster
    containerd: lo.Containerd
    image: lo.Image

    @property
    def procs(self) -> lo.Processes:
        return self.cluster.procs

    @property
    def upstream(self) -> lo.Upstream:
        return self.cluster.upstream

    @property
    def ref(self) -> str:
        return lo.image_ref(self.image.digest)

    def restore(self) -> None:
        """Every replica and the LB up, the image absent from containerd: each test starts equal."""
        for replica in self.cluster.replicas:
            if not self.procs.running(f"{replica.name}-distribution") or not self.procs.running(f"{replica.name}-front"):
                lo.stop_replica(self.procs, replica)
                lo.start_replica(self.procs, replica)
        if not self.procs.running("lb"):
            self.cluster.start_lb()
        self.containerd.remove(self.ref)


@pytest.fixture(scope="module", params=["basic", "token"])
def proxy_env(request):
    """Proxy mode on three loopback masters, pulling from an upstream with Basic or token auth."""
    _require_tools("registry", "nginx", "crictl", "containerd")
    if os.geteuid() != 0:
        pytest.skip("containerd needs root (its snapshotter mounts); run the e2e suite as root like CI")
    workdir = lo.make_workdir()
    procs = lo.Processes(workdir)
    try:
        upstream = lo.start_upstream(procs, workdir, request.param)
        image = lo.make_image(f"proxy-{request.param}")
        lo.seed(upstream, image)
        for tag in TAGS:
            lo.seed(upstream, image, tag=tag)
        cluster = lo.build_proxy_cluster(procs, workdir, upstream)
        for replica in cluster.replicas:
            lo.start_replica(procs, replica)
        cluster.start_lb()
        # the node's containerd runs from the config.toml and hosts dir its containerd step wrote
        node = containerd_node.start(procs, workdir / "node", containerd_node.proxy_mirrors(cluster))
        yield ProxyEnv(cluster, node.containerd, image)
    except lo.Unavailable as exc:
        pytest.fail(str(exc))
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class DirectEnv:
    replica: lo.Replica
    upstream: lo.Upstream
    image: lo.Image
    ca_pem: str

    @property
    def address(self) -> tuple[str, int]:
        return self.replica.front_address

    def credentials(self) -> dict:
        if self.upstream.auth == "none":
            return {}
        return {"user": self.upstream.username, "password": self.upstream.password}


@pytest.fixture(scope="module", params=["basic", "token", "none"])
def direct_env(request):
    """Direct mode's in-cluster proxy pod (front + pull-through distribution) on one loopback address."""
    _require_tools("registry", "nginx")
    workdir = lo.make_workdir()
    procs = lo.Processes(workdir)
    try:
        upstream = lo.start_upstream(procs, workdir, request.param)
        image = lo.make_image(f"direct-{request.param}")
        lo.seed(upstream, image)
        replica, state = lo.build_incluster_proxy(procs, workdir, upstream)
        lo.start_replica(procs, replica)
        yield DirectEnv(replica, upstream, image, state["pki"]["ca"]["cert"])
    except lo.Unavailable as exc:
        pytest.fail(str(exc))
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class LocalEnv:
    replica: lo.Replica
    state: dict

    @property
    def address(self) -> tuple[str, int]:
        return self.replica.front_address

    @property
    def ca_pem(self) -> str:
        return self.state["pki"]["ca"]["cert"]

    def user(self, key: str) -> dict:
        entry = self.state["users"][key]
        return {"user": entry["name"], "password": entry["password"]}


@pytest.fixture(scope="module")
def local_env():
    """One Local-mode master: its own store behind the front's per-user ACL."""
    _require_tools("registry", "nginx")
    workdir = lo.make_workdir()
    procs = lo.Processes(workdir)
    try:
        replica, state = lo.build_local_replica(procs, workdir)
        lo.start_replica(procs, replica)
        yield LocalEnv(replica, state)
    except lo.Unavailable as exc:
        pytest.fail(str(exc))
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)

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
"""Local mode with three replicas for real (SPEC 5.8, 10.6): a user's OCI client pushes an image index
with `rw` to one master, regsync (running the rendered regsync.yaml) carries it to the other two, and a
node pulls it over CRI through its load balancer while the master that took the push is down. Garbage
collection runs the rendered command against a store. Every process is regclient's, distribution's,
nginx's or containerd's own build; only addresses, directories and the sync interval are the test's."""

from __future__ import annotations

import json
import os
import shutil
import time
from urllib.parse import urlsplit

import pytest
import yaml
from d8registry import containerd_node
from d8registry import local_replicas as lr
from d8registry import loopback as lo

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_replicas")]

# regsync runs every 2 s here (60 s in production); a pass copies a small index in well under a second,
# so a generous bound only guards against a hang and never decides the outcome.
REPLICATION_BOUND = 120


@pytest.fixture(scope="module")
def local():
    for tool in ("registry", "nginx", "regsync", "regctl", "crictl", "containerd"):
        try:
            lo.binary(tool)
        except lo.Unavailable as exc:
            pytest.fail(str(exc))
    if os.geteuid() != 0:
        pytest.skip("containerd needs root (its snapshotter mounts); run the e2e suite as root like CI")
    workdir = lo.make_workdir("d8local-")
    procs = lo.Processes(workdir)
    try:
        cluster = lr.build_local_cluster(procs, workdir)
        cluster.start_all()
        node = containerd_node.start(procs, workdir / "node", cluster.mirrors())
        yield cluster, node.containerd
    except lo.Unavailable as exc:
        pytest.fail(str(exc))
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def cluster(local):
    """Every replica, its sync and the LB running again, whatever the previous test stopped."""
    cluster, _ = local
    cluster.start_all()
    return cluster


@pytest.fixture
def regctl(cluster, tmp_path):
    """A user's regctl trusting the module CA for every master (the push endpoint's certificate chain)."""
    client = lr.make_regctl(tmp_path)
    for replica in cluster.replicas:
        client.trust(cluster.address(replica), cluster.ca_pem)
    return client


def _login(client: lr.Regctl, cluster: lr.LocalCluster, replica: lo.Replica, who: str) -> None:
    user = cluster.user(who)
    client.login(cluster.address(replica), user["name"], user["password"])


def test_push_replicates_and_a_node_pulls_with_the_pushed_replica_down(cluster, local, regctl, tmp_path):
    _, containerd = local
    first = cluster.replicas[0]
    others = cluster.replicas[1:]
    index = lr.write_index(tmp_path / "layout", "replicated", "v1.0", architectures=("amd64", "arm64"))
    _login(regctl, cluster, first, "rw")
    pushed = regctl.push(index, f"{cluster.address(first)}/{lo.IMAGE_REPO}:{index.tag}")
    assert pushed.returncode == 0, pushed.stderr
    assert cluster.manifest_digest(first, index.tag) == index.digest

    cluster.wait_replicated(index.tag, index.digest, others, REPLICATION_BOUND)
    for replica in others:
        # every child and every blob of the index, not only the top manifest
        for digest in [c.digest for c in index.children] + list(index.blobs):
            assert cluster.blob_on_disk(replica, digest), (replica.name, digest)

    cluster.stop(first)
    containerd.remove(lo.image_ref(index.digest))
    pulled = containerd.pull(lo.image_ref(index.digest))
    assert pulled.returncode == 0, pulled.stderr
    # containerd resolved the index to this machine's platform and fetched it from a surviving replica
    assert _pulled_image_id(containerd, index) == index.child(lr.HOST_ARCH).manifest["config"]["digest"]


def _pulled_image_id(containerd: lo.Containerd, index: lr.ImageIndex) -> str | None:
    listed = json.loads(containerd.crictl("images", "-o", "json", timeout=30).stdout)["images"]
    for image in listed:
        if lo.image_ref(index.digest) in image.get("repoDigests", []):
            return image["id"]
    return None


def test_a_push_to_any_replica_reaches_every_other(cluster, regctl, tmp_path):
    last = cluster.replicas[-1]
    index = lr.write_index(tmp_path / "layout", "from-the-last", "v2.0", architectures=(lr.HOST_ARCH,))
    _login(regctl, cluster, last, "rw")
    assert regctl.push(index, f"{cluster.address(last)}/{lo.IMAGE_REPO}/install:{index.tag}").returncode == 0
    # sub-repositories (d8 mirror's layout) travel too
    for replica in cluster.replicas[:-1]:
        _wait_repo(cluster, replica, f"{lo.IMAGE_REPO}/install", index.tag, index.digest)


def _wait_repo(cluster: lr.LocalCluster, replica: lo.Replica, repo: str, tag: str, digest: str) -> None:
    user = cluster.user("ro")
    deadline = time.monotonic() + REPLICATION_BOUND
    while time.monotonic() < deadline:
        answer = lo.https((replica.ip, replica.layout.port), "HEAD", f"/v2/{repo}/manifests/{tag}", cluster.ca_pem,
                          user=user["name"], password=user["password"], headers={"Accept": lr.OCI_INDEX})
        if answer.status == 200 and answer.headers.get("docker-content-digest") == digest:
            return
        time.sleep(0.1)
    raise AssertionError(f"{repo}:{tag} did not reach {replica.name}: {cluster.procs.tail(f'{replica.name}-sync')}")


@pytest.mark.parametrize("who", ["ro", "mirror_puller"])
def test_readers_cannot_push_with_a_real_client(cluster, regctl, tmp_path, who):
    target = cluster.replicas[1]
    index = lr.write_index(tmp_path / "layout", f"refused-{who}", "refused", architectures=(lr.HOST_ARCH,))
    _login(regctl, cluster, target, who)
    refused = regctl.push(index, f"{cluster.address(target)}/{lo.IMAGE_REPO}:refused-{who}")
    assert refused.returncode != 0
    assert "403" in refused.stderr or "forbidden" in refused.stderr.lower(), refused.stderr
    assert cluster.manifest_digest(target, f"refused-{who}") is None
    for digest in index.blobs:
        assert not cluster.blob_on_disk(target, digest)


def test_mirror_pusher_writes_only_its_own_store(cluster, regctl, tmp_path):
    """regsync needs to write only to its own front: the peers' entries carry the read-only mirror-puller,
    the pusher's credentials name the master's own address, and the front serves nothing but the store."""
    for replica in cluster.replicas:
        config = yaml.safe_load(replica.files["regsync.yaml"])
        own = cluster.address(replica)
        writers = {c["registry"] for c in config["creds"] if c["user"] == "mirror-pusher"}
        assert writers == {own}
        assert {s["target"] for s in config["sync"]} == {own}
        peers = {c["registry"] for c in config["creds"] if c["user"] == "mirror-puller"}
        assert peers == {cluster.address(r) for r in cluster.replicas if r is not replica}
    target = cluster.replicas[0]
    pusher = cluster.user("mirror_pusher")
    # outside the Local store there is nothing to write, whoever asks
    other = lo.https((target.ip, target.layout.port), "POST", "/v2/other/repo/blobs/uploads/", cluster.ca_pem,
                     user=pusher["name"], password=pusher["password"])
    assert other.status == 404
    index = lr.write_index(tmp_path / "layout", "pusher-elsewhere", "x", architectures=(lr.HOST_ARCH,))
    _login(regctl, cluster, target, "mirror_pusher")
    assert regctl.push(index, f"{cluster.address(target)}/library/elsewhere:x").returncode != 0


def test_garbage_collection_keeps_every_blob_of_a_tagged_index(cluster, local, regctl, tmp_path):
    _, containerd = local
    replica = cluster.replicas[1]
    index = lr.write_index(tmp_path / "layout", "gc-kept", "gc", architectures=("amd64", "arm64"), layers=2)
    _login(regctl, cluster, replica, "rw")
    assert regctl.push(index, f"{cluster.address(replica)}/{lo.IMAGE_REPO}:{index.tag}").returncode == 0
    # an orphan: a blob uploaded by rw that no manifest references (an interrupted push leaves these)
    orphan = lr.write_index(tmp_path / "orphan", "gc-orphan", "orphan", architectures=(lr.HOST_ARCH,))
    orphan_layer = next(d for d, size in orphan.blobs.items() if size > 1024)
    _put_blob(cluster, replica, orphan, orphan_layer)
    assert cluster.blob_on_disk(replica, orphan_layer)

    collected = cluster.gc(replica)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert not cluster.blob_on_disk(replica, orphan_layer)
    for digest in [index.digest] + [c.digest for c in index.children] + list(index.blobs):
        assert cluster.blob_on_disk(replica, digest), digest

    # the index still pulls over CRI, served by this replica alone
    for other in cluster.replicas:
        if other is not replica:
            cluster.stop(other)
    containerd.remove(lo.image_ref(index.digest))
    pulled = containerd.pull(lo.image_ref(index.digest))
    assert pulled.returncode == 0, pulled.stderr
    assert _pulled_image_id(containerd, index) == index.child(lr.HOST_ARCH).manifest["config"]["digest"]


def _put_blob(cluster: lr.LocalCluster, replica: lo.Replica, index: lr.ImageIndex, digest: str) -> None:
    rw = cluster.user("rw")
    data = (index.layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()
    address = (replica.ip, replica.layout.port)
    started = lo.https(address, "POST", f"/v2/{lo.IMAGE_REPO}/blobs/uploads/", cluster.ca_pem, user=rw["name"],
                       password=rw["password"])
    assert started.status == 202, started.status
    location = urlsplit(started.headers["location"])
    done = lo.https(address, "PUT", f"{location.path}?{location.query}&digest={digest}", cluster.ca_pem,
                    user=rw["name"], password=rw["password"], body=data,
                    headers={"Content-Type": "application/octet-stream"})
    assert done.status == 201, done.status

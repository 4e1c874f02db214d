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
"""containerd 1.6 and 2.x as nodes run them: each daemon starts from the config.toml the containerd step
edited in a node root and pulls over CRI through the hosts dir the step placed (SPEC 6.2-6.4, 12.3).

1.6 is Debian's build (config version 2), 2.x is containerd v2.4.2 built by `make tools` (version 3).
Direct's hosts.toml needs Deckhouse's containerd (the `rewrite` extension); with the vanilla builds the
pull must fail and nothing may land in the image store.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from d8registry import containerd_node as cn
from d8registry import loopback as lo

pytestmark = pytest.mark.e2e

MAJORS = [1, 2]
# `go install` leaves the version suffix "+unknown" (no release ldflags)
EXPECTED_VERSION = {1: re.compile(r"^1\.6\."), 2: re.compile(r"^v?2\.4\.2(\+unknown)?$")}
DIRECT_ERRORS = ("code = NotFound", f"lookup {lo.FIXED_HOST.split(':')[0]}")
CONFIG_LINE = f'config_path = "{cn.CONFIG_PATH}"'


@dataclass
class World:
    procs: lo.Processes
    workdir: object
    upstream: lo.Upstream
    cluster: lo.ProxyCluster
    image: lo.Image


@pytest.fixture(scope="module")
def world():
    """A Basic-auth upstream and three Proxy masters behind the node LB, shared by the tests here."""
    if os.geteuid() != 0:
        pytest.skip("containerd needs root (mount namespace, snapshotter mounts); run the e2e suite as root like CI")
    workdir = lo.make_workdir()
    procs = lo.Processes(workdir)
    try:
        for name in ("registry", "nginx", "crictl", "containerd", cn.CONTAINERD2):
            lo.binary(name)
        upstream = lo.start_upstream(procs, workdir, "basic")
        image = lo.make_image("containerd-node")
        lo.seed(upstream, image)
        lo.seed(upstream, image, tag="v1.0")
        cluster = lo.build_proxy_cluster(procs, workdir, upstream)
        for replica in cluster.replicas:
            lo.start_replica(procs, replica)
        cluster.start_lb()
        yield World(procs, workdir, upstream, cluster, image)
    except lo.Unavailable as exc:
        pytest.fail(str(exc))
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


_COUNTER = iter(range(10_000))


@pytest.fixture
def node_factory(world):
    started: list[cn.Node] = []

    def build(major: int, mirror_map: dict) -> cn.Node:
        name = f"containerd-n{next(_COUNTER)}"  # short: unix socket paths are limited to 104 bytes
        try:
            node = cn.start(world.procs, world.workdir / name, mirror_map, major, name=name)
        except lo.Unavailable as exc:
            pytest.fail(str(exc))
        started.append(node)
        return node

    yield build
    for node in started:
        world.procs.stop(node.name)


def _log(node: cn.Node) -> str:
    return node.procs.log(node.name).read_text(errors="replace")


def _request_hosts(node: cn.Node) -> list[str]:
    text = _log(node)
    return re.findall(r'msg="do request" host="?([0-9.]+:[0-9]+)', text)


def _upstream_requests(world: World, since: int) -> list[str]:
    """`<path> <status>` of every request in the upstream's access log after byte offset `since`."""
    text = world.upstream.log.read_bytes()[since:].decode(errors="replace")
    return [f"{path} {status}" for path, status in re.findall(r'"[A-Z]+ (/v2/[^ ?]*)[^ ]* HTTP/[0-9.]+" (\d+)', text)]


@pytest.mark.parametrize("major", MAJORS)
def test_the_daemon_runs_from_the_config_the_step_wrote(world, node_factory, major):
    node = node_factory(major, cn.proxy_mirrors(world.cluster))
    # the step edited the node's own config.toml, asked systemd for a restart, and the daemon came up from it
    text = node.config_toml.read_text()
    assert text.startswith(cn.NODE_CONFIG[major]) and text.count(CONFIG_LINE) == 1, text
    assert node.systemctl_calls() == ["restart containerd"]
    assert "inserted config_path into config.toml" in node.step_log
    assert "not checked" not in node.step_log, "the step's own containerd must have checked the candidate"
    version = node.containerd.crictl("version", timeout=20)
    assert version.returncode == 0, version.stderr
    runtime_version = re.search(r"RuntimeVersion:\s*(\S+)", version.stdout).group(1)
    assert EXPECTED_VERSION[major].match(runtime_version), version.stdout
    if major == 1:
        # 2.x's CRI status carries no image config; its pull through the step's hosts dir is the proof
        info = node.containerd.crictl("info", timeout=20)
        assert info.returncode == 0, info.stderr
        assert json.loads(info.stdout)["config"]["registry"]["configPath"] == cn.CONFIG_PATH, \
            "the CRI plugin reports the config_path the step inserted"


@pytest.mark.parametrize("major", MAJORS)
def test_proxy_pull_goes_through_the_step_hosts_dir_and_the_lb(world, node_factory, major):
    node = node_factory(major, cn.proxy_mirrors(world.cluster))
    assert sorted(p.name for p in node.hosts_dir.iterdir()) == [lo.FIXED_HOST]
    ref = lo.image_ref(world.image.digest)
    result = node.containerd.pull(ref)
    assert result.returncode == 0, result.stderr[-2000:]
    assert world.image.digest.removeprefix("sha256:")[:13] in node.containerd.images()
    assert set(_request_hosts(node)) == {f"127.0.0.1:{world.cluster.lb_port}"}, "every request went to the node LB"


@pytest.mark.parametrize("major", MAJORS)
def test_direct_rewrite_is_ignored_by_vanilla_containerd_and_the_pull_fails(world, node_factory, major):
    """Vanilla containerd does not know `rewrite`: it asks the upstream for `system/deckhouse` literally, gets
    404, and the CRI pull fails (NotFound, or the fixed name does not resolve). Nothing is stored."""
    mirror_map, _ = cn.upstream_mirrors(world.upstream, "Direct")
    node = node_factory(major, mirror_map)
    [table] = tomllib.loads((node.hosts_dir / lo.FIXED_HOST / "hosts.toml").read_text())["host"].values()
    assert table["rewrite"] == [{"regex": "^system/deckhouse", "replace": lo.UPSTREAM_PATH}], table
    mark = world.upstream.log.stat().st_size
    creds = f"{world.upstream.username}:{world.upstream.password}"  # kubelet sends the pull secret the same way
    for ref in (lo.image_ref(world.image.digest), f"{lo.FIXED_HOST}/{lo.IMAGE_REPO}:v1.0"):
        result = node.containerd.crictl("pull", "--creds", creds, ref, timeout=60)
        assert result.returncode != 0, f"vanilla containerd pulled {ref} although it cannot rewrite the path"
        # the mirror answered 404 for the path it did not rewrite; containerd reports that, or the failure of the
        # implicit default server (the fixed name) it tries last and cannot resolve: which one varies per run
        assert any(error in result.stderr for error in DIRECT_ERRORS), result.stderr
    listing = node.containerd.images()
    assert world.image.digest.removeprefix("sha256:")[:13] not in listing and lo.FIXED_HOST not in listing, listing
    asked = _upstream_requests(world, mark)
    assert any(p.endswith(" 404") for p in asked), f"containerd asked the hosts.toml mirror (the upstream): {asked}"
    # the path was not rewritten, and nothing was served
    assert all(p.startswith(f"/v2/{lo.IMAGE_REPO}/") and p.endswith((" 401", " 404")) for p in asked), asked


def test_a_slow_write_of_the_restart_answer_is_never_read_half_done(world, node_factory, monkeypatch):
    """The systemctl stand-in polls for restart.done and exits with what it holds. The answer must appear whole:
    a busy suite run once caught it created but still empty (`exit: : numeric argument required`)."""
    write_text = Path.write_text

    def slow(path, data, *args, **kwargs):
        if path.name.startswith("restart.done"):
            path.open("w").close()   # created, empty, for a while: what a write looks like from outside
            time.sleep(1)
        return write_text(path, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", slow)
    node = node_factory(1, cn.proxy_mirrors(world.cluster))
    assert node.systemctl_calls() == ["restart containerd"]
    assert "numeric argument" not in node.step_log

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
"""The pull loop's judgement of crictl's answers (`simulate --real-dataplane`): which failures are retried as kubelet
retries them, what is reported as containerd's error, which credentials go with a pull, and the p95."""

from __future__ import annotations

import base64
import json

from d8registry import cluster as cluster_mod
from d8registry import loopback as lo
from d8registry.sim import dataplane as dp

REFUSED = ('time="2026-12-01T18:00:00Z" level=fatal msg="validate service connection: validate CRI v1 image API for '
           'external container runtime failed: rpc error: code = Unavailable desc = connection error: desc = '
           '\\"transport: Error while dialing: dial unix /tmp/d8rdp-x/n0/daemon/c.sock: connect: connection refused\\""')
CUT = 'time="x" level=fatal msg="pulling image: rpc error: code = Unavailable desc = error reading from server: EOF"'
DNS = ('time="x" level=fatal msg="pulling image: rpc error: code = Unknown desc = failed to pull and unpack image '
       '\\"registry.d8-system.svc:5001/system/deckhouse@sha256:1\\": dial tcp: lookup registry.d8-system.svc on '
       '127.0.0.1:53: read udp 127.0.0.1:1->127.0.0.1:53: read: connection refused"')
NOT_FOUND = 'time="x" level=fatal msg="pulling image: rpc error: code = NotFound desc = failed to pull and unpack image"'


def test_only_a_silent_cri_socket_is_retried():
    assert dp.connection_level(REFUSED)
    assert dp.connection_level(CUT)
    # the registry side failing is an answer from containerd: a failed pull, even when the words match
    assert not dp.connection_level(DNS)
    assert not dp.connection_level(NOT_FOUND)


def test_the_report_carries_containerds_own_message():
    assert dp.containerd_error(DNS).startswith('pulling image: rpc error: code = Unknown desc = failed to pull and '
                                               'unpack image "registry.d8-system.svc:5001/system/deckhouse@sha256:1"')
    assert dp.containerd_error("plain line\n") == "plain line"


def test_pulls_carry_the_pull_secret_entry_of_the_referenced_registry():
    config = {"auths": {"registry.d8-system.svc:5001": {"username": "ro", "password": "pw"},
                        "other:1": {"auth": base64.b64encode(b"a:b").decode()}}}
    cfg = base64.b64encode(json.dumps(config).encode()).decode()
    assert dp.pull_secret_creds({"address": "registry.d8-system.svc:5001", "dockercfg": cfg}) == "ro:pw"
    assert dp.pull_secret_creds({"address": "other:1", "dockercfg": cfg}) == "a:b"
    assert dp.pull_secret_creds({"address": "nowhere:1", "dockercfg": cfg}) is None
    assert dp.pull_secret_creds({"address": "x", "dockercfg": "not base64 json"}) is None


def test_p95_is_the_nearest_rank():
    assert dp.p95([]) == 0.0
    assert dp.p95([3.0]) == 3.0
    assert dp.p95([float(n) for n in range(1, 101)]) == 95.0
    assert dp.p95([float(n) for n in range(20, 0, -1)]) == 19.0


def test_the_cluster_moves_onto_the_loopback_upstream_and_node_addresses(tmp_path):
    upstream = lo.Upstream(port=4443, ca_pem="CA", auth="basic", log=tmp_path / "log")
    moved = dp.loopback_cluster(cluster_mod.load(), upstream)
    nodes = {o["metadata"]["name"]: o["status"]["addresses"][0]["address"] for o in moved.objects if o["kind"] == "Node"}
    assert nodes == {"master-0": "127.0.16.11", "master-1": "127.0.16.12", "master-2": "127.0.16.13",
                     "worker-0": "127.0.16.21", "worker-1": "127.0.16.22"}
    secret = next(o for o in moved.objects if o["kind"] == "Secret" and o["metadata"]["name"] == "deckhouse-registry")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["address"] == "upstream.d8rdp.test:4443" and data["path"] == "/deckhouse/ee" and data["ca"] == "CA"
    assert moved.globals["modulesImages"]["registry"]["base"] == "upstream.d8rdp.test:4443/deckhouse/ee"
    assert moved.globals["discovery"]["clusterMasterCount"] == 3
    creds = dp.pull_secret_creds(moved.globals["modulesImages"]["registry"])
    assert creds == f"{lo.UPSTREAM_USER}:{lo.UPSTREAM_PASSWORD}"

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
"""Configurable Unmanaged: containerd pulls straight from the upstream through the hosts dir the containerd
step placed, on containerd 1.6 (config version 2) and 2.x (version 3), each started from the config.toml the
step edited (d8registry.containerd_node).

The hosts file names the real registry and carries its CA; vanilla containerd ignores the Deckhouse
`auth` extension in it, so the credential travels the way kubelet sends it: in the CRI pull request
(the deckhouse-registry pull secret), here crictl's --creds.
"""

from __future__ import annotations

import os
import shutil

import pytest
from d8registry import containerd_node as cn
from d8registry import loopback as lo

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("major, auth", [(1, "basic"), (1, "token"), (2, "basic"), (2, "token")])
def test_cri_pull_straight_from_the_upstream(major, auth):
    if os.geteuid() != 0:
        pytest.skip("containerd needs root (its snapshotter mounts); run the e2e suite as root like CI")
    workdir = lo.make_workdir()
    procs = lo.Processes(workdir)
    try:
        upstream = lo.start_upstream(procs, workdir, auth)
        image = lo.make_image(f"unmanaged-{auth}")
        lo.seed(upstream, image)
        mirrors, _ = cn.upstream_mirrors(upstream, "Unmanaged")
        assert list(mirrors) == [upstream.host], "the hosts dir is named after the real registry: no rewrite"
        node = cn.start(procs, workdir / "node", mirrors, major)
        assert sorted(p.name for p in node.hosts_dir.iterdir()) == [upstream.host]
        ref = f"{upstream.host}/{lo.UPSTREAM_PATH}@{image.digest}"
        result = node.containerd.crictl("pull", "--creds", f"{upstream.username}:{upstream.password}", ref)
        assert result.returncode == 0, result.stderr
        assert image.digest.removeprefix("sha256:")[:13] in node.containerd.images()
        assert any(f"/v2/{lo.UPSTREAM_PATH}/manifests/" in line for line in upstream.requests("GET"))
    except lo.Unavailable as exc:
        pytest.fail(str(exc))
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)

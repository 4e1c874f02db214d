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
"""Configurable Unmanaged: containerd pulls straight from the upstream with the hosts.toml the hook renders.

The hosts file names the real registry and carries its CA; vanilla containerd ignores the Deckhouse
`auth` extension in it, so the credential travels the way kubelet sends it: in the CRI pull request
(the deckhouse-registry pull secret), here crictl's --creds.
"""

from __future__ import annotations

import os
import shutil

import pytest
from d8registry import loopback as lo
from lib import node_config, settings

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("auth", ["basic", "token"])
def test_cri_pull_straight_from_the_upstream(auth):
    if os.geteuid() != 0:
        pytest.skip("containerd needs root (its snapshotter mounts); run the e2e suite as root like CI")
    workdir = lo.make_workdir()
    procs = lo.Processes(workdir)
    try:
        upstream = lo.start_upstream(procs, workdir, auth)
        image = lo.make_image(f"unmanaged-{auth}")
        lo.seed(upstream, image)
        verdict = settings.evaluate(upstream.settings("Unmanaged"), lo.ENVIRONMENT)
        assert verdict.valid, verdict.errors
        hosts_dir = workdir / "registry.d"
        mirrors = node_config.mirrors(node_config.node_params(verdict.params, None, None), [])
        for directory, files in node_config.render_hosts(mirrors, hosts_root=str(hosts_dir)).items():
            (hosts_dir / directory).mkdir(parents=True)
            for name, text in files.items():
                (hosts_dir / directory / name).write_text(text)
        assert list(mirrors) == [upstream.host], "the hosts dir is named after the real registry: no rewrite"
        containerd = lo.start_containerd(procs, workdir, hosts_dir)
        ref = f"{upstream.host}/{lo.UPSTREAM_PATH}@{image.digest}"
        result = containerd.crictl("pull", "--creds", f"{upstream.username}:{upstream.password}", ref)
        assert result.returncode == 0, result.stderr
        assert image.digest.removeprefix("sha256:")[:13] in containerd.images()
        assert any(f"/v2/{lo.UPSTREAM_PATH}/manifests/" in line for line in upstream.requests("GET"))
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)

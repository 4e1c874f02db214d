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
"""Direct mode's in-cluster proxy (SPEC 5.6): the front and a pull-through distribution rendered by
the module serve `system/deckhouse` from the upstream path, for Basic, token and anonymous upstreams.
containerd's own Direct path uses the Deckhouse `rewrite` extension, which vanilla containerd lacks;
its hosts.toml is checked statically (tests/unit/test_node_config.py)."""

from __future__ import annotations

import hashlib
import json

import pytest
from d8registry import loopback as lo

pytestmark = pytest.mark.e2e


def _get(env, target, **extra):
    kwargs = {**env.credentials(), **extra}
    return lo.https(env.address, "GET", target, env.ca_pem, headers={"Accept": lo.OCI_MANIFEST}, **kwargs)


def test_mapped_repository_pulls_through_from_the_upstream_path(direct_env):
    env = direct_env
    manifest = _get(env, f"/v2/system/deckhouse/manifests/{env.image.digest}")
    assert manifest.status == 200, manifest.body[:300]
    assert "sha256:" + hashlib.sha256(manifest.body).hexdigest() == env.image.digest
    for digest in json.loads(manifest.body)["layers"][0]["digest"], json.loads(manifest.body)["config"]["digest"]:
        blob = _get(env, f"/v2/system/deckhouse/blobs/{digest}")
        assert blob.status == 200 and "sha256:" + hashlib.sha256(blob.body).hexdigest() == digest
    # the upstream saw its own path, never the fixed one
    assert env.upstream.requests("GET", "manifests")
    assert "system/deckhouse" not in env.upstream.log.read_text()
    # the upstream path itself is the same repository (pagination links name it)
    assert _get(env, f"/v2/{lo.UPSTREAM_PATH}/manifests/{env.image.digest}").status == 200


def test_read_only_and_nothing_but_the_mapped_repository(direct_env):
    env = direct_env
    answer = lo.https(env.address, "POST", "/v2/system/deckhouse/blobs/uploads/", env.ca_pem, **env.credentials())
    assert answer.status == 403
    for target in ["/v2/other/repo/manifests/latest", "/v2/_catalog", "/anything"]:
        assert _get(env, target).status == 404, target
    assert lo.https(env.address, "GET", "/healthz", env.ca_pem).status == 200


def test_clients_authenticate_with_the_upstream_credentials(direct_env):
    env = direct_env
    target = f"/v2/system/deckhouse/manifests/{env.image.digest}"
    anonymous = lo.https(env.address, "GET", target, env.ca_pem, headers={"Accept": lo.OCI_MANIFEST})
    if env.upstream.auth == "none":
        # nothing to check clients against: the front is open like the upstream (auth_basic off)
        assert anonymous.status == 200
        assert "htpasswd" not in env.replica.files
    else:
        assert anonymous.status == 401
        wrong = lo.https(env.address, "GET", target, env.ca_pem, user=env.upstream.username, password="nope")
        assert wrong.status == 401

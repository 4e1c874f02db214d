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
"""The Local front's ACL on real nginx (SPEC 5.4, 5.11): the map runs before auth_basic on the claimed
user, so every case that could slip past the password check is exercised here."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from d8registry import loopback as lo

pytestmark = pytest.mark.e2e

UPLOAD = "/v2/system/deckhouse/blobs/uploads/"


def _call(env, method, target, who=None, **extra):
    credentials = env.user(who) if who else {}
    return lo.https(env.address, method, target, env.ca_pem, **credentials, **extra)


def _push(env, who: str, image: lo.Image, tag: str) -> None:
    """A full push through the front: blob uploads (Location built by distribution) and a manifest."""
    for digest, data in image.blobs.items():
        started = _call(env, "POST", UPLOAD, who)
        assert started.status == 202, (started.status, started.body[:200])
        location = urlsplit(started.headers["location"])
        # a path only: the client continues on the scheme and host it used (the front, or the push Ingress)
        assert not location.scheme and not location.netloc and location.path.startswith(UPLOAD), location
        done = _call(env, "PUT", f"{location.path}?{location.query}&digest={digest}", who, body=data,
                     headers={"Content-Type": "application/octet-stream"})
        assert done.status == 201, (done.status, done.body[:200])
    answer = _call(env, "PUT", f"/v2/system/deckhouse/manifests/{tag}", who, body=image.manifest,
                   headers={"Content-Type": lo.OCI_MANIFEST})
    assert answer.status == 201, (answer.status, answer.body[:200])


def test_anonymous_and_wrong_passwords_get_the_basic_challenge(local_env):
    for target in ["/v2/", "/v2/_catalog", "/v2/system/deckhouse/tags/list"]:
        answer = _call(local_env, "GET", target)
        assert answer.status == 401, target
        assert answer.headers.get("www-authenticate") == 'Basic realm="Deckhouse registry"'
    for who in ("ro", "rw", "mirror-puller"):
        wrong = lo.https(local_env.address, "GET", "/v2/", local_env.ca_pem, user=who, password="not-the-password")
        assert wrong.status == 401, who
    # a writer's name with a wrong password passes the map, never auth_basic
    assert lo.https(local_env.address, "POST", UPLOAD, local_env.ca_pem, user="rw", password="x").status == 401


def test_writers_push_and_readers_pull(local_env):
    image = lo.make_image("local-acl")
    _push(local_env, "rw", image, "v1")
    _push(local_env, "mirror_pusher", lo.make_image("local-acl-2"), "v2")
    for who in ("ro", "mirror_puller", "rw", "mirror_pusher"):
        answer = _call(local_env, "GET", f"/v2/system/deckhouse/manifests/{image.digest}", who,
                       headers={"Accept": lo.OCI_MANIFEST})
        assert answer.status == 200, who
    # sub-repositories of system/deckhouse are part of the store (d8 mirror layout)
    assert _call(local_env, "POST", "/v2/system/deckhouse/install/blobs/uploads/", "rw").status == 202


def test_readers_cannot_write(local_env):
    for who in ("ro", "mirror_puller"):
        for method, target in [("POST", UPLOAD), ("PUT", "/v2/system/deckhouse/manifests/x"),
                               ("DELETE", "/v2/system/deckhouse/manifests/x"), ("PATCH", UPLOAD + "x")]:
            assert _call(local_env, method, target, who).status == 403, (who, method, target)


def test_catalog_only_for_mirror_users_and_rw(local_env):
    assert _call(local_env, "GET", "/v2/_catalog", "ro").status == 403
    for who in ("mirror_puller", "rw", "mirror_pusher"):
        assert _call(local_env, "GET", "/v2/_catalog", who).status == 200, who
    assert _call(local_env, "POST", "/v2/_catalog", "mirror_puller").status == 403


def test_only_the_fixed_repository_is_served(local_env):
    assert _call(local_env, "POST", "/v2/other/repo/blobs/uploads/", "rw").status == 404
    assert _call(local_env, "GET", "/v2/other/repo/tags/list", "rw").status == 404
    # an unknown user name is refused before its password is even looked at
    assert lo.https(local_env.address, "GET", "/v2/", local_env.ca_pem, user="admin", password="x").status == 403

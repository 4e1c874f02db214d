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
"""Properties of the Local peer list and regsync.yaml (SPEC 5.8, 10.2, 10.3, 13.6): the peers are the
sorted unique addresses of every other master, a hostile node address never reaches the file, and the
file is stable whatever order the masters arrive in."""

from __future__ import annotations

import ipaddress
import random
from datetime import UTC, datetime

import pytest
import yaml
from hypothesis import assume, given
from hypothesis import strategies as st
from lib import dataplane, pki, users

ipv4 = st.builds(lambda n: str(ipaddress.IPv4Address(n)), st.integers(0, 2**32 - 1))
# what a Node's InternalIP could carry if the API let anything through
hostile = st.one_of(
    st.text(min_size=0, max_size=30),
    st.sampled_from(["10.0.0.1; rm -rf /", "10.0.0.1\nsync: []", "{{ .Env.HOME }}", "10.0.0.01", " 10.0.0.1",
                     "10.0.0.1:5001", "::1", "10.0.0.256", "0x0a000001", "10.0.0.1/32", "$(id)", ""]),
).filter(lambda s: not _is_dotted_quad(s))

PULLER = {"name": "mirror-puller", "password": "Puller0123456789abcdefgh"}
PUSHER = {"name": "mirror-pusher", "password": "Pusher0123456789abcdefgh"}
CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _is_dotted_quad(text: str) -> bool:
    try:
        return str(ipaddress.IPv4Address(text)) == text
    except ValueError:
        return False


@given(st.lists(ipv4, min_size=1, max_size=8), st.data())
def test_peers_are_every_other_master_sorted_and_unique(masters, data):
    own = data.draw(st.sampled_from(masters))
    with_duplicates = masters + data.draw(st.lists(st.sampled_from(masters), max_size=4))
    peers = dataplane.local_peers(own, with_duplicates)
    assert own not in peers
    assert set(peers) == set(masters) - {own}
    assert len(peers) == len(set(peers))
    assert [ipaddress.IPv4Address(p) for p in peers] == sorted(ipaddress.IPv4Address(p) for p in peers)
    assert dataplane.local_peers(own, random.Random(0).sample(with_duplicates, len(with_duplicates))) == peers


@given(st.lists(ipv4, min_size=1, max_size=5), hostile)
def test_a_hostile_master_address_is_refused_not_rendered(masters, bad):
    with pytest.raises(ValueError):
        dataplane.local_peers(masters[0], [*masters, bad])
    with pytest.raises(ValueError):
        dataplane.local_peers(bad, masters)
    with pytest.raises(ValueError):
        dataplane.regsync_config(bad, [m for m in masters if m != bad], CA, PULLER, PUSHER)
    peers = [m for m in dict.fromkeys(masters) if m != masters[0]]
    with pytest.raises(ValueError):
        dataplane.regsync_config(masters[0], [*peers, bad], CA, PULLER, PUSHER)


@given(st.lists(ipv4, min_size=2, max_size=6, unique=True), st.data())
def test_regsync_yaml_pulls_from_peers_and_writes_only_to_itself(masters, data):
    own = data.draw(st.sampled_from(masters))
    peers = dataplane.local_peers(own, masters)
    text = dataplane.regsync_config(own, peers, CA, PULLER, PUSHER)
    config = yaml.safe_load(text)
    assert config["version"] == 1
    assert config["defaults"] == {"interval": "60s", "parallel": 2, "skipDockerConfig": True}
    creds = {c["registry"]: c for c in config["creds"]}
    assert len(creds) == len(config["creds"]) == len(peers) + 1
    assert creds.pop(f"{own}:5001")["user"] == "mirror-pusher"
    assert {c["user"] for c in creds.values()} == {"mirror-puller"}
    assert sorted(creds) == sorted(f"{p}:5001" for p in peers)
    assert config["sync"] == [{"source": f"{p}:5001", "target": f"{own}:5001", "type": "registry"} for p in peers]
    assert all(c["tls"] == "enabled" and c["regcert"] == CA for c in config["creds"])
    # round trip: what regsync reads is what was meant, and nothing in it asks for template expansion
    assert yaml.safe_load(yaml.safe_dump(config)) == config
    assert "{{" not in text and "}}" not in text
    # stable: the masters' order in the Node list never changes the file (no restart of sync containers)
    shuffled = data.draw(st.permutations(masters))
    assert dataplane.regsync_config(own, dataplane.local_peers(own, shuffled), CA, PULLER, PUSHER) == text


@given(st.text(min_size=1, max_size=30))
def test_passwords_that_regsync_could_expand_are_refused(password):
    assume(not (password.isascii() and password.isalnum()))
    with pytest.raises(ValueError):
        dataplane.regsync_config("10.0.0.1", ["10.0.0.2"], CA, {**PULLER, "password": password}, PUSHER)


@pytest.mark.parametrize("interval", ["60", "1h", "0s", "-5s", "5s; x", "{{ .Interval }}", ""])
def test_the_sync_interval_is_a_plain_duration(interval):
    with pytest.raises(ValueError):
        dataplane.regsync_config("10.0.0.1", ["10.0.0.2"], CA, PULLER, PUSHER, interval=interval)


def test_generated_users_render_into_regsync():
    accounts = users.ensure_users(("mirror_puller", "mirror_pusher"), None)
    ca, _ = pki.ensure_ca(None, datetime.now(UTC))
    text = dataplane.regsync_config("10.0.0.2", ["10.0.0.1", "10.0.0.3"], ca.cert, accounts["mirror_puller"],
                                    accounts["mirror_pusher"])
    assert yaml.safe_load(text)["creds"][0]["regcert"] == ca.cert


def test_a_single_master_gets_no_sync():
    masters = [dataplane.Master("master-0", "10.0.0.1")]
    ca, _ = pki.ensure_ca(None, datetime.now(UTC))
    accounts = users.ensure_users(dataplane.FLAVOUR_USERS["Local"], None)
    entry, _ = dataplane.node_services_files(masters[0], masters, "Local", None, ca, accounts, "s" * 32,
                                             "cluster.local", None, None,
                                             datetime.now(UTC))
    assert "regsync.yaml" not in entry["files"]


def test_the_gc_container_runs_the_command_the_e2e_test_runs():
    """tests/e2e/dataplane/test_local_replicas.py runs dataplane.gc_command against a real store; the static
    pod's gc loop must run exactly that command, and never with --delete-untagged."""
    import shlex

    masters = [dataplane.Master("master-0", "10.0.0.1"), dataplane.Master("master-1", "10.0.0.2")]
    ca, _ = pki.ensure_ca(None, datetime.now(UTC))
    accounts = users.ensure_users(dataplane.FLAVOUR_USERS["Local"], None)
    images = dataplane.image_refs("registry.example.com/modules/registry",
                                  {name: "sha256:" + "a" * 64 for name in dataplane.IMAGE_NAMES.values()})
    entry, _ = dataplane.node_services_files(masters[1], masters, "Local", None, ca, accounts, "s" * 32,
                                             "cluster.local", None, None, datetime.now(UTC), images=images)
    pod = yaml.safe_load(entry["files"][dataplane.MANIFEST])
    gc = next(c for c in pod["spec"]["containers"] if c["name"] == "gc")
    assert gc["command"][:2] == ["/bin/sh", "-c"]
    assert f"do {shlex.join(dataplane.gc_command())}; sleep 86400; done" in gc["command"][2]
    assert gc["command"][2].startswith("sleep 4200;")  # 3600 + 600 x ordinal 1
    assert "--delete-untagged" not in gc["command"][2]

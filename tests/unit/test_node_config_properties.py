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
"""Property tests for hooks/lib/node_config.py (SPEC 10.3, target `node_config.render_hosts_toml`).

Oracles: for valid params in every mode, alone (final) or paired (transitional), the rendered files parse
with tomllib, every hosts.toml has at least one host table, dir and file names pass the node script's
checks (SPEC 6.1 rule 2 / 10.2) and every `ca` path points at a file of the same dir. Hostile input makes
the producers raise ValueError and nothing else: no partial output, no other exception type.
"""

import base64
import re
import tomllib

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lib import node_config, validate
from lib import settings as registry_settings

from tests.unit.test_node_config import MODULE_CA, UPSTREAM_CA

# The node script's own patterns (SPEC 6.1 rule 2); producers must never emit anything they would refuse.
SCRIPT_DIR_RE = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?", re.ASCII)
SCRIPT_FILE_RE = re.compile(r"[A-Za-z0-9._:-]+", re.ASCII)
CONTROL = "".join(chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)])
FIXED = node_config.FIXED_DIR
ENV = registry_settings.Environment(True, "Containerd", "Static")

ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
# Built from plain alphabets rather than st.from_regex, which is several times slower to draw from.
words = st.text(ALNUM, min_size=1, max_size=6)
labels = st.builds(lambda head, tail: f"{head}-{tail}" if tail else head, words, st.none() | words)
dns_names = (
    st.lists(labels, min_size=1, max_size=4).map(".".join).filter(lambda h: not h.replace(".", "").isdigit())
)
ipv4s = st.integers(min_value=0, max_value=2**32 - 1).map(
    lambda n: ".".join(str((n >> s) & 255) for s in (24, 16, 8, 0))
)
hosts = st.tuples(st.one_of(dns_names, ipv4s), st.none() | st.integers(1, 65535)).map(
    lambda hp: hp[0] if hp[1] is None else f"{hp[0]}:{hp[1]}"
)
segments = st.builds(
    lambda head, rest: head + "".join(sep + word for sep, word in rest),
    words,
    st.lists(st.tuples(st.sampled_from("._-"), words), max_size=2),
)
paths = st.lists(segments, min_size=1, max_size=3).map("/".join)
cas = st.sampled_from([None, UPSTREAM_CA, MODULE_CA, UPSTREAM_CA + "\n" + MODULE_CA])
usernames = st.text(st.characters(blacklist_characters=":" + CONTROL, codec="utf-8"), min_size=1, max_size=20)
passwords = st.text(st.characters(blacklist_characters=CONTROL, codec="utf-8"), min_size=1, max_size=30)
credentials = st.none() | st.tuples(usernames, passwords) | passwords.map(lambda p: ("license-token", p))
ro_passwords = st.text(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", min_size=24, max_size=24
)
master_lists = st.lists(ipv4s, max_size=5)


@st.composite
def upstream_params(draw, mode):
    params = {
        "mode": mode,
        "legacy": False,
        "scheme": draw(st.sampled_from(["HTTP", "HTTPS"])),
        "host": draw(hosts),
        "path": draw(paths),
        "checkMode": "Default",
    }
    ca = draw(cas)
    if ca is not None:
        params["ca"] = ca
    creds = draw(credentials)
    if creds is not None:
        params["username"], params["password"] = creds
    return params


any_params = st.one_of(
    upstream_params("Direct"),
    upstream_params("Unmanaged"),
    upstream_params("Proxy").map(lambda p: {**p, "ttl": "168h"}),
    st.just({"mode": "Local", "legacy": False}),
    st.just({"mode": "Unmanaged", "legacy": True}),
)


@st.composite
def node_sides(draw):
    params = draw(any_params)
    ro = {"name": "ro", "password": draw(ro_passwords), "password_hash": "x"}
    module_ca = draw(st.sampled_from([MODULE_CA, UPSTREAM_CA]))
    return node_config.mirrors(node_config.node_params(params, ro, module_ca), draw(master_lists))


def check_rendered(hosts_files: dict[str, dict[str, str]]) -> None:
    for directory, files in hosts_files.items():
        assert SCRIPT_DIR_RE.fullmatch(directory) and directory not in (".", "..")
        assert validate.host_dir(directory) == directory
        assert "hosts.toml" in files
        for name, content in files.items():
            assert SCRIPT_FILE_RE.fullmatch(name) and not name.startswith(".")
            assert validate.file_name(name) == name
            assert content.split("\n", 1)[0] == node_config.MARKER
        document = tomllib.loads(files["hosts.toml"])
        tables = document.get("host")
        assert isinstance(tables, dict) and len(tables) >= 1
        if directory == FIXED:
            assert "server" not in document
        for url, table in tables.items():
            scheme, _, host = url.partition("://")
            assert scheme in ("http", "https")
            assert validate.host_dir(host) == host
            assert table["capabilities"] == ["pull", "resolve"]
            for path in table.get("ca", []):
                prefix = f"{node_config.HOSTS_ROOT}/{directory}/"
                assert path.startswith(prefix)
                name = path[len(prefix) :]
                assert "/" not in name and name in files and name != "hosts.toml"
            if "auth" in table:
                user, sep, _ = base64.b64decode(table["auth"]["auth"], validate=True).decode().partition(":")
                assert sep and user and ":" not in user


def check_merge(old: dict, new: dict, merged: dict) -> None:
    """Old dirs first; per dir every scheme://host once, in first-seen order, with the newest content."""
    assert list(merged)[: len(old)] == list(old)
    for directory, entries in merged.items():
        seen = old.get(directory, []) + new.get(directory, [])
        newest = {f"{m['scheme']}://{m['host']}": m for m in seen}
        order = list(dict.fromkeys(f"{m['scheme']}://{m['host']}" for m in seen))
        assert entries == [newest[identity] for identity in order]


# One test for both the final and the transitional render: drawing two node sides dominates its cost.
@given(old=node_sides(), new=node_sides(), transition=st.booleans())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_valid_params_render_safe_files(old, new, transition):
    if transition:
        mirror_map = node_config.transitional(old, new)
        check_merge(old, new, mirror_map)
    else:
        mirror_map = new
    rendered = node_config.render_hosts_toml(mirror_map)
    assert set(rendered) == set(mirror_map)
    check_rendered(rendered)
    payload = node_config.containerd_payload("Transitional" if transition else "Final", mirror_map)
    assert payload["hosts"] == rendered
    assert payload == node_config.containerd_payload(payload["kind"], mirror_map)


@st.composite
def raw_settings(draw):
    mode = draw(st.sampled_from(["Direct", "Proxy", "Unmanaged", "Local"]))
    if mode == "Local":
        return {"mode": mode}
    section = {
        "imagesRepo": f"{draw(hosts)}/{draw(paths)}",
        "scheme": draw(st.sampled_from(["HTTP", "HTTPS"])),
    }
    ca = draw(cas)
    if ca is not None:
        section["ca"] = ca
    creds = draw(st.none() | st.tuples(usernames, passwords))
    if creds is not None:
        section["username"], section["password"] = creds
    return {"mode": mode, mode.lower(): section}


@given(raw=raw_settings(), masters=master_lists, ro_password=ro_passwords)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_settings_valid_implies_render_succeeds(raw, masters, ro_password):
    verdict = registry_settings.evaluate(raw, ENV)
    assume(verdict.valid)
    ro = {"name": "ro", "password": ro_password, "password_hash": "x"}
    mirror_map = node_config.mirrors(node_config.node_params(verdict.params, ro, MODULE_CA), masters)
    check_rendered(node_config.render_hosts(mirror_map))


# ---------------------------------------------------------------------------------------------------------
# Hostile input

HOSTILE_FRAGMENTS = [
    '"',
    "\n",
    "\r",
    "/",
    ";",
    " ",
    "\\",
    "$",
    "`",
    "'",
    "ü",
    "\u202e",
    "\x00",
    "{{",
    "..",
    "#",
    "[",
    "]",
]
HOSTILE_IPS = [
    "10.0.0.1;rm",
    "../",
    "10.0.0.1/24",
    "10.0.0.256",
    "010.0.0.1",
    "١٠.٠.٠.١",
    "10.0.0.1\n",
    "fe80::1",
    "10.0.0.1:5001",
    "",
    " ",
    "$(id)",
    "10.0.0.1 ",
    '10.0.0.1"',
]


def poison(value: str, fragment: str, where: int) -> str:
    where %= len(value) + 1
    return value[:where] + fragment + value[where:]


hostile_hosts = st.one_of(
    st.builds(poison, hosts, st.sampled_from(HOSTILE_FRAGMENTS), st.integers(0, 300)),
    st.builds(lambda h, p: f"{h}:{p}", dns_names, st.integers(65536, 10**12)),
    st.builds(lambda h: f"{h}:0", dns_names),
    st.sampled_from([".", "..", "", "../etc", "a..b", "-a.com", "a.com-", "\u0430.com", "x" * 300]),
)


@given(
    masters=master_lists, hostile=st.sampled_from(HOSTILE_IPS) | st.text(max_size=20), where=st.integers(0, 5)
)
def test_hostile_master_ips_rejected(masters, hostile, where):
    try:
        validate.ipv4(hostile)
    except ValueError:
        pass
    else:
        assume(False)
    ips = list(masters)
    ips.insert(where % (len(ips) + 1), hostile)
    with pytest.raises(ValueError):
        node_config.mirrors({"mode": "Proxy", "ca": MODULE_CA, "username": "ro", "password": "p"}, ips)


@given(params=upstream_params("Direct") | upstream_params("Unmanaged"), host=hostile_hosts)
def test_hostile_upstream_host_rejected(params, host):
    with pytest.raises(ValueError):
        node_config.render_hosts(
            node_config.mirrors(node_config.node_params({**params, "host": host}, None, None), [])
        )


@given(
    params=upstream_params("Direct"),
    path=st.builds(
        poison,
        paths,
        st.sampled_from([f for f in HOSTILE_FRAGMENTS if f != "/"] + ["A", "--", "._"]),
        st.integers(0, 100),
    ),
)
def test_hostile_repository_path_rejected(params, path):
    with pytest.raises(ValueError):
        node_config.mirrors({**node_config.node_params(params, None, None), "path": path}, [])


@given(
    params=upstream_params("Unmanaged"),
    user=st.builds(
        poison, usernames, st.sampled_from([":", "\n", "\x00", "\x7f", "\x85"]), st.integers(0, 30)
    ),
)
def test_hostile_username_rejected(params, user):
    with pytest.raises(ValueError):
        node_config.render_hosts(node_config.mirrors({**params, "username": user, "password": "p"}, []))


@given(new=node_sides(), directory=hostile_hosts)
def test_hostile_dir_names_rejected(new, directory):
    assume(new)
    entries = next(iter(new.values()))
    with pytest.raises(ValueError):
        node_config.render_hosts({directory: entries})


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 70000), st.text(max_size=12), st.sampled_from(HOSTILE_FRAGMENTS)
)
fuzz_mirrors = st.fixed_dictionaries(
    {"scheme": st.sampled_from(["http", "https", "HTTPS", "ftp", "", None]), "host": hosts | hostile_hosts},
    optional={
        "ca": st.sampled_from([UPSTREAM_CA, "junk", "", None, UPSTREAM_CA + '"']),
        "auth": st.fixed_dictionaries({"username": usernames | scalars, "password": passwords | scalars})
        | scalars,
        "header": st.dictionaries(
            st.sampled_from(["Authorization", "X Y", "X\n", ""]), st.lists(scalars, max_size=2)
        )
        | scalars,
        "dial_timeout": st.sampled_from(["1s", "250ms", "1s;", "", "1 s"]) | scalars,
        "rewrite": st.dictionaries(st.sampled_from(["^system/deckhouse", '^a"', "^a\n"]), paths | scalars)
        | scalars,
        "extra": scalars,
    },
)


@given(mirror_map=st.dictionaries(hosts | hostile_hosts, st.lists(fuzz_mirrors, max_size=3), max_size=2))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_mirror_maps_render_safely_or_raise_value_error(mirror_map):
    # Validation implies sink safety: whatever gets through is a file set the node script would accept.
    try:
        rendered = node_config.render_hosts(mirror_map)
    except ValueError:
        return
    check_rendered(rendered)

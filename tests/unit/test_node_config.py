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
"""Table tests for hooks/lib/node_config.py and hooks/lib/validate.py, plus hosts.toml golden files.

Golden files live under tests/golden/hosts/<case>/<hosts dir>/<file> and are compared byte for byte.
After an intended change of the rendered output, regenerate them and review the diff:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_node_config.py -k golden
"""

import base64
import copy
import ipaddress
import os
import shutil
import tomllib
from pathlib import Path

import pytest
from lib import node_config, validate
from lib.hashing import version_of

GOLDEN_ROOT = Path(__file__).resolve().parents[1] / "golden" / "hosts"
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"

UPSTREAM_CA = """-----BEGIN CERTIFICATE-----
MIIBOjCB4qADAgECAgID+DAKBggqhkjOPQQDAjAbMRkwFwYDVQQDDBB1cHN0cmVh
bS10ZXN0LWNhMB4XDTI2MDEwMTAwMDAwMFoXDTM1MTIzMDAwMDAwMFowGzEZMBcG
A1UEAwwQdXBzdHJlYW0tdGVzdC1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IA
BPOaoycIIev4AJgUW8a8vjWRv8KFziFqBIrQEDHPMihCj+8LRLqxrRRwmVw9/vbR
oO4RxK0m9Q1cBD9ItFlfLmijFjAUMBIGA1UdEwEB/wQIMAYBAf8CAQAwCgYIKoZI
zj0EAwIDRwAwRAIgYHVqwv5wHECytNoHzPuSzbpwP13LJ7YneqOpcIFqZkgCIA35
qh2JpycJiJutQ0HY7ckUWbQoHlol3kbSztzEu+2p
-----END CERTIFICATE-----"""

MODULE_CA = """-----BEGIN CERTIFICATE-----
MIIBMTCB2KADAgECAgID8zAKBggqhkjOPQQDAjAWMRQwEgYDVQQDDAtyZWdpc3Ry
eS1jYTAeFw0yNjAxMDEwMDAwMDBaFw0zNTEyMzAwMDAwMDBaMBYxFDASBgNVBAMM
C3JlZ2lzdHJ5LWNhMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEOwcFxKfQxt5W
4XQI86exSzy0n0uDiVnxLSf9wUeD8eXCCCMbXbOmavnoKNPy6Aazz3EiweKOS4Wb
cqxjkTf196MWMBQwEgYDVR0TAQH/BAgwBgEB/wIBADAKBggqhkjOPQQDAgNIADBF
AiEAguXRmXkWMNtt0/nLMOJxwEBS5vFk23OlXlNmg4mma9ACIDYZBA3zXAfh/CHL
pSHig1v4JJuASJWSMrpebbhyn6Y6
-----END CERTIFICATE-----"""

FIXED = node_config.FIXED_DIR
ROOT = node_config.HOSTS_ROOT
MARKER = node_config.MARKER
CAPS = ["pull", "resolve"]

RO = {
    "name": "ro",
    "password": "Ro0pAssw0rdAlphaNum24chr",
    "password_hash": "$2b$05$notarealhashnotarealhash",
}
MASTERS = ["10.0.0.13", "10.0.0.11", "10.0.0.12"]
MASTERS_SORTED = ["10.0.0.11", "10.0.0.12", "10.0.0.13"]

DIRECT = {
    "mode": "Direct",
    "legacy": False,
    "scheme": "HTTPS",
    "host": "registry.deckhouse.ru",
    "path": "deckhouse/ee",
    "ca": UPSTREAM_CA,
    "username": "license-token",
    "password": "licence-Key-1",
    "checkMode": "Default",
}
DIRECT_HTTP_ANON = {
    "mode": "Direct",
    "legacy": False,
    "scheme": "HTTP",
    "host": "10.1.2.3:5000",
    "path": "deckhouse/ce",
    "checkMode": "Relax",
}
DIRECT_OTHER = {
    "mode": "Direct",
    "legacy": False,
    "scheme": "HTTPS",
    "host": "mirror.example.com",
    "path": "d8/ee",
    "username": "puller",
    "password": "other-pass",
    "checkMode": "Default",
}
PROXY = {
    "mode": "Proxy",
    "legacy": False,
    "scheme": "HTTPS",
    "host": "registry.deckhouse.ru",
    "path": "deckhouse/ee",
    "username": "license-token",
    "password": "licence-Key-1",
    "ttl": "168h",
    "checkMode": "Default",
}
LOCAL = {"mode": "Local", "legacy": False}
UNMANAGED = {
    "mode": "Unmanaged",
    "legacy": False,
    "scheme": "HTTPS",
    "host": "nexus.example.com:8443",
    "path": "deckhouse/ee",
    "ca": UPSTREAM_CA,
    "username": "admin",
    "password": 'nexus"pa:ss\\word',
    "checkMode": "Default",
}
LEGACY = {"mode": "Unmanaged", "legacy": True}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def mirror_map(params: dict, masters=MASTERS) -> dict:
    return node_config.mirrors(node_config.node_params(params, RO, MODULE_CA), masters)


def parse(text: str) -> dict:
    first, _, _ = text.partition("\n")
    assert first == MARKER
    return tomllib.loads(text)


# ---------------------------------------------------------------------------------------------------------
# validate.py


@pytest.mark.parametrize(
    "func, good",
    [
        (validate.node_name, ["master-0", "a", "node.example.com", "n" * 253]),
        (
            validate.host_dir,
            ["registry.example.com", "nexus.example.com:8443", "10.0.0.1:5001", FIXED, "A.b-c"],
        ),
        (validate.file_name, ["hosts.toml", "https-127.0.0.1:5001-ca.crt", "a_b-C.9"]),
        (validate.repo_path, ["deckhouse/ee", "a", "a.b/c_d/e-f/0"]),
        (validate.username, ["ro", "license-token", "user name with spaces", "\u043f\u043e\u043b\u044c\u0437\u043e\u0432\u0430\u0442\u0435\u043b\u044c"]),
        (validate.config_string, ["", "plain text", "Basic cm86cHc=", "^system/deckhouse"]),
        (validate.ca_bundle, [UPSTREAM_CA, UPSTREAM_CA + "\n" + MODULE_CA + "\n"]),
    ],
)
def test_validators_accept(func, good):
    for value in good:
        assert func(value) == value


@pytest.mark.parametrize(
    "func, bad, kind",
    [
        (
            validate.node_name,
            ["", "Master", "-a", "a-", "a..b", "a_b", "n" * 254, "a/b", "a b", None, 5],
            "node name",
        ),
        (
            validate.host_dir,
            [
                "",
                ".",
                "..",
                "a/b",
                "h:0",
                "h:65536",
                "h:99999999",
                "h:",
                "h:p",
                "a:1:2",
                "h\n",
                'h"',
                "ü.de",
                "300.1.1.1",
                "-a.com",
                "x" * 256,
                None,
            ],
            "host directory name",
        ),
        (validate.file_name, ["", ".hidden", "..", "a/b", "a b", "a\nb", "ä", "x" * 256, None], "file name"),
        (
            validate.repo_path,
            ["", "/a", "a/", "a//b", "A/b", "a/../b", "./a", "a--b", "a b", None],
            "repository path",
        ),
        (validate.username, ["", "a:b", "a\nb", "a\x00b", "a\x85b", "u" * 257, None], "username"),
        (
            validate.config_string,
            ["a;b", "{", "}", '"', "'", "`", "$x", "\\", "a\nb", "\x00", None],
            "configuration string",
        ),
        (
            validate.ca_bundle,
            ["", "x", UPSTREAM_CA + "\ntrailing", "-----BEGIN CERTIFICATE-----\n", None],
            "CA bundle",
        ),
    ],
)
def test_validators_reject_without_echo(func, bad, kind):
    for value in bad:
        with pytest.raises(ValueError) as error:
            func(value)
        message = str(error.value)
        assert message.startswith(f"invalid {kind}")
        if isinstance(value, str) and len(value) > 2:
            assert value not in message


@pytest.mark.parametrize("value", ["10.0.0.1", "0.0.0.0", "255.255.255.255", "192.168.1.10"])
def test_ipv4_accepts(value):
    assert validate.ipv4(value) == ipaddress.IPv4Address(value)


@pytest.mark.parametrize(
    "value",
    [
        "10.0.0.1;rm",
        "10.0.0.01",
        "10.0.0",
        "10.0.0.256",
        " 10.0.0.1",
        "10.0.0.1\n",
        "::1",
        "١٠.0.0.1",
        "",
        None,
        167772161,
    ],
)
def test_ipv4_rejects(value):
    with pytest.raises(ValueError, match="^invalid IPv4 address"):
        validate.ipv4(value)


@pytest.mark.parametrize(
    "value, ok",
    [
        (1, True),
        (5001, True),
        (65535, True),
        (0, False),
        (65536, False),
        (-1, False),
        (True, False),
        ("5001", False),
        (5001.0, False),
    ],
)
def test_port(value, ok):
    if ok:
        assert validate.port(value) == value
    else:
        with pytest.raises(ValueError, match="^invalid port"):
            validate.port(value)


# ---------------------------------------------------------------------------------------------------------
# node_params


@pytest.mark.parametrize(
    "params, expected",
    [
        (
            DIRECT,
            {
                "mode": "Direct",
                "scheme": "HTTPS",
                "host": "registry.deckhouse.ru",
                "path": "deckhouse/ee",
                "ca": UPSTREAM_CA,
                "username": "license-token",
                "password": "licence-Key-1",
            },
        ),
        (
            DIRECT_HTTP_ANON,
            {"mode": "Direct", "scheme": "HTTP", "host": "10.1.2.3:5000", "path": "deckhouse/ce"},
        ),
        (
            UNMANAGED,
            {
                "mode": "Unmanaged",
                "scheme": "HTTPS",
                "host": "nexus.example.com:8443",
                "path": "deckhouse/ee",
                "ca": UPSTREAM_CA,
                "username": "admin",
                "password": 'nexus"pa:ss\\word',
            },
        ),
        (
            {**DIRECT_HTTP_ANON, "scheme": "http"},
            {"mode": "Direct", "scheme": "HTTP", "host": "10.1.2.3:5000", "path": "deckhouse/ce"},
        ),
        (PROXY, {"mode": "Proxy", "ca": MODULE_CA, "username": "ro", "password": RO["password"]}),
        (LOCAL, {"mode": "Local", "ca": MODULE_CA, "username": "ro", "password": RO["password"]}),
        (LEGACY, {"mode": "Unmanaged"}),
    ],
)
def test_node_params(params, expected):
    before = copy.deepcopy(params)
    result = node_config.node_params(params, RO, MODULE_CA)
    assert result == expected
    assert params == before
    # The bcrypt hash of the ro user is not node material.
    assert RO["password_hash"] not in repr(result)


def test_node_params_ignore_ro_and_ca_for_upstream_modes():
    assert node_config.node_params(DIRECT, None, None) == node_config.node_params(DIRECT, RO, MODULE_CA)


@pytest.mark.parametrize("ro, ca", [(None, MODULE_CA), (RO, None), (None, None)])
def test_node_params_proxy_needs_ro_and_ca(ro, ca):
    with pytest.raises(ValueError):
        node_config.node_params(PROXY, ro, ca)


def test_node_params_unknown_mode():
    with pytest.raises(ValueError):
        node_config.node_params({"mode": "Mirror"}, RO, MODULE_CA)


# ---------------------------------------------------------------------------------------------------------
# mirrors


def ro_mirror(host: str) -> dict:
    return {
        "scheme": "https",
        "host": host,
        "ca": MODULE_CA,
        "header": {"Authorization": ["Basic " + b64("ro:" + RO["password"])]},
        "dial_timeout": "1s",
    }


UPSTREAM_MIRROR = {
    "scheme": "https",
    "host": "registry.deckhouse.ru",
    "ca": UPSTREAM_CA,
    "auth": {"username": "license-token", "password": "licence-Key-1"},
    "rewrite": {"^system/deckhouse": "deckhouse/ee"},
}
OTHER_MIRROR = {
    "scheme": "https",
    "host": "mirror.example.com",
    "auth": {"username": "puller", "password": "other-pass"},
    "rewrite": {"^system/deckhouse": "d8/ee"},
}
NODE_SERVICES_MIRRORS = [ro_mirror("127.0.0.1:5001")] + [ro_mirror(f"{ip}:5001") for ip in MASTERS_SORTED]
UNMANAGED_MIRROR = {
    "scheme": "https",
    "host": "nexus.example.com:8443",
    "ca": UPSTREAM_CA,
    "auth": {"username": "admin", "password": 'nexus"pa:ss\\word'},
}


@pytest.mark.parametrize(
    "params, expected",
    [
        (DIRECT, {FIXED: [UPSTREAM_MIRROR]}),
        (
            DIRECT_HTTP_ANON,
            {
                FIXED: [
                    {
                        "scheme": "http",
                        "host": "10.1.2.3:5000",
                        "rewrite": {"^system/deckhouse": "deckhouse/ce"},
                    }
                ]
            },
        ),
        (PROXY, {FIXED: NODE_SERVICES_MIRRORS}),
        (LOCAL, {FIXED: NODE_SERVICES_MIRRORS}),
        (UNMANAGED, {"nexus.example.com:8443": [UNMANAGED_MIRROR]}),
        (LEGACY, {}),
    ],
)
def test_mirrors(params, expected):
    assert mirror_map(params) == expected


def test_mirrors_ignore_masters_outside_node_services_modes():
    assert mirror_map(DIRECT, masters=[]) == mirror_map(DIRECT)
    assert mirror_map(UNMANAGED, masters=["not an ip"]) == mirror_map(UNMANAGED)


@pytest.mark.parametrize(
    "masters, expected",
    [
        ([], []),
        (["10.0.0.1"], ["10.0.0.1"]),
        # numeric, not lexicographic
        (
            ["10.0.0.10", "10.0.0.9", "9.255.255.255", "10.0.0.100"],
            ["9.255.255.255", "10.0.0.9", "10.0.0.10", "10.0.0.100"],
        ),
        (["10.0.0.2", "10.0.0.1", "10.0.0.2", "10.0.0.1"], ["10.0.0.1", "10.0.0.2"]),
    ],
)
def test_master_endpoints_sorted_unique(masters, expected):
    hosts = [m["host"] for m in mirror_map(PROXY, masters=masters)[FIXED]]
    assert hosts == ["127.0.0.1:5001"] + [f"{ip}:5001" for ip in expected]


@pytest.mark.parametrize(
    "masters",
    [["10.0.0.1;rm"], ["10.0.0.1", "../"], ["fe80::1"], ["10.0.0.1:5001"], [None], "10.0.0.1", ["١.٢.٣.٤"]],
)
def test_master_endpoints_reject_hostile(masters):
    with pytest.raises(ValueError):
        mirror_map(PROXY, masters=masters)


@pytest.mark.parametrize(
    "params",
    [
        {**DIRECT, "path": "../etc"},
        {**DIRECT, "path": ""},
        {**DIRECT, "host": 'evil"host'},
        {**DIRECT, "host": "a/b"},
        {**DIRECT, "scheme": "ftp"},
        {**UNMANAGED, "host": ".."},
        {**UNMANAGED, "host": "h:70000"},
    ],
)
def test_mirrors_reject_hostile_params(params):
    with pytest.raises(ValueError):
        mirror_map(params)


def test_mirrors_proxy_without_module_ca():
    with pytest.raises(ValueError):
        node_config.mirrors({"mode": "Proxy", "username": "ro", "password": "x"}, MASTERS)


# ---------------------------------------------------------------------------------------------------------
# transitional


@pytest.mark.parametrize(
    "old, new, expected",
    [
        # Unmanaged -> Direct: two dirs, the old registry's dir first
        (UNMANAGED, DIRECT, {"nexus.example.com:8443": [UNMANAGED_MIRROR], FIXED: [UPSTREAM_MIRROR]}),
        # Direct -> Proxy: one dir, upstream (with rewrite) first, then LB, then masters
        (DIRECT, PROXY, {FIXED: [UPSTREAM_MIRROR, *NODE_SERVICES_MIRRORS]}),
        # Proxy -> Direct: the node-services path stays first until the final config
        (PROXY, DIRECT, {FIXED: [*NODE_SERVICES_MIRRORS, UPSTREAM_MIRROR]}),
        # Direct -> Direct with a new upstream: both upstreams, each with its own rewrite
        (DIRECT, DIRECT_OTHER, {FIXED: [UPSTREAM_MIRROR, OTHER_MIRROR]}),
        # Local -> Direct
        (LOCAL, DIRECT, {FIXED: [*NODE_SERVICES_MIRRORS, UPSTREAM_MIRROR]}),
        # Direct -> Unmanaged
        (DIRECT, UNMANAGED, {FIXED: [UPSTREAM_MIRROR], "nexus.example.com:8443": [UNMANAGED_MIRROR]}),
        # from / to legacy: nothing on the legacy side
        (LEGACY, DIRECT, {FIXED: [UPSTREAM_MIRROR]}),
        (DIRECT, LEGACY, {FIXED: [UPSTREAM_MIRROR]}),
    ],
)
def test_transitional_pairs(old, new, expected):
    result = node_config.transitional(mirror_map(old), mirror_map(new))
    assert result == expected
    assert list(result) == list(expected)


def test_transitional_same_upstream_new_credentials_replaces_in_place():
    rotated = {**DIRECT, "password": "rotated-Key-2"}
    result = node_config.transitional(mirror_map(DIRECT), mirror_map(rotated))
    assert result == mirror_map(rotated)
    assert result[FIXED][0]["auth"]["password"] == "rotated-Key-2"


def test_transitional_duplicate_keeps_old_position_with_new_content():
    a_old = {"scheme": "https", "host": "a.example.com", "auth": {"username": "u", "password": "old"}}
    a_new = {"scheme": "https", "host": "a.example.com", "auth": {"username": "u", "password": "new"}}
    b = {"scheme": "https", "host": "b.example.com"}
    c = {"scheme": "https", "host": "c.example.com"}
    a_http = {"scheme": "http", "host": "a.example.com"}
    result = node_config.transitional({"d": [a_old, b]}, {"d": [c, a_new, a_http]})
    assert result == {"d": [a_new, b, c, a_http]}


def test_transitional_same_params_is_final_and_inputs_untouched():
    for params in (DIRECT, PROXY, LOCAL, UNMANAGED, LEGACY):
        old, new = mirror_map(params), mirror_map(params)
        snapshot = copy.deepcopy((old, new))
        result = node_config.transitional(old, new)
        assert result == new
        assert (old, new) == snapshot
        # No aliasing: editing the result cannot corrupt the inputs.
        for entries in result.values():
            entries[0]["host"] = "changed"
        assert (old, new) == snapshot


def test_node_services_node_params_ignore_upstream_and_masters():
    # A new upstream or ttl in Proxy changes only the masters' data plane, never node configuration, and a
    # master change is re-derived on every run instead of starting a transition.
    other_upstream = {**PROXY, "host": "mirror.example.com", "path": "d8/ee", "ttl": "1h"}
    assert node_config.node_params(other_upstream, RO, MODULE_CA) == node_config.node_params(
        PROXY, RO, MODULE_CA
    )
    grown = node_config.mirrors(node_config.node_params(PROXY, RO, MODULE_CA), MASTERS + ["10.0.0.14"])
    assert [m["host"] for m in grown[FIXED]][-1] == "10.0.0.14:5001"


# ---------------------------------------------------------------------------------------------------------
# render_hosts


def ca_path(directory: str, name: str) -> str:
    return f"{ROOT}/{directory}/{name}"


def test_render_direct_with_ca_and_auth():
    files = node_config.render_hosts(mirror_map(DIRECT))
    assert set(files) == {FIXED}
    assert set(files[FIXED]) == {"hosts.toml", "https-registry.deckhouse.ru-ca.crt"}
    doc = parse(files[FIXED]["hosts.toml"])
    assert "server" not in doc
    assert doc == {
        "host": {
            "https://registry.deckhouse.ru": {
                "capabilities": CAPS,
                "ca": [ca_path(FIXED, "https-registry.deckhouse.ru-ca.crt")],
                "auth": {"auth": b64("license-token:licence-Key-1")},
                "rewrite": [{"regex": "^system/deckhouse", "replace": "deckhouse/ee"}],
            }
        }
    }
    assert files[FIXED]["https-registry.deckhouse.ru-ca.crt"] == f"{MARKER}\n{UPSTREAM_CA}\n"


def test_render_direct_http_anonymous():
    files = node_config.render_hosts(mirror_map(DIRECT_HTTP_ANON))
    assert set(files[FIXED]) == {"hosts.toml"}
    doc = parse(files[FIXED]["hosts.toml"])
    assert doc == {
        "host": {
            "http://10.1.2.3:5000": {
                "capabilities": CAPS,
                "skip_verify": True,
                "rewrite": [{"regex": "^system/deckhouse", "replace": "deckhouse/ce"}],
            }
        }
    }


@pytest.mark.parametrize("params", [PROXY, LOCAL])
def test_render_node_services(params):
    files = node_config.render_hosts(mirror_map(params))
    hosts = ["127.0.0.1:5001"] + [f"{ip}:5001" for ip in MASTERS_SORTED]
    assert list(files[FIXED]) == ["hosts.toml"] + [f"https-{h}-ca.crt" for h in hosts]
    doc = parse(files[FIXED]["hosts.toml"])
    assert "server" not in doc
    assert list(doc["host"]) == [f"https://{h}" for h in hosts]
    header = "Basic " + b64("ro:" + RO["password"])
    for host in hosts:
        assert doc["host"][f"https://{host}"] == {
            "capabilities": CAPS,
            "ca": [ca_path(FIXED, f"https-{host}-ca.crt")],
            "dial_timeout": "1s",
            "header": {"Authorization": [header]},
        }
        assert files[FIXED][f"https-{host}-ca.crt"] == f"{MARKER}\n{MODULE_CA}\n"


def test_render_unmanaged_with_port_ca_and_auth():
    files = node_config.render_hosts(mirror_map(UNMANAGED))
    directory = "nexus.example.com:8443"
    assert set(files) == {directory}
    doc = parse(files[directory]["hosts.toml"])
    assert doc == {
        "server": "https://nexus.example.com:8443",
        "host": {
            "https://nexus.example.com:8443": {
                "capabilities": CAPS,
                "ca": [ca_path(directory, "https-nexus.example.com:8443-ca.crt")],
                "auth": {"auth": b64('admin:nexus"pa:ss\\word')},
            }
        },
    }
    # The first line is the marker; the TOML body starts right after it.
    assert files[directory]["hosts.toml"].splitlines()[:2] == [
        MARKER,
        'server = "https://nexus.example.com:8443"',
    ]


def test_render_unmanaged_scheme_change_server_is_newest():
    old = {**UNMANAGED, "scheme": "HTTP"}
    merged = node_config.transitional(mirror_map(old), mirror_map(UNMANAGED))
    directory = "nexus.example.com:8443"
    files = node_config.render_hosts(merged)
    doc = parse(files[directory]["hosts.toml"])
    assert list(doc["host"]) == ["http://nexus.example.com:8443", "https://nexus.example.com:8443"]
    assert doc["server"] == "https://nexus.example.com:8443"
    assert doc["host"]["http://nexus.example.com:8443"]["skip_verify"] is True
    assert {"https-nexus.example.com:8443-ca.crt", "http-nexus.example.com:8443-ca.crt"} <= set(
        files[directory]
    )


def test_render_transitional_unmanaged_to_direct_two_dirs():
    files = node_config.render_hosts(node_config.transitional(mirror_map(UNMANAGED), mirror_map(DIRECT)))
    assert set(files) == {"nexus.example.com:8443", FIXED}
    assert "server" in parse(files["nexus.example.com:8443"]["hosts.toml"])
    assert "server" not in parse(files[FIXED]["hosts.toml"])


def test_render_transitional_direct_to_proxy_order():
    files = node_config.render_hosts(node_config.transitional(mirror_map(DIRECT), mirror_map(PROXY)))
    doc = parse(files[FIXED]["hosts.toml"])
    assert list(doc["host"]) == ["https://registry.deckhouse.ru", "https://127.0.0.1:5001"] + [
        f"https://{ip}:5001" for ip in MASTERS_SORTED
    ]
    upstream = doc["host"]["https://registry.deckhouse.ru"]
    assert upstream["rewrite"] == [{"regex": "^system/deckhouse", "replace": "deckhouse/ee"}]
    assert "rewrite" not in doc["host"]["https://127.0.0.1:5001"]
    assert files[FIXED]["https-registry.deckhouse.ru-ca.crt"].endswith(UPSTREAM_CA + "\n")
    assert files[FIXED]["https-127.0.0.1:5001-ca.crt"].endswith(MODULE_CA + "\n")


@pytest.mark.parametrize("params", [DIRECT, DIRECT_HTTP_ANON, PROXY, LOCAL, UNMANAGED])
def test_render_file_names_and_ca_paths(params):
    for directory, files in node_config.render_hosts(mirror_map(params)).items():
        assert validate.host_dir(directory) == directory
        for name, content in files.items():
            assert validate.file_name(name) == name
            assert content.startswith(MARKER + "\n")
        for table in parse(files["hosts.toml"])["host"].values():
            for path in table.get("ca", []):
                assert path.startswith(f"{ROOT}/{directory}/")
                assert path.rsplit("/", 1)[1] in files


def test_render_escapes_strings_through_the_serializer():
    # A header value with TOML-significant characters never reaches the file: it is rejected outright.
    hostile = {FIXED: [{"scheme": "https", "host": "a.example.com", "header": {"X": ['a"b']}}]}
    with pytest.raises(ValueError):
        node_config.render_hosts(hostile)
    # Credentials with quotes and backslashes are fine because they only appear base64-encoded.
    doc = parse(node_config.render_hosts(mirror_map(UNMANAGED))["nexus.example.com:8443"]["hosts.toml"])
    auth = doc["host"]["https://nexus.example.com:8443"]["auth"]["auth"]
    assert base64.b64decode(auth).decode() == 'admin:nexus"pa:ss\\word'


def test_ca_file_name_fallback_for_names_beyond_name_max():
    label = "a" * 63
    host = ".".join([label, label, label, "b" * 57])  # 249 characters, a valid DNS name
    assert validate.host_dir(host) == host
    name = node_config.ca_file_name("https", host)
    assert len(name) <= 255
    assert validate.file_name(name) == name
    assert name == node_config.ca_file_name("https", host)
    assert node_config.ca_file_name("https", "r.example.com") == "https-r.example.com-ca.crt"


GOOD = {"scheme": "https", "host": "a.example.com"}


@pytest.mark.parametrize(
    "mirror_map_",
    [
        {"../x": [GOOD]},
        {"a/b": [GOOD]},
        {".": [GOOD]},
        {"": [GOOD]},
        {FIXED: []},
        {FIXED: [{**GOOD, "host": 'a"b'}]},
        {FIXED: [{**GOOD, "host": "a\nb"}]},
        {FIXED: [{**GOOD, "host": "a.example.com:123456"}]},
        {FIXED: [{**GOOD, "scheme": "ftp"}]},
        {FIXED: [{**GOOD, "scheme": None}]},
        {FIXED: [{**GOOD, "unknown": 1}]},
        {FIXED: [GOOD, GOOD]},
        {FIXED: [{**GOOD, "ca": "not a pem"}]},
        {FIXED: [{**GOOD, "auth": {"username": "a:b", "password": "p"}}]},
        {FIXED: [{**GOOD, "auth": {"username": "u", "password": ""}}]},
        {FIXED: [{**GOOD, "auth": "dXNlcjpwYXNz"}]},
        {FIXED: [{**GOOD, "header": {"Bad Name": ["x"]}}]},
        {FIXED: [{**GOOD, "header": {"X": ["a\nb"]}}]},
        {FIXED: [{**GOOD, "header": {"X": []}}]},
        {FIXED: [{**GOOD, "dial_timeout": "1s; rm"}]},
        {FIXED: [{**GOOD, "rewrite": {"^system/deckhouse": "../x"}}]},
        {FIXED: [{**GOOD, "rewrite": {'^a"': "x"}}]},
        {FIXED: [{**GOOD, "rewrite": {}}]},
        {FIXED: ["not a mirror"]},
    ],
)
def test_render_rejects_hostile_mirror_maps(mirror_map_):
    with pytest.raises(ValueError):
        node_config.render_hosts(mirror_map_)


def test_render_aliases_fuzz_target_name():
    assert node_config.render_hosts_toml is node_config.render_hosts


# ---------------------------------------------------------------------------------------------------------
# containerd_payload


def test_payload_none():
    payload = node_config.containerd_payload("None", None)
    assert payload == {"kind": "None", "hosts": {}, "version": version_of({"kind": "None", "hosts": {}})}
    assert node_config.containerd_payload("None", mirror_map(DIRECT)) == payload


@pytest.mark.parametrize("kind", ["Transitional", "Final"])
def test_payload_carries_rendered_hosts(kind):
    mirrors_ = mirror_map(DIRECT)
    payload = node_config.containerd_payload(kind, mirrors_)
    assert payload["kind"] == kind
    assert payload["hosts"] == node_config.render_hosts(mirrors_)
    assert payload["version"] == version_of({"kind": kind, "hosts": payload["hosts"]})
    assert len(payload["version"]) == 64


def reorder(value):
    """The same data with every dict's keys inserted in reverse order."""
    if isinstance(value, dict):
        return {k: reorder(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reorder(v) for v in value]
    return value


def test_payload_version_stable_under_dict_ordering():
    merged = node_config.transitional(mirror_map(UNMANAGED), mirror_map(DIRECT))
    reordered = reorder(merged)
    assert list(reordered) != list(merged)
    first = node_config.containerd_payload("Transitional", merged)
    assert node_config.containerd_payload("Transitional", reordered)["version"] == first["version"]
    assert node_config.containerd_payload("Transitional", copy.deepcopy(merged)) == first


def test_payload_version_changes_with_content():
    base = node_config.containerd_payload("Final", mirror_map(PROXY))["version"]
    variants = [
        node_config.containerd_payload("Transitional", mirror_map(PROXY)),
        node_config.containerd_payload("Final", mirror_map(PROXY, masters=MASTERS + ["10.0.0.14"])),
        node_config.containerd_payload(
            "Final",
            node_config.mirrors(
                node_config.node_params(PROXY, {**RO, "password": "Another24charsPassword00"}, MODULE_CA),
                MASTERS,
            ),
        ),
        node_config.containerd_payload(
            "Final", node_config.mirrors(node_config.node_params(PROXY, RO, UPSTREAM_CA), MASTERS)
        ),
    ]
    versions = {v["version"] for v in variants}
    assert base not in versions
    assert len(versions) == len(variants)


@pytest.mark.parametrize(
    "kind, mirrors_", [("partial", {}), ("Final", None), ("Transitional", None), (None, {})]
)
def test_payload_rejects_bad_arguments(kind, mirrors_):
    with pytest.raises(ValueError):
        node_config.containerd_payload(kind, mirrors_)


# ---------------------------------------------------------------------------------------------------------
# Golden files


def golden_cases() -> dict:
    return {
        "direct-ca-auth": mirror_map(DIRECT),
        "direct-http-anonymous": mirror_map(DIRECT_HTTP_ANON),
        "proxy-3-masters": mirror_map(PROXY),
        "local-3-masters": mirror_map(LOCAL, masters=["192.168.10.3", "192.168.10.1", "192.168.10.2"]),
        "unmanaged-port-ca": mirror_map(UNMANAGED),
        "transitional-unmanaged-to-direct": node_config.transitional(
            mirror_map(UNMANAGED), mirror_map(DIRECT)
        ),
        "transitional-direct-to-proxy": node_config.transitional(mirror_map(DIRECT), mirror_map(PROXY)),
    }


def read_tree(root: Path) -> dict[str, dict[str, bytes]]:
    tree: dict[str, dict[str, bytes]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            relative = path.relative_to(root)
            assert len(relative.parts) == 2, f"unexpected golden layout: {relative}"
            tree.setdefault(relative.parts[0], {})[relative.parts[1]] = path.read_bytes()
    return tree


@pytest.mark.parametrize("case", sorted(golden_cases()))
def test_golden(case):
    rendered = {
        directory: {name: content.encode("utf-8") for name, content in files.items()}
        for directory, files in node_config.render_hosts(golden_cases()[case]).items()
    }
    root = GOLDEN_ROOT / case
    if UPDATE_GOLDEN:
        shutil.rmtree(root, ignore_errors=True)
        for directory, files in rendered.items():
            (root / directory).mkdir(parents=True)
            for name, content in files.items():
                (root / directory / name).write_bytes(content)
    assert root.is_dir(), f"golden files missing for {case}: run with UPDATE_GOLDEN=1"
    assert read_tree(root) == rendered


def test_golden_has_no_stale_cases():
    known = set(golden_cases())
    if UPDATE_GOLDEN:
        for stale in [p for p in GOLDEN_ROOT.iterdir() if p.is_dir() and p.name not in known]:
            shutil.rmtree(stale)
    assert {p.name for p in GOLDEN_ROOT.iterdir()} == known

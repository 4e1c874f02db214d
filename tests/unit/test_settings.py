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
"""Table tests for hooks/lib/settings.py: every field and rule of SPEC 3.2, 3.3, 3.5, the params of 3.4 and the
message of 3.6."""

import copy
import datetime
import functools
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from jsonschema import Draft202012Validator
from lib import settings

ENV = settings.Environment(cluster_configuration_present=True, default_cri="Containerd", cluster_type="Static")
REPO = "registry.example.com/deckhouse/ee"
MODE_OF = {"direct": "Direct", "proxy": "Proxy", "unmanaged": "Unmanaged"}
IMAGES_REPO_PATTERN = r"^[0-9a-zA-Z\.\-]+(\:[0-9]{1,5})?(\/[0-9a-zA-Z\.\-\_]+)*$"
TTL_PATTERN = r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$"


@functools.cache
def make_cert(name: str = "test-ca") -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def pem(name: str = "test-ca") -> str:
    return make_cert(name).public_bytes(serialization.Encoding.PEM).decode()


@functools.cache
def private_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def section(name: str, **body) -> dict:
    body.setdefault("imagesRepo", REPO)
    return {"mode": MODE_OF[name], name: body}


def errors_of(raw, env=ENV) -> list[str]:
    verdict = settings.evaluate(raw, env)
    assert not verdict.valid
    assert verdict.params is None
    return list(verdict.errors)


def params_of(raw, env=ENV) -> dict:
    verdict = settings.evaluate(raw, env)
    assert verdict.valid, verdict.errors
    assert verdict.errors == ()
    return verdict.params


# ---------------------------------------------------------------------------------------------------------
# Root object and mode


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param([], ["registry: must be a object"], id="root-list"),
        pytest.param("Direct", ["registry: must be a object"], id="root-string"),
        pytest.param(5, ["registry: must be a object"], id="root-int"),
        pytest.param(True, ["registry: must be a object"], id="root-bool"),
        pytest.param({"Mode": "Direct"}, ["registry: unknown field 'Mode'"], id="root-unknown"),
        pytest.param({"local": {}, "mode": "Local"}, ["registry: unknown field 'local'"], id="local-section"),
        pytest.param(
            {"b": 1, "a\n": 2, "mode": "Local"},
            ["registry: unknown field 'a\\n'", "registry: unknown field 'b'"],
            id="unknown-sorted-escaped",
        ),
        pytest.param({"mode": 1}, ["registry.mode: must be a string"], id="mode-type"),
        pytest.param({"mode": None}, ["registry.mode: must be a string"], id="mode-null"),
        pytest.param(
            {"mode": "direct"},
            ["registry.mode: must be one of Unmanaged, Direct, Proxy, Local (got 'direct')"],
            id="mode-enum",
        ),
        pytest.param(
            {"mode": ""}, ["registry.mode: must be one of Unmanaged, Direct, Proxy, Local (got '')"], id="mode-empty"
        ),
        pytest.param(
            {"mode": "Direct\x00\u200b"},
            ["registry.mode: must be one of Unmanaged, Direct, Proxy, Local (got 'Direct\\x00\\u200b')"],
            id="mode-nonprintable",
        ),
        pytest.param(
            {"mode": "x" * 500},
            ["registry.mode: must be one of Unmanaged, Direct, Proxy, Local (got '" + "x" * 97 + "...')"],
            id="mode-truncated",
        ),
    ],
)
def test_root_and_mode_schema(raw, expected):
    assert errors_of(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param({"mode": "Direct"}, ["registry: when mode is 'Direct', 'direct' section must be specified."]),
        pytest.param({"mode": "Proxy"}, ["registry: when mode is 'Proxy', 'proxy' section must be specified."]),
        pytest.param(
            {"direct": {"imagesRepo": REPO}},
            ["registry: when mode is not 'Direct', 'direct' section must not be specified."],
            id="direct-without-mode",
        ),
        pytest.param(
            {"mode": "Unmanaged", "proxy": {"imagesRepo": REPO}},
            ["registry: when mode is not 'Proxy', 'proxy' section must not be specified."],
        ),
        pytest.param(
            {"mode": "Direct", "direct": {"imagesRepo": REPO}, "unmanaged": {"imagesRepo": REPO}},
            ["registry: when mode is not 'Unmanaged', 'unmanaged' section must not be specified."],
        ),
        pytest.param(
            {"mode": "Local", "direct": {"imagesRepo": REPO}, "proxy": {"imagesRepo": REPO}},
            [
                "registry: when mode is not 'Direct', 'direct' section must not be specified.",
                "registry: when mode is not 'Proxy', 'proxy' section must not be specified.",
            ],
        ),
        pytest.param(
            {"mode": "Proxy", "direct": {"imagesRepo": REPO}},
            [
                "registry: when mode is not 'Direct', 'direct' section must not be specified.",
                "registry: when mode is 'Proxy', 'proxy' section must be specified.",
            ],
        ),
        pytest.param(
            {"mode": "Direct", "direct": "registry.example.com/deckhouse/ee"},
            ["registry.direct: must be a object"],
            id="section-wrong-type-still-counts-as-given",
        ),
        pytest.param({"mode": "Proxy", "proxy": None}, ["registry.proxy: must be a object"], id="section-null"),
        pytest.param(
            {"mode": "Proxy", "unmanaged": []},
            [
                "registry.unmanaged: must be a object",
                "registry: when mode is 'Proxy', 'proxy' section must be specified.",
                "registry: when mode is not 'Unmanaged', 'unmanaged' section must not be specified.",
            ],
        ),
        pytest.param(
            {"mode": "Bogus", "direct": {"imagesRepo": REPO}},
            ["registry.mode: must be one of Unmanaged, Direct, Proxy, Local (got 'Bogus')"],
            id="invalid-mode-skips-mode-rules",
        ),
    ],
)
def test_mode_section_rules(raw, expected):
    assert errors_of(raw) == expected


# ---------------------------------------------------------------------------------------------------------
# Fields shared by the three sections


def field_cases():
    """(section body without the `imagesRepo` default applied, expected messages with `{s}`)."""
    long_repo = "a" * 250 + "/" + "b" * 5
    return [
        # imagesRepo
        ({"imagesRepo": None}, ["registry.{s}.imagesRepo: must be a string"]),
        ({"imagesRepo": 5}, ["registry.{s}.imagesRepo: must be a string"]),
        ({"imagesRepo": ""}, ["registry.{s}.imagesRepo: must not be empty"]),
        ({"imagesRepo": long_repo}, ["registry.{s}.imagesRepo: is too long (max 255)"]),
        (
            {"imagesRepo": "https://registry.example.com/deckhouse"},
            [f"registry.{{s}}.imagesRepo: must match pattern '{IMAGES_REPO_PATTERN}' "
             "(got 'https://registry.example.com/deckhouse')"],
        ),
        (
            {"imagesRepo": "registry.example.com/deckhouse/ee\n"},
            [f"registry.{{s}}.imagesRepo: must match pattern '{IMAGES_REPO_PATTERN}' "
             "(got 'registry.example.com/deckhouse/ee\\n')"],
        ),
        (
            {"imagesRepo": "registry.example.com/$(id)"},
            [f"registry.{{s}}.imagesRepo: must match pattern '{IMAGES_REPO_PATTERN}' (got 'registry.example.com/$(id)')"],
        ),
        (
            {"imagesRepo": "-bad.example.com/deckhouse"},
            ["registry.{s}: 'imagesRepo' host must be a valid DNS name or IPv4 address."],
        ),
        (
            {"imagesRepo": "bad-.example.com/deckhouse"},
            ["registry.{s}: 'imagesRepo' host must be a valid DNS name or IPv4 address."],
        ),
        ({"imagesRepo": "a..b/deckhouse"}, ["registry.{s}: 'imagesRepo' host must be a valid DNS name or IPv4 address."]),
        (
            {"imagesRepo": "example.com./deckhouse"},
            ["registry.{s}: 'imagesRepo' host must be a valid DNS name or IPv4 address."],
        ),
        (
            {"imagesRepo": "a" * 64 + ".example.com/deckhouse"},
            ["registry.{s}: 'imagesRepo' host must be a valid DNS name or IPv4 address."],
        ),
        ({"imagesRepo": "300.1.1.1/deckhouse"}, ["registry.{s}: 'imagesRepo' host must be a valid DNS name or IPv4 address."]),
        ({"imagesRepo": "10.0.0/deckhouse"}, ["registry.{s}: 'imagesRepo' host must be a valid DNS name or IPv4 address."]),
        ({"imagesRepo": "registry.example.com:0/deckhouse"}, ["registry.{s}: 'imagesRepo' port must be between 1 and 65535."]),
        (
            {"imagesRepo": "registry.example.com:65536/deckhouse"},
            ["registry.{s}: 'imagesRepo' port must be between 1 and 65535."],
        ),
        (
            {"imagesRepo": "registry.example.com"},
            ["registry.{s}: 'imagesRepo' must include a repository path (for example registry.example.com/deckhouse/ee)."],
        ),
        (
            {"imagesRepo": "registry.example.com:5000"},
            ["registry.{s}: 'imagesRepo' must include a repository path (for example registry.example.com/deckhouse/ee)."],
        ),
        ({"imagesRepo": "registry.example.com/./ee"}, ["registry.{s}: 'imagesRepo' path segments must not be '.' or '..'."]),
        ({"imagesRepo": "registry.example.com/ee/.."}, ["registry.{s}: 'imagesRepo' path segments must not be '.' or '..'."]),
        *[
            (
                {"imagesRepo": f"registry.example.com/{path}"},
                [
                    "registry.{s}: 'imagesRepo' repository path must be lowercase letters, digits and single '.', "
                    "'_' or '-' separators."
                ],
            )
            for path in ("Deckhouse/ee", "deckhouse/EE", "a__b", "a--b", "a-", "-a", "a._b", "deckhouse/.hidden")
        ],
        (
            {"imagesRepo": "registry.example.com:0/Deck/../x"},
            [
                "registry.{s}: 'imagesRepo' port must be between 1 and 65535.",
                "registry.{s}: 'imagesRepo' path segments must not be '.' or '..'.",
                "registry.{s}: 'imagesRepo' repository path must be lowercase letters, digits and single '.', "
                "'_' or '-' separators.",
            ],
        ),
        *[
            (
                {"imagesRepo": repo},
                ["registry.{s}: 'imagesRepo' must not point to the fixed address registry.d8-system.svc:5001."],
            )
            for repo in (
                "registry.d8-system.svc:5001/system/deckhouse",
                "registry.d8-system.svc/system/deckhouse",
                "REGISTRY.D8-System.svc:443/deckhouse",
                "registry.d8-system.svc.cluster.local:5001/system/deckhouse",
            )
        ],
        # scheme
        ({"scheme": "https"}, ["registry.{s}.scheme: must be one of HTTP, HTTPS (got 'https')"]),
        ({"scheme": ""}, ["registry.{s}.scheme: must be one of HTTP, HTTPS (got '')"]),
        ({"scheme": 1}, ["registry.{s}.scheme: must be a string"]),
        # checkMode
        ({"checkMode": "relax"}, ["registry.{s}.checkMode: must be one of Default, Relax (got 'relax')"]),
        ({"checkMode": False}, ["registry.{s}.checkMode: must be a string"]),
        # ca
        ({"ca": 1}, ["registry.{s}.ca: must be a string"]),
        ({"ca": ""}, ["registry.{s}.ca: must not be empty"]),
        ({"ca": "not a certificate"}, ["registry.{s}.ca: must be one or more PEM-encoded X.509 certificates"]),
        ({"ca": "x" * 65537}, ["registry.{s}.ca: is too long (max 65536)"]),
        # username / password / license
        ({"username": 1, "password": "p"}, ["registry.{s}.username: must be a string"]),
        ({"username": "", "password": "p"}, ["registry.{s}.username: must not be empty"]),
        ({"username": "u" * 257, "password": "p"}, ["registry.{s}.username: is too long (max 256)"]),
        ({"username": "user:name", "password": "p"}, ["registry.{s}.username: must not contain ':'"]),
        ({"username": "user\tname", "password": "p"}, ["registry.{s}.username: must not contain control characters"]),
        (
            {"username": "a:\x00", "password": "p"},
            ["registry.{s}.username: must not contain ':'", "registry.{s}.username: must not contain control characters"],
        ),
        ({"username": "u", "password": []}, ["registry.{s}.password: must be a string"]),
        ({"username": "u", "password": ""}, ["registry.{s}.password: must not be empty"]),
        ({"username": "u", "password": "p" * 1025}, ["registry.{s}.password: is too long (max 1024)"]),
        ({"username": "u", "password": "pass\nword"}, ["registry.{s}.password: must not contain control characters"]),
        ({"username": "u", "password": "pass\x7f"}, ["registry.{s}.password: must not contain control characters"]),
        ({"username": "u", "password": "pass\x85"}, ["registry.{s}.password: must not contain control characters"]),
        ({"license": {}}, ["registry.{s}.license: must be a string"]),
        ({"license": ""}, ["registry.{s}.license: must not be empty"]),
        ({"license": "l" * 1025}, ["registry.{s}.license: is too long (max 1024)"]),
        ({"license": "lic\x1bense"}, ["registry.{s}.license: must not contain control characters"]),
        # cross-field rules inside a section
        ({"imagesRepo": ...}, ["registry.{s}: 'imagesRepo' is required."]),
        ({"username": "u"}, ["registry.{s}: 'password' is required when 'username' is provided."]),
        ({"password": "p"}, ["registry.{s}: 'username' is required when 'password' is provided."]),
        (
            {"license": "l", "username": "u", "password": "p"},
            ["registry.{s}: 'license' and 'username'/'password' are mutually exclusive."],
        ),
        (
            {"license": "l", "username": "u"},
            [
                "registry.{s}: 'password' is required when 'username' is provided.",
                "registry.{s}: 'license' and 'username'/'password' are mutually exclusive.",
            ],
        ),
        (
            {"license": "l", "password": "p"},
            [
                "registry.{s}: 'username' is required when 'password' is provided.",
                "registry.{s}: 'license' and 'username'/'password' are mutually exclusive.",
            ],
        ),
        # unknown fields
        ({"insecure": True}, ["registry.{s}: unknown field 'insecure'"]),
        ({"mode": "Direct"}, ["registry.{s}: unknown field 'mode'"]),
    ]


def build_section(name: str, body: dict) -> dict:
    body = dict(body)
    if body.get("imagesRepo", None) is ...:
        del body["imagesRepo"]
    else:
        body.setdefault("imagesRepo", REPO)
    return {"mode": MODE_OF[name], name: body}


@pytest.mark.parametrize("name", ["direct", "proxy", "unmanaged"])
@pytest.mark.parametrize(("body", "expected"), field_cases(), ids=lambda value: str(value)[:60])
def test_section_field_invalid(name, body, expected):
    assert errors_of(build_section(name, body)) == [message.replace("{s}", name) for message in expected]


@pytest.mark.parametrize("name", ["direct", "unmanaged"])
def test_ttl_is_unknown_outside_proxy(name):
    assert errors_of(section(name, ttl="1h")) == [f"registry.{name}: unknown field 'ttl'"]


def test_ca_variants_are_rejected():
    one = pem()
    cases = {
        "private-key": private_key_pem(),
        "cert-and-key": one + private_key_pem(),
        "text-around": "subject=CN=test-ca\n" + one,
        "seventeen": one * 17,
        "broken-body": one.replace("M", "!", 3),
        "non-ascii": one + "\u00e9",
        "begin-only": "-----BEGIN CERTIFICATE-----\nMIIB\n",
        "trusted-certificate": one.replace("BEGIN CERTIFICATE", "BEGIN TRUSTED CERTIFICATE").replace(
            "END CERTIFICATE", "END TRUSTED CERTIFICATE"
        ),
    }
    for label, ca in cases.items():
        assert errors_of(section("direct", ca=ca)) == [
            "registry.direct.ca: must be one or more PEM-encoded X.509 certificates"
        ], label


@pytest.mark.parametrize(
    ("ttl", "expected"),
    [
        ("", ["registry.proxy: 'ttl' should be at least 5 minutes."]),
        ("0h", ["registry.proxy: 'ttl' should be at least 5 minutes."]),
        ("4m59s", ["registry.proxy: 'ttl' should be at least 5 minutes."]),
        ("299s", ["registry.proxy: 'ttl' should be at least 5 minutes."]),
        ("1d", [f"registry.proxy.ttl: must match pattern '{TTL_PATTERN}' (got '1d')"]),
        ("5", [f"registry.proxy.ttl: must match pattern '{TTL_PATTERN}' (got '5')"]),
        ("1m1h", [f"registry.proxy.ttl: must match pattern '{TTL_PATTERN}' (got '1m1h')"]),
        ("5h\n", [f"registry.proxy.ttl: must match pattern '{TTL_PATTERN}' (got '5h\\n')"]),
        ("\u0665h", [f"registry.proxy.ttl: must match pattern '{TTL_PATTERN}' (got '\u0665h')"]),
        (300, ["registry.proxy.ttl: must be a string"]),
    ],
)
def test_ttl_invalid(ttl, expected):
    assert errors_of(section("proxy", ttl=ttl)) == expected


@pytest.mark.parametrize("ttl", ["5m", "300s", "1h", "1h30m", "0h5m0s", "168h", "72h"])
def test_ttl_valid_is_kept(ttl):
    assert params_of(section("proxy", ttl=ttl))["ttl"] == ttl


def test_ttl_seconds():
    assert settings.ttl_seconds("1h2m3s") == 3723
    assert settings.ttl_seconds("") == 0
    assert settings.ttl_seconds("1d") is None


# ---------------------------------------------------------------------------------------------------------
# Environment rules (3.5)


@pytest.mark.parametrize(
    ("raw", "env", "expected"),
    [
        pytest.param(
            section("direct"),
            settings.Environment(False, None, None),
            ["registry.mode: mode 'Direct' requires a cluster fully managed by Deckhouse "
             "(global.clusterConfiguration is absent)."],
            id="direct-unmanaged-cluster",
        ),
        pytest.param(
            {"mode": "Local"},
            settings.Environment(False, None, None),
            ["registry.mode: mode 'Local' requires a cluster fully managed by Deckhouse "
             "(global.clusterConfiguration is absent)."],
            id="local-unmanaged-cluster",
        ),
        pytest.param(
            section("direct"),
            settings.Environment(True, "Docker", "Cloud"),
            ["registry.mode: mode 'Direct' requires containerd or containerd v2 (defaultCRI is 'Docker')."],
            id="direct-docker",
        ),
        pytest.param(
            section("direct"),
            settings.Environment(True, "NotManaged", "Static"),
            ["registry.mode: mode 'Direct' requires containerd or containerd v2 (defaultCRI is 'NotManaged')."],
            id="direct-notmanaged",
        ),
        pytest.param(
            section("proxy"),
            settings.Environment(True, "ContainerdV2", "Cloud"),
            ["registry.mode: mode 'Proxy' is supported only in static clusters (clusterType is 'Cloud')."],
            id="proxy-cloud",
        ),
        pytest.param(
            {"mode": "Local"},
            settings.Environment(True, "Containerd", None),
            ["registry.mode: mode 'Local' is supported only in static clusters (clusterType is '')."],
            id="local-no-cluster-type",
        ),
        pytest.param(
            section("proxy"),
            settings.Environment(True, "Docker", "Cloud"),
            [
                "registry.mode: mode 'Proxy' requires containerd or containerd v2 (defaultCRI is 'Docker').",
                "registry.mode: mode 'Proxy' is supported only in static clusters (clusterType is 'Cloud').",
            ],
            id="proxy-docker-cloud",
        ),
        pytest.param(
            {"mode": "Proxy"},
            settings.Environment(True, "Containerd", "Cloud"),
            [
                "registry: when mode is 'Proxy', 'proxy' section must be specified.",
                "registry.mode: mode 'Proxy' is supported only in static clusters (clusterType is 'Cloud').",
            ],
            id="env-rules-alongside-input-errors",
        ),
        pytest.param(
            section("direct"),
            settings.Environment(True, "Docker\n", "Static"),
            ["registry.mode: mode 'Direct' requires containerd or containerd v2 (defaultCRI is 'Docker\\n')."],
            id="env-values-sanitised",
        ),
    ],
)
def test_environment_rules(raw, env, expected):
    assert errors_of(raw, env) == expected


@pytest.mark.parametrize(
    ("raw", "env"),
    [
        pytest.param(section("direct"), settings.Environment(True, "Containerd", "Cloud"), id="direct-cloud"),
        pytest.param(section("direct"), settings.Environment(True, None, "Cloud"), id="cri-unset-means-containerd"),
        pytest.param(section("proxy"), settings.Environment(True, "ContainerdV2", "Static"), id="proxy-v2"),
        pytest.param(section("unmanaged"), settings.Environment(False, "Docker", None), id="unmanaged-anywhere"),
        pytest.param({}, settings.Environment(False, None, None), id="legacy-anywhere"),
        pytest.param({"mode": "Unmanaged"}, settings.Environment(True, "Docker", "Cloud"), id="legacy-docker"),
    ],
)
def test_environment_rules_pass(raw, env):
    assert settings.evaluate(raw, env).valid


def test_environment_from_globals():
    global_values = {"clusterConfiguration": {"defaultCRI": "ContainerdV2", "clusterType": "Static"}, "x": {}}
    before = copy.deepcopy(global_values)
    env = settings.environment_from_globals(global_values)
    assert env == settings.Environment(True, "ContainerdV2", "Static")
    assert global_values == before
    assert settings.environment_from_globals({"global": global_values}) == env
    assert settings.environment_from_globals({}) == settings.Environment(False, None, None)
    assert settings.environment_from_globals({"clusterConfiguration": None}) == settings.Environment(False, None, None)
    assert settings.environment_from_globals(None) == settings.Environment(False, None, None)
    assert settings.environment_from_globals({"clusterConfiguration": {}}) == settings.Environment(True, None, None)
    partial = {"discovery": {}}
    settings.environment_from_globals(partial)
    assert partial == {"discovery": {}}


# ---------------------------------------------------------------------------------------------------------
# Order of the message classes


def test_message_classes_come_in_order():
    raw = {
        "mode": "Proxy",
        "zzz": 1,
        "direct": {"imagesRepo": "Registry.example.com/Deckhouse"},
        "proxy": {"imagesRepo": "registry.example.com", "ttl": "1m", "scheme": "ftp", "username": "u"},
    }
    env = settings.Environment(True, "Docker", "Cloud")
    assert errors_of(raw, env) == [
        "registry: unknown field 'zzz'",
        "registry.proxy.scheme: must be one of HTTP, HTTPS (got 'ftp')",
        "registry: when mode is not 'Direct', 'direct' section must not be specified.",
        "registry.proxy: 'password' is required when 'username' is provided.",
        "registry.proxy: 'ttl' should be at least 5 minutes.",
        "registry.direct: 'imagesRepo' repository path must be lowercase letters, digits and single '.', '_' or "
        "'-' separators.",
        "registry.proxy: 'imagesRepo' must include a repository path (for example registry.example.com/deckhouse/ee).",
        "registry.mode: mode 'Proxy' requires containerd or containerd v2 (defaultCRI is 'Docker').",
        "registry.mode: mode 'Proxy' is supported only in static clusters (clusterType is 'Cloud').",
    ]


def test_schema_messages_are_sorted_by_path():
    raw = {
        "mode": "Unmanaged",
        "unmanaged": {"imagesRepo": "", "scheme": "x", "checkMode": "y", "ca": "z", "license": "\x00", "q": 1},
    }
    assert errors_of(raw) == [
        "registry.unmanaged: unknown field 'q'",
        "registry.unmanaged.ca: must be one or more PEM-encoded X.509 certificates",
        "registry.unmanaged.checkMode: must be one of Default, Relax (got 'y')",
        "registry.unmanaged.imagesRepo: must not be empty",
        "registry.unmanaged.license: must not contain control characters",
        "registry.unmanaged.scheme: must be one of HTTP, HTTPS (got 'x')",
    ]


def test_producer_rules_skip_values_that_failed_the_schema():
    assert errors_of(section("direct", imagesRepo="Bad_Host/A")) == [
        f"registry.direct.imagesRepo: must match pattern '{IMAGES_REPO_PATTERN}' (got 'Bad_Host/A')"
    ]


def test_images_repo_echo_strips_credentials():
    message = errors_of(section("direct", imagesRepo="https://reader:s3cr3t-token@registry.example.com/x"))[0]
    assert "s3cr3t-token" not in message
    assert message.endswith("(got 'https://***@registry.example.com/x')")


# ---------------------------------------------------------------------------------------------------------
# Normalisation (3.4)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(None, {"mode": "Unmanaged", "legacy": True}, id="absent"),
        pytest.param({}, {"mode": "Unmanaged", "legacy": True}, id="empty"),
        pytest.param({"mode": "Unmanaged"}, {"mode": "Unmanaged", "legacy": True}, id="explicit-legacy"),
        pytest.param({"mode": "Local"}, {"mode": "Local", "legacy": False}, id="local"),
        pytest.param(
            section("direct"),
            {
                "mode": "Direct",
                "legacy": False,
                "scheme": "HTTPS",
                "host": "registry.example.com",
                "path": "deckhouse/ee",
                "checkMode": "Default",
            },
            id="direct-defaults",
        ),
        pytest.param(
            section("direct", imagesRepo="private-registry:5000/deckhouse/ce", scheme="HTTP", checkMode="Relax",
                    username="reader", password="p@ss word"),
            {
                "mode": "Direct",
                "legacy": False,
                "scheme": "HTTP",
                "host": "private-registry:5000",
                "path": "deckhouse/ce",
                "username": "reader",
                "password": "p@ss word",
                "checkMode": "Relax",
            },
            id="direct-full",
        ),
        pytest.param(
            section("proxy", license="LICENSE-KEY"),
            {
                "mode": "Proxy",
                "legacy": False,
                "scheme": "HTTPS",
                "host": "registry.example.com",
                "path": "deckhouse/ee",
                "username": "license-token",
                "password": "LICENSE-KEY",
                "ttl": "168h",
                "checkMode": "Default",
            },
            id="proxy-license-default-ttl",
        ),
        pytest.param(
            section("unmanaged", imagesRepo="10.0.0.1:5000/a/b-c/d_e/f.g"),
            {
                "mode": "Unmanaged",
                "legacy": False,
                "scheme": "HTTPS",
                "host": "10.0.0.1:5000",
                "path": "a/b-c/d_e/f.g",
                "checkMode": "Default",
            },
            id="unmanaged-configurable-ipv4",
        ),
        pytest.param(
            section("direct", imagesRepo="Registry.Example.COM:65535/deckhouse"),
            {
                "mode": "Direct",
                "legacy": False,
                "scheme": "HTTPS",
                "host": "Registry.Example.COM:65535",
                "path": "deckhouse",
                "checkMode": "Default",
            },
            id="host-case-kept",
        ),
    ],
)
def test_params(raw, expected):
    params = params_of(raw)
    assert params == expected
    assert list(params) == [key for key in settings_key_order() if key in params]


def settings_key_order():
    return ["mode", "legacy", "scheme", "host", "path", "ca", "username", "password", "ttl", "checkMode"]


@pytest.mark.parametrize("host", ["registry", "a-b.c", "1.2.3.4", "255.255.255.255", "xn--80ak6aa92e.com", "a" * 63 + ".io"])
def test_host_valid(host):
    assert params_of(section("direct", imagesRepo=f"{host}/deckhouse"))["host"] == host


def test_host_length_limits():
    # Through imagesRepo (max 255) a host cannot exceed 253 characters; the helper still enforces it.
    assert settings.is_valid_host(".".join(["a" * 63] * 3 + ["a" * 61]))
    assert not settings.is_valid_host(".".join(["a" * 63] * 3 + ["a" * 62]))
    assert not settings.is_valid_host("1.2.3.04")
    assert not settings.is_valid_host("\u0661.2.3.4")


def test_ca_is_canonicalised():
    one, two = pem("ca-one"), pem("ca-two")
    messy = "\n\n  " + one.replace("\n", "\r\n") + "\n\t\n" + two + "\n\n"
    params = params_of(section("direct", ca=messy))
    assert params["ca"] == one.strip() + "\n" + two.strip()
    # Canonical output is a fixed point.
    assert params_of(section("direct", ca=params["ca"]))["ca"] == params["ca"]


def test_ca_sixteen_certificates_accepted():
    bundle = pem() * 16
    assert params_of(section("proxy", ca=bundle))["ca"] == "\n".join([pem().strip()] * 16)


def test_params_have_no_none_and_are_fresh():
    raw = section("proxy", username="u", password="p", ca=pem())
    before = copy.deepcopy(raw)
    first = params_of(raw)
    assert raw == before
    assert all(value is not None for value in first.values())
    first["mode"] = "changed"
    assert params_of(raw)["mode"] == "Proxy"


def test_fast_path_matches_full_validation():
    assert settings.evaluate({}, ENV) == settings.evaluate(None, ENV)
    assert settings.evaluate({}, ENV).params == settings.evaluate({"mode": "Unmanaged"}, ENV).params


def test_import_and_default_input_stay_cheap():
    code = (
        "import sys; sys.path.insert(0, 'hooks'); from lib import settings;"
        "v = settings.evaluate(None, settings.Environment(False, None, None)); assert v.valid;"
        "heavy = [m for m in ('jsonschema', 'cryptography', 'yaml') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(settings.SCHEMA_PATH).parents[1])


def test_schema_digest_is_stable_and_cheap():
    digest = settings.schema_digest()
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert settings.schema_digest() == digest
    code = (
        "import sys; sys.path.insert(0, 'hooks'); from lib import settings; print(settings.schema_digest());"
        "assert 'yaml' not in sys.modules and 'jsonschema' not in sys.modules"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=Path(settings.SCHEMA_PATH).parents[1]
    )
    assert result.stdout.strip() == digest


def test_cryptography_loaded_only_for_ca():
    code = (
        "import sys; sys.path.insert(0, 'hooks'); from lib import settings;"
        "env = settings.Environment(True, 'Containerd', 'Static');"
        "v = settings.evaluate({'mode': 'Direct', 'direct': {'imagesRepo': 'r.io/d'}}, env); assert v.valid;"
        "assert 'cryptography' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(settings.SCHEMA_PATH).parents[1])


# ---------------------------------------------------------------------------------------------------------
# Secrets never reach messages


SECRET_USER = "user-7f3a9c"
SECRET_PASSWORD = "pw-Q8zX2mL"
SECRET_LICENSE = "lic-K4nR7vT"


@pytest.mark.parametrize(
    "body",
    [
        {"username": SECRET_USER + ":x", "password": SECRET_PASSWORD + "\x00"},
        {"username": SECRET_USER * 40, "password": SECRET_PASSWORD * 200},
        {"username": SECRET_USER},
        {"password": SECRET_PASSWORD},
        {"license": SECRET_LICENSE + "\n", "username": SECRET_USER, "password": SECRET_PASSWORD},
        {"license": SECRET_LICENSE * 200},
        {"license": SECRET_LICENSE, "ca": "-----BEGIN CERTIFICATE-----\n" + SECRET_PASSWORD + "\n"},
        {"ca": private_key_pem()},
        {"ca": SECRET_PASSWORD * 7000},
        {"imagesRepo": f"{SECRET_USER}:{SECRET_PASSWORD}@registry.example.com/x", "license": SECRET_LICENSE},
        {"imagesRepo": f"https://{SECRET_USER}:{SECRET_PASSWORD}@registry.example.com/x"},
        {"username": 5, "password": [SECRET_PASSWORD], "license": {"k": SECRET_LICENSE}},
        {SECRET_USER: 1, "password": SECRET_PASSWORD},
    ],
)
@pytest.mark.parametrize("name", ["direct", "proxy", "unmanaged"])
def test_secrets_never_in_messages(name, body):
    env = settings.Environment(True, "Docker", "Cloud")
    errors = errors_of(build_section(name, body), env)
    text = "\n".join(errors) + settings.invalid_input_message(1, errors, "Direct")
    key_echo = SECRET_USER in body  # a key is a name, not a value: it may be echoed
    for secret in (SECRET_USER, SECRET_PASSWORD, SECRET_LICENSE, "PRIVATE KEY", "BEGIN"):
        if secret == SECRET_USER and key_echo:
            continue
        assert secret not in text


# ---------------------------------------------------------------------------------------------------------
# 3.6 message, labels


def test_invalid_input_message_exact():
    message = settings.invalid_input_message(
        7, ["registry.mode: must be a string", "registry: unknown field 'x'"], settings.mode_label("Direct", False)
    )
    assert message == (
        "Invalid registry settings in ModuleConfig 'deckhouse' (generation 7):\n"
        "- registry.mode: must be a string\n"
        "- registry: unknown field 'x'\n"
        "Keeping the last valid settings (mode Direct)."
    )


def test_invalid_input_message_ten_lines_without_tail():
    errors = [f"e{i}" for i in range(10)]
    lines = settings.invalid_input_message(1, errors, "Proxy").split("\n")
    assert lines[1:11] == [f"- e{i}" for i in range(10)]
    assert lines[11] == "Keeping the last valid settings (mode Proxy)."
    assert len(lines) == 12


@pytest.mark.parametrize("count", [11, 25])
def test_invalid_input_message_caps_at_ten(count):
    errors = tuple(f"e{i}" for i in range(count))
    message = settings.invalid_input_message(3, errors, settings.mode_label("Unmanaged", True))
    assert message == "\n".join(
        ["Invalid registry settings in ModuleConfig 'deckhouse' (generation 3):"]
        + [f"- e{i}" for i in range(10)]
        + [f"\t...and {count - 10} more", "Keeping the last valid settings (mode Unmanaged (non-configurable))."]
    )


def test_invalid_input_message_without_generation():
    assert settings.invalid_input_message(None, ["e"], "Local").startswith(
        "Invalid registry settings in ModuleConfig 'deckhouse' (generation unknown):\n"
    )


@pytest.mark.parametrize(
    ("mode", "legacy", "label"),
    [
        ("Unmanaged", True, "Unmanaged (non-configurable)"),
        ("Unmanaged", False, "Unmanaged"),
        ("Direct", False, "Direct"),
        ("Proxy", False, "Proxy"),
        ("Local", False, "Local"),
    ],
)
def test_mode_label(mode, legacy, label):
    assert settings.mode_label(mode, legacy) == label


def test_constants():
    assert settings.FIXED_HOST == "registry.d8-system.svc:5001"
    assert settings.MODES == ("Unmanaged", "Direct", "Proxy", "Local")


# ---------------------------------------------------------------------------------------------------------
# The shipped schema files


def walk_objects(schema, path=("registry",)):
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from walk_objects(child, (*path, name))


@pytest.fixture(scope="module")
def schema():
    return settings.load_schema()


def test_schema_is_valid_2020_12(schema):
    Draft202012Validator.check_schema(schema)
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"mode", "direct", "proxy", "unmanaged"}


def test_schema_objects_are_closed_and_documented(schema):
    for path, node in walk_objects(schema):
        assert node.get("description", "").strip(), path
        if node.get("type") == "object":
            assert node.get("additionalProperties") is False, path
        for value in node.get("enum", []):
            assert isinstance(value, str), path


def test_schema_sections(schema):
    props = schema["properties"]
    shared = {"imagesRepo", "scheme", "ca", "username", "password", "license", "checkMode"}
    assert set(props["direct"]["properties"]) == shared
    assert set(props["unmanaged"]["properties"]) == shared
    assert set(props["proxy"]["properties"]) == shared | {"ttl"}
    for name in ("direct", "proxy", "unmanaged"):
        fields = props[name]["properties"]
        assert props[name]["required"] == ["imagesRepo"]
        assert fields["imagesRepo"]["pattern"] == IMAGES_REPO_PATTERN
        assert fields["imagesRepo"]["x-doc-default"] == "registry.deckhouse.io/deckhouse/ce"
        assert fields["username"]["pattern"] == settings.USERNAME_PATTERN
        assert fields["password"]["pattern"] == settings.NO_CONTROL_PATTERN
        assert fields["license"]["pattern"] == settings.NO_CONTROL_PATTERN
        assert fields["scheme"]["default"] == "HTTPS"
        assert fields["checkMode"]["default"] == "Default"
    assert props["proxy"]["properties"]["ttl"]["pattern"] == TTL_PATTERN == settings.TTL_PATTERN
    assert props["mode"]["enum"] == list(settings.MODES)


def test_schema_cel_rules_carry_the_exact_messages(schema):
    expected_root = {
        settings.MSG_SECTION_REQUIRED.format(mode="Direct", s="direct"),
        settings.MSG_SECTION_FORBIDDEN.format(mode="Direct", s="direct"),
        settings.MSG_SECTION_REQUIRED.format(mode="Proxy", s="proxy"),
        settings.MSG_SECTION_FORBIDDEN.format(mode="Proxy", s="proxy"),
        settings.MSG_SECTION_FORBIDDEN.format(mode="Unmanaged", s="unmanaged"),
    }
    assert {rule["message"] for rule in schema["x-deckhouse-validations"]} == expected_root
    for name in ("direct", "proxy", "unmanaged"):
        templates = [
            settings.MSG_IMAGES_REPO_REQUIRED,
            settings.MSG_PASSWORD_REQUIRED,
            settings.MSG_USERNAME_REQUIRED,
            settings.MSG_LICENSE_EXCLUSIVE,
        ]
        expected = {template.format(s=name) for template in templates}
        if name == "proxy":
            expected.add(settings.MSG_TTL_TOO_SHORT)
        rules = schema["properties"][name]["x-deckhouse-validations"]
        assert {rule["message"] for rule in rules} == expected
        assert all(set(rule) == {"expression", "message"} and rule["expression"] for rule in rules)


def test_doc_ru_twin_mirrors_the_schema(schema):
    with (Path(settings.SCHEMA_PATH).parent / "doc-ru-registry-settings.yaml").open(encoding="utf-8") as handle:
        twin = yaml.safe_load(handle)

    def shape(node):
        out = {"description": bool(node.get("description", "").strip())}
        if "properties" in node:
            out["properties"] = {name: shape(child) for name, child in node["properties"].items()}
        return out

    def keys_only_description(node, path="root"):
        assert set(node) <= {"description", "properties"}, path
        for name, child in node.get("properties", {}).items():
            keys_only_description(child, f"{path}.{name}")

    assert shape(twin) == shape(schema)
    keys_only_description(twin)


CEL_CASES = [
    {},
    {"mode": "Direct"},
    {"mode": "Proxy"},
    {"mode": "Local", "direct": {"imagesRepo": REPO}, "proxy": {"imagesRepo": REPO}, "unmanaged": {"imagesRepo": REPO}},
    {"direct": {}},
    {"mode": "Direct", "direct": {"username": "u", "license": "l"}},
    {"mode": "Proxy", "proxy": {"imagesRepo": REPO, "password": "p"}},
    {"mode": "Unmanaged", "unmanaged": {"imagesRepo": REPO, "license": "l", "username": "u", "password": "p"}},
    *[{"mode": "Proxy", "proxy": {"imagesRepo": REPO, "ttl": ttl}} for ttl in ("", "4m59s", "5m", "300s", "1h", "0h0m0s")],
]


@pytest.mark.parametrize("raw", CEL_CASES)
def test_cel_rules_agree_with_python(raw, schema):
    """The admission policy reuses these CEL rules; they must refuse exactly what the hook refuses."""
    celpy = pytest.importorskip("celpy")
    env = celpy.Environment()

    def failing(rules, value):
        found = set()
        for rule in rules:
            program = env.program(env.compile(rule["expression"]))
            if not program.evaluate({"self": celpy.json_to_cel(value)}):
                found.add(rule["message"])
        return found

    cel = failing(schema["x-deckhouse-validations"], raw)
    every_message = {rule["message"] for rule in schema["x-deckhouse-validations"]}
    for name in ("direct", "proxy", "unmanaged"):
        rules = schema["properties"][name]["x-deckhouse-validations"]
        every_message |= {rule["message"] for rule in rules}
        if isinstance(raw.get(name), dict):
            cel |= failing(rules, raw[name])
    python = {message for message in settings.evaluate(raw, ENV).errors if message in every_message}
    assert cel == python

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
"""Property tests for hooks/lib/settings.py (SPEC 10.3, target `settings.validate`).

Oracle: `evaluate` never raises, is deterministic, leaves its input alone, and either returns params that
are safe for every producer or at least one single-line message that carries no secret value.
"""

import copy
import datetime
import functools
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lib import settings as registry_settings

# Every generated secret carries this marker, so "no secret in messages" is a plain substring check.
MARK = "Zq7SeCrEtMaRk"
PARAM_KEYS = ("mode", "legacy", "scheme", "host", "path", "ca", "username", "password", "ttl", "checkMode")
HOST_RE = re.compile(r"(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)*", re.I | re.A)
IPV4_RE = re.compile(r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}", re.A)
SEGMENT_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*", re.A)
TTL_RE = re.compile(r"(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?", re.A)
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SINK_UNSAFE = set(";{}\"'`$\\ \t\r\n/@")

ENVIRONMENTS = [
    registry_settings.Environment(True, "Containerd", "Static"),
    registry_settings.Environment(True, "ContainerdV2", "Static"),
    registry_settings.Environment(True, None, "Cloud"),
    registry_settings.Environment(True, "Docker", None),
    registry_settings.Environment(False, None, None),
]

HOSTILE = [
    "$(id)",
    "`id`",
    "; rm -rf /",
    "../",
    "../../etc/passwd",
    "\x00",
    "a\x00b",
    "\n",
    "line1\nline2",
    "\r\n",
    "\u200b",
    "\u202e",
    "\ud800",
    "\U0001f600",
    "\u0434\u043e\u043a\u0435\u0440",
    "{{ .Values }}",
    "%s%n",
    "' OR '1'='1",
    '"quoted"',
    "\\",
    "registry.d8-system.svc:5001/system/deckhouse",
    "https://user:pass@registry.example.com/x",
    "",
    " ",
    "x" * 5000,
    "-----BEGIN CERTIFICATE-----\n",
]


@functools.cache
def cert_pem(name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


# ---------------------------------------------------------------------------------------------------------
# Strategies

hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8", max_codepoint=0x1FF), max_size=20),
    st.text(min_size=1, max_size=8).map(lambda part: part * 400),
    st.lists(st.sampled_from(HOSTILE), min_size=1, max_size=4).map("".join),
)

json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)

secret_text = st.one_of(hostile_text, st.text(min_size=1, max_size=20)).map(lambda body: MARK + body)

label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
dns_name = st.lists(label, min_size=1, max_size=3).map(".".join).filter(
    lambda name: not all(part.isdigit() for part in name.split("."))
)
host = st.one_of(dns_name, st.ip_addresses(v=4).map(str))
host_port = st.tuples(host, st.none() | st.integers(1, 65535)).map(
    lambda pair: pair[0] if pair[1] is None else f"{pair[0]}:{pair[1]}"
)
segment = st.from_regex(r"[a-z0-9]{1,6}(?:[._-][a-z0-9]{1,4}){0,2}", fullmatch=True)
images_repo = st.tuples(host_port, st.lists(segment, min_size=1, max_size=3)).map(
    lambda pair: pair[0] + "/" + "/".join(pair[1])
).filter(lambda repo: not repo.lower().startswith("registry.d8-system.svc"))
ttl = st.integers(300, 10**6).map(
    lambda seconds: st.sampled_from(
        [f"{seconds}s", f"{seconds // 3600}h{seconds % 3600 // 60}m{seconds % 60}s", f"{seconds // 60 + 5}m"]
    )
).flatmap(lambda inner: inner)
username = secret_text.filter(lambda text: ":" not in text and not CONTROL_RE.search(text) and len(text) <= 256)
password = secret_text.filter(lambda text: not CONTROL_RE.search(text) and len(text) <= 1024)
ca_bundle = st.lists(st.sampled_from(["ca-a", "ca-b", "ca-c"]), min_size=1, max_size=3).map(
    lambda names: "\n".join(cert_pem(name) for name in names)
)


@st.composite
def valid_settings(draw):
    mode = draw(st.sampled_from(["Legacy", "Unmanaged", "Direct", "Proxy", "Local"]))
    if mode == "Legacy":
        return draw(st.sampled_from([{}, {"mode": "Unmanaged"}]))
    if mode == "Local":
        return {"mode": "Local"}
    body = {"imagesRepo": draw(images_repo)}
    optional = {
        "scheme": st.sampled_from(["HTTP", "HTTPS"]),
        "checkMode": st.sampled_from(["Default", "Relax"]),
        "ca": ca_bundle,
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            body[key] = draw(strategy)
    credentials = draw(st.sampled_from(["none", "user", "license"]))
    if credentials == "user":
        body["username"] = draw(username)
        body["password"] = draw(password)
    elif credentials == "license":
        body["license"] = draw(password)
    if mode == "Proxy" and draw(st.booleans()):
        body["ttl"] = draw(ttl)
    name = mode.lower()
    raw = {name: body}
    if mode != "Unmanaged" or draw(st.booleans()):
        raw["mode"] = mode
    return raw


FIELDS = ["imagesRepo", "scheme", "ca", "username", "password", "license", "checkMode", "ttl", "mode", "junk"]


@st.composite
def mutated_settings(draw):
    raw = copy.deepcopy(draw(valid_settings()))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["set", "secret", "delete", "mode", "section", "unknown"]))
        sections = [key for key in raw if key in ("direct", "proxy", "unmanaged") and isinstance(raw[key], dict)]
        target = raw[draw(st.sampled_from(sections))] if sections and draw(st.booleans()) else raw
        if kind == "set":
            target[draw(st.sampled_from(FIELDS))] = draw(st.one_of(hostile_text, json_like))
        elif kind == "secret":
            target[draw(st.sampled_from(["username", "password", "license", "ca"]))] = draw(secret_text)
        elif kind == "delete" and target:
            del target[draw(st.sampled_from(sorted(target)))]
        elif kind == "mode":
            raw["mode"] = draw(st.sampled_from([*registry_settings.MODES, "direct", "", "Local "]))
        elif kind == "section":
            raw[draw(st.sampled_from(["direct", "proxy", "unmanaged", "local"]))] = draw(
                st.one_of(json_like, valid_settings().map(lambda value: next(iter(value.values()), {})))
            )
        else:
            target[draw(hostile_text)] = draw(json_like)
    return raw


@st.composite
def shaped_garbage(draw):
    """Dicts with the right keys and garbage values, with marked secrets sprinkled in."""
    raw = {}
    if draw(st.booleans()):
        raw["mode"] = draw(st.one_of(st.sampled_from(registry_settings.MODES), hostile_text, json_like))
    for name in draw(st.lists(st.sampled_from(["direct", "proxy", "unmanaged"]), unique=True)):
        body = draw(st.dictionaries(st.sampled_from(FIELDS), st.one_of(hostile_text, json_like), max_size=6))
        for key in draw(st.lists(st.sampled_from(["username", "password", "license", "ca"]), unique=True)):
            body[key] = draw(secret_text)
        raw[name] = body
    return raw


# ---------------------------------------------------------------------------------------------------------
# Oracle


def check(raw, env):
    before = copy.deepcopy(raw)
    first = registry_settings.evaluate(raw, env)
    second = registry_settings.evaluate(copy.deepcopy(raw), env)
    assert first == second
    assert raw == before
    assert isinstance(first.errors, tuple)
    if first.valid:
        assert first.params is not None
        check_params(first.params)
    else:
        assert first.params is None
        assert len(first.errors) >= 1
        for message in first.errors:
            assert isinstance(message, str) and message.startswith("registry")
            assert "\n" not in message and "\r" not in message
            message.encode("utf-8")  # lone surrogates would break the status update
            assert MARK not in message
        assert MARK not in registry_settings.invalid_input_message(1, first.errors, "Direct")
    return first


def check_params(params):
    assert set(params) <= set(PARAM_KEYS)
    assert all(isinstance(value, str | bool) for value in params.values())
    assert all(isinstance(params[key], bool) for key in params if key == "legacy")
    assert params["mode"] in registry_settings.MODES
    if params["mode"] == "Local" or params["legacy"]:
        assert params == {"mode": params["mode"], "legacy": params["mode"] == "Unmanaged"}
        return
    assert params["legacy"] is False
    assert params["mode"] in ("Direct", "Proxy", "Unmanaged")
    assert params["scheme"] in ("HTTP", "HTTPS")
    assert params["checkMode"] in ("Default", "Relax")

    hostname, _, port = params["host"].partition(":")
    assert HOST_RE.fullmatch(hostname) or IPV4_RE.fullmatch(hostname), params["host"]
    assert len(hostname) <= 253
    if port:
        assert port.isascii() and port.isdigit() and 1 <= int(port) <= 65535
    assert hostname.lower() != "registry.d8-system.svc"
    assert params["host"] != registry_settings.FIXED_HOST
    assert not (set(params["host"]) & SINK_UNSAFE)

    segments = params["path"].split("/")
    assert segments and all(SEGMENT_RE.fullmatch(part) for part in segments), params["path"]
    assert not (set(params["path"]) & (SINK_UNSAFE - {"/"}))

    assert ("username" in params) == ("password" in params)
    if "username" in params:
        assert ":" not in params["username"] and not CONTROL_RE.search(params["username"])
        assert not CONTROL_RE.search(params["password"])
    if params["mode"] == "Proxy":
        match = TTL_RE.fullmatch(params["ttl"])
        assert match
        hours, minutes, seconds = (int(part or 0) for part in match.groups())
        assert hours * 3600 + minutes * 60 + seconds >= 300
    else:
        assert "ttl" not in params
    if "ca" in params:
        certificates = x509.load_pem_x509_certificates(params["ca"].encode("ascii"))
        assert 1 <= len(certificates) <= 16
        assert params["ca"] == "\n".join(
            cert.public_bytes(serialization.Encoding.PEM).decode().strip() for cert in certificates
        )


SLOW_OK = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


# ---------------------------------------------------------------------------------------------------------
# Properties


@SLOW_OK
@given(raw=json_like, env=st.sampled_from(ENVIRONMENTS))
def test_arbitrary_values(raw, env):
    check(raw, env)


@SLOW_OK
@given(raw=st.dictionaries(st.one_of(st.sampled_from(["mode", "direct", "proxy", "unmanaged"]), hostile_text), json_like))
def test_arbitrary_dicts(raw):
    check(raw, ENVIRONMENTS[0])


@SLOW_OK
@given(raw=valid_settings())
def test_valid_settings_are_accepted(raw):
    verdict = check(raw, ENVIRONMENTS[0])
    assert verdict.valid, verdict.errors
    body = next((value for value in raw.values() if isinstance(value, dict)), None)
    if body is not None:
        host, _, path = body["imagesRepo"].partition("/")
        assert (verdict.params["host"], verdict.params["path"]) == (host, path)
        if "license" in body:
            assert verdict.params["username"] == "license-token"
            assert verdict.params["password"] == body["license"]


@SLOW_OK
@given(raw=mutated_settings(), env=st.sampled_from(ENVIRONMENTS))
def test_mutated_settings(raw, env):
    check(raw, env)


@SLOW_OK
@given(raw=shaped_garbage(), env=st.sampled_from(ENVIRONMENTS))
def test_secrets_never_leak(raw, env):
    check(raw, env)


@SLOW_OK
@given(repo=hostile_text, name=st.sampled_from(["direct", "proxy", "unmanaged"]))
def test_hostile_images_repo(repo, name):
    raw = {"mode": {"direct": "Direct", "proxy": "Proxy", "unmanaged": "Unmanaged"}[name], name: {"imagesRepo": repo}}
    check(raw, ENVIRONMENTS[0])


@SLOW_OK
@given(errors=st.lists(hostile_text, max_size=30), generation=st.none() | st.integers(0, 10**9))
def test_invalid_input_message_shape(errors, generation):
    message = registry_settings.invalid_input_message(generation, errors, "Proxy")
    lines = message.split("\n")
    assert lines[0].startswith("Invalid registry settings in ModuleConfig 'deckhouse' (generation ")
    assert lines[-1] == "Keeping the last valid settings (mode Proxy)."
    assert lines[1 : 1 + min(len(errors), 10)] == [f"- {error}" for error in errors[:10]] or any(
        "\n" in error or "\r" in error for error in errors
    )
    if len(errors) > 10:
        assert message.endswith(f"\n\t...and {len(errors) - 10} more\nKeeping the last valid settings (mode Proxy).")
    elif not any("...and" in error for error in errors):
        assert "\t...and" not in message

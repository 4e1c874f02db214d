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
"""Validation and normalisation of `spec.settings.registry` of the `deckhouse` ModuleConfig.

`evaluate` turns whatever the user wrote into either canonical params (SPEC 3.4) or the exact list of
error messages (SPEC 3.3, 3.5). It is pure: the only I/O is reading the shipped schema once per process.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from .patterns import lazy
from .record import Record, fields

FIXED_HOST = "registry.d8-system.svc:5001"
FIXED_HOSTNAME = "registry.d8-system.svc"
MODES = ("Unmanaged", "Direct", "Proxy", "Local")
MANAGED_MODES = ("Direct", "Proxy", "Local")
STATIC_ONLY_MODES = ("Proxy", "Local")
SECTIONS = ("direct", "proxy", "unmanaged")
CONTAINERD_CRIS = ("Containerd", "ContainerdV2")
# ClusterConfiguration documents this default for `defaultCRI`; globals may carry the field unset.
DEFAULT_CRI = "Containerd"

DEFAULT_SCHEME = "HTTPS"
DEFAULT_CHECK_MODE = "Default"
DEFAULT_TTL = "168h"
MIN_TTL_SECONDS = 5 * 60
LICENSE_USERNAME = "license-token"
LEGACY_LABEL = "Unmanaged (non-configurable)"

CA_MAX_BYTES = 64 * 1024
CA_MAX_CERTS = 16
ECHO_LIMIT = 100
MAX_ERROR_LINES = 10

# Plain os.path, not pathlib: every hook run imports this module, and pathlib alone costs a few ms (issue #15).
_MODULE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
SCHEMA_PATH = os.path.join(_MODULE_DIR, "openapi", "registry-settings.yaml")

# Schema patterns that stand for a dedicated message instead of "must match pattern".
USERNAME_PATTERN = r"^[^:\x00-\x1F\x7F-\x9F]*$"
NO_CONTROL_PATTERN = r"^[^\x00-\x1F\x7F-\x9F]*$"
TTL_PATTERN = r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$"

# Values of these fields may be quoted back to the user; everything else (secrets above all) never is.
ECHOED_FIELDS = frozenset({"mode", "scheme", "checkMode", "ttl", "imagesRepo"})

_CONTROL_RE = lazy(r"[\x00-\x1F\x7F-\x9F]")
_TTL_RE = lazy(r"(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?", re.ASCII)
_DNS_LABEL_RE = lazy(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?", re.ASCII | re.IGNORECASE)
_SEGMENT_RE = lazy(r"[a-z0-9]+(?:[._-][a-z0-9]+)*", re.ASCII)
_PORT_RE = lazy(r"[0-9]+", re.ASCII)
_PEM_CERT_RE = lazy(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.DOTALL)
_URL_SCHEME_RE = lazy(r"[A-Za-z][A-Za-z0-9+.-]*://")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# Cross-field rules (SPEC 3.3).
MSG_IMAGES_REPO_REQUIRED = "registry.{s}: 'imagesRepo' is required."
MSG_PASSWORD_REQUIRED = "registry.{s}: 'password' is required when 'username' is provided."
MSG_USERNAME_REQUIRED = "registry.{s}: 'username' is required when 'password' is provided."
MSG_LICENSE_EXCLUSIVE = "registry.{s}: 'license' and 'username'/'password' are mutually exclusive."
MSG_TTL_TOO_SHORT = "registry.proxy: 'ttl' should be at least 5 minutes."
MSG_SECTION_REQUIRED = "registry: when mode is '{mode}', '{s}' section must be specified."
MSG_SECTION_FORBIDDEN = "registry: when mode is not '{mode}', '{s}' section must not be specified."

# Producer rules on imagesRepo (SPEC 3.3).
MSG_REPO_HOST = "registry.{s}: 'imagesRepo' host must be a valid DNS name or IPv4 address."
MSG_REPO_PORT = "registry.{s}: 'imagesRepo' port must be between 1 and 65535."
MSG_REPO_NO_PATH = (
    "registry.{s}: 'imagesRepo' must include a repository path (for example registry.example.com/deckhouse/ee)."
)
MSG_REPO_DOT_SEGMENT = "registry.{s}: 'imagesRepo' path segments must not be '.' or '..'."
MSG_REPO_SEGMENT = (
    "registry.{s}: 'imagesRepo' repository path must be lowercase letters, digits and single '.', '_' or '-' "
    "separators."
)
MSG_REPO_FIXED = "registry.{s}: 'imagesRepo' must not point to the fixed address registry.d8-system.svc:5001."

# Environment rules (SPEC 3.5).
MSG_ENV_NOT_MANAGED = (
    "registry.mode: mode '{mode}' requires a cluster fully managed by Deckhouse "
    "(global.clusterConfiguration is absent)."
)
MSG_ENV_CRI = "registry.mode: mode '{mode}' requires containerd or containerd v2 (defaultCRI is '{cri}')."
MSG_ENV_STATIC = "registry.mode: mode '{mode}' is supported only in static clusters (clusterType is '{type}')."

# Schema-level forms (SPEC 3.3); `{p}` is the dotted path starting at `registry`.
MSG_UNKNOWN_FIELD = "{p}: unknown field '{key}'"
MSG_TYPE = "{p}: must be a {type}"
MSG_ENUM = "{p}: must be one of {allowed}"
MSG_PATTERN = "{p}: must match pattern '{re}'"
MSG_EMPTY = "{p}: must not be empty"
MSG_TOO_LONG = "{p}: is too long (max {n})"
MSG_CA = "{p}: must be one or more PEM-encoded X.509 certificates"
MSG_CONTROL = "{p}: must not contain control characters"
MSG_COLON = "{p}: must not contain ':'"
MSG_INVALID = "{p}: is invalid"
ECHO_SUFFIX = " (got '{v}')"

HEADER = "Invalid registry settings in ModuleConfig 'deckhouse' (generation {g}):"
MORE_LINE = "\t...and {k} more"
FOOTER = "Keeping the last valid settings (mode {label})."

_Path = tuple[str, ...]


class Environment(Record):
    __slots__ = ()
    _fields = ("cluster_configuration_present", "default_cri", "cluster_type")
    cluster_configuration_present, default_cri, cluster_type = fields(3)

    def __new__(cls, cluster_configuration_present: bool,
                default_cri: str | None,    # global.clusterConfiguration.defaultCRI
                cluster_type: str | None):  # global.clusterConfiguration.clusterType
        return tuple.__new__(cls, (cluster_configuration_present, default_cri, cluster_type))


class Verdict(Record):
    __slots__ = ()
    _fields = ("params", "errors")
    params, errors = fields(2)

    def __new__(cls, params: dict | None, errors: tuple[str, ...]):
        return tuple.__new__(cls, (params, errors))

    @property
    def valid(self) -> bool:
        return not self.errors


def environment_from_globals(global_values: dict) -> Environment:
    """Read the environment from the `global` values subtree without creating any key.

    A whole values tree (with a top-level `global` key) is accepted too: a real `global` subtree never
    has a key named `global`, so the two cannot be confused.
    """
    root = global_values if isinstance(global_values, dict) else {}
    if "clusterConfiguration" not in root and isinstance(root.get("global"), dict):
        root = root["global"]
    cluster_configuration = root.get("clusterConfiguration")
    if not isinstance(cluster_configuration, dict):
        return Environment(cluster_configuration_present=False, default_cri=None, cluster_type=None)
    return Environment(
        cluster_configuration_present=True,
        default_cri=_optional_text(cluster_configuration.get("defaultCRI")),
        cluster_type=_optional_text(cluster_configuration.get("clusterType")),
    )


def mode_label(mode: str, legacy: bool) -> str:
    return LEGACY_LABEL if legacy else mode


def invalid_input_message(generation: int | None, errors: Sequence[str], kept_mode_label: str) -> str:
    shown = list(errors[:MAX_ERROR_LINES])
    lines = [HEADER.format(g="unknown" if generation is None else generation)]
    lines.extend(f"- {error}" for error in shown)
    if len(errors) > len(shown):
        lines.append(MORE_LINE.format(k=len(errors) - len(shown)))
    lines.append(FOOTER.format(label=kept_mode_label))
    return "\n".join(lines)


def evaluate(raw: Any, env: Environment) -> Verdict:
    """Validate the `registry` section and, when it is valid, return its canonical params.

    Messages come in four groups, in this order: schema (sorted by path), cross-field, imagesRepo producer
    rules, environment. A later group skips only what an earlier one already made meaningless (the rules
    tied to an invalid `mode`, the ttl minimum of a malformed ttl, producer rules on an imagesRepo that failed
    the schema), so every independent problem is still reported in one pass.
    """
    settings = {} if raw is None else raw
    if isinstance(settings, dict) and not settings:
        # The install-time default: answered without loading jsonschema, which dominates hook start-up.
        return Verdict(params={"mode": "Unmanaged", "legacy": True}, errors=())

    schema_errors, failed, canonical_ca = _schema_pass(settings)
    if not isinstance(settings, dict):
        return Verdict(params=None, errors=tuple(message for _, message in schema_errors))

    errors = [message for _, message in schema_errors]
    errors += _cross_field_errors(settings, failed)
    errors += _producer_errors(settings, failed)
    errors += _environment_errors(settings, env)
    if errors:
        return Verdict(params=None, errors=tuple(errors))
    return Verdict(params=_normalise(settings, canonical_ca), errors=())


# The name the fuzzing section of the spec uses for the same entry point.
validate = evaluate


def ttl_seconds(ttl: str) -> int | None:
    """Seconds in a ttl string, or None when it does not follow the `<h>h<m>m<s>s` form."""
    match = _TTL_RE.fullmatch(ttl)
    if match is None:
        return None
    hours, minutes, seconds = (int(part) if part else 0 for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def split_images_repo(images_repo: str) -> tuple[str, str]:
    """`host[:port]` and the repository path (without the leading `/`)."""
    host, _, path = images_repo.partition("/")
    return host, path


def is_valid_host(host: str) -> bool:
    """DNS name (RFC 1123 labels) or dotted-quad IPv4; no port."""
    if not host.isascii():
        return False
    labels = host.split(".")
    if all(label.isdigit() for label in labels):
        # Numeric-only names are meant as addresses; a malformed one (e.g. 300.1.1.1) is a typo, not a DNS name.
        import ipaddress

        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return False
        return True
    if len(host) > 253:
        return False
    return all(len(label) <= 63 and _DNS_LABEL_RE.fullmatch(label) for label in labels)


def is_valid_path_segment(segment: str) -> bool:
    return _SEGMENT_RE.fullmatch(segment) is not None


# ---------------------------------------------------------------------------------------------------------
# Schema pass


@lru_cache(maxsize=1)
def schema_digest() -> str:
    """Fingerprint of everything a verdict depends on besides its inputs: the shipped schema and these rules.

    Callers memoise verdicts under it; hashing this file as well means a changed rule or message invalidates
    remembered verdicts even when the schema stays the same. Plain bytes, so neither yaml nor jsonschema is
    imported.
    """
    from .hashing import sha256

    digest = sha256()
    for source in (SCHEMA_PATH, os.path.realpath(__file__)):
        with open(source, "rb") as handle:
            content = handle.read()
        digest.update(len(content).to_bytes(8, "big"))
        digest.update(content)
    return digest.hexdigest()


@lru_cache(maxsize=1)
def load_schema() -> dict:
    import yaml

    # libyaml's safe loader when PyYAML has it: the same document (a unit test compares the two on this
    # file) in a fraction of the pure-Python loader's time.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(SCHEMA_PATH, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=loader)  # noqa: S506 - a safe loader either way


@lru_cache(maxsize=1)
def _validator():
    from jsonschema import Draft202012Validator, ValidationError, validators

    # The stock keywords put repr(instance) into their error text. That text is never shown, but building it
    # costs time on huge values, fails on very deep ones, and would carry secrets into any traceback or log.
    def type_(validator, expected, instance, schema):
        names = [expected] if isinstance(expected, str) else expected
        if not any(validator.is_type(instance, name) for name in names):
            yield ValidationError("has the wrong type")

    def enum(validator, allowed, instance, schema):
        # Every enum of this schema lists strings only (a unit test keeps it so).
        if not (isinstance(instance, str) and instance in allowed):
            yield ValidationError("is not one of the allowed values")

    def pattern(validator, regex, instance, schema):
        if validator.is_type(instance, "string") and _ecma_regex(regex).search(instance) is None:
            yield ValidationError("does not match the pattern")

    strict = validators.extend(Draft202012Validator, {"type": type_, "enum": enum, "pattern": pattern})
    return strict(load_schema())


@lru_cache(maxsize=32)
def _ecma_regex(regex: str) -> re.Pattern[str]:
    # The API server and deckhouse-controller evaluate patterns with Go's RE2 (ECMA-like): `$` is the end of
    # input and `\d` is ASCII-only. Python's `$` also matches before a final newline and `\d` matches any
    # Unicode digit, which would let "5h\n" or Arabic-Indic digits through.
    if regex.endswith("$") and not regex.endswith("\\$"):
        regex = regex[:-1] + r"\Z"
    return re.compile(regex, re.ASCII)


# The schema walker: the keywords of the shipped schema, evaluated exactly as the jsonschema validator above
# evaluates them (a property test compares the two on generated input), without importing jsonschema, whose
# import alone took longer than the rest of a hook run (issue #15). A schema using anything else (another
# keyword, another type name) is validated by jsonschema, so a schema change can never skip a check.
_WALKED_TYPES: dict[str, type] = {"string": str, "object": dict}
_ANNOTATIONS = frozenset({"default", "description", "title", "examples"})


class SchemaError(Record):
    """The parts of a jsonschema ValidationError that the messages are made of."""

    __slots__ = ()
    _fields = ("validator", "validator_value", "instance", "schema", "absolute_path")
    validator, validator_value, instance, schema, absolute_path = fields(5)

    def __new__(cls, validator: str, validator_value: Any, instance: Any, schema: dict,
                absolute_path: tuple[str, ...]):
        return tuple.__new__(cls, (validator, validator_value, instance, schema, absolute_path))


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_length(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def walkable(schema: Any) -> bool:
    """True when every keyword of the schema (and its subschemas) is one the walker evaluates."""
    if not isinstance(schema, dict):
        return False
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS or keyword.startswith("x-"):
            continue
        if keyword == "type":
            names = [value] if isinstance(value, str) else value
            ok = _is_str_list(names) and bool(names) and all(name in _WALKED_TYPES for name in names)
        elif keyword == "properties":
            ok = isinstance(value, dict) and all(walkable(child) for child in value.values())
        elif keyword == "additionalProperties":
            ok = value is False or value is True or walkable(value)
        elif keyword in ("required", "enum"):
            ok = _is_str_list(value)
        elif keyword in ("minLength", "maxLength"):
            ok = _is_length(value)
        elif keyword == "pattern":
            ok = isinstance(value, str)
        else:
            ok = False
        if not ok:
            return False
    return True


def _walk(schema: dict, instance: Any, path: tuple[str, ...], out: list[SchemaError]) -> None:
    def fail(keyword: str, instance: Any = instance) -> None:
        out.append(SchemaError(keyword, schema[keyword], instance, schema, path))

    for keyword, value in schema.items():
        if keyword == "type":
            names = [value] if isinstance(value, str) else value
            if not any(isinstance(instance, _WALKED_TYPES[name]) for name in names):
                fail(keyword)
        elif keyword == "enum":
            if not (isinstance(instance, str) and instance in value):
                fail(keyword)
        elif keyword == "pattern":
            if isinstance(instance, str) and _ecma_regex(value).search(instance) is None:
                fail(keyword)
        elif keyword == "minLength":
            if isinstance(instance, str) and len(instance) < value:
                fail(keyword)
        elif keyword == "maxLength":
            if isinstance(instance, str) and len(instance) > value:
                fail(keyword)
        elif not isinstance(instance, dict):
            continue
        elif keyword == "required":
            for _ in (name for name in value if name not in instance):
                fail(keyword)
        elif keyword == "properties":
            for name, child in value.items():
                if name in instance:
                    _walk(child, instance[name], (*path, name), out)
        elif keyword == "additionalProperties":
            known = schema.get("properties", {})
            extras = [name for name in instance if name not in known]
            if isinstance(value, dict):
                for name in extras:
                    _walk(value, instance[name], (*path, name), out)
            elif value is False and extras:
                fail(keyword)


@lru_cache(maxsize=1)
def _schema_walkable() -> bool:
    return walkable(load_schema())


def schema_errors(settings: Any, engine: str = "auto") -> list[Any]:
    """Every schema violation, as jsonschema reports them; `engine` is "walker", "jsonschema" or "auto"."""
    schema = load_schema()
    if engine == "walker" or (engine == "auto" and _schema_walkable()):
        out: list[SchemaError] = []
        _walk(schema, settings, (), out)
        return out
    return list(_validator().iter_errors(settings))


def _schema_pass(settings: Any) -> tuple[list[tuple[_Path, str]], set[_Path], dict[str, str]]:
    """Schema-level messages sorted by path, the paths that failed, and canonical CA per section."""
    by_path: dict[_Path, list[Any]] = {}
    for error in schema_errors(settings):
        path = ("registry", *(str(part) for part in error.absolute_path))
        by_path.setdefault(path, []).append(error)

    found: list[tuple[_Path, str]] = []
    failed: set[_Path] = set()
    for path, errors in by_path.items():
        kinds = {error.validator for error in errors}
        if "type" in kinds:
            # Nothing else about a value of the wrong type is worth saying.
            errors = [error for error in errors if error.validator == "type"]
        elif "minLength" in kinds:
            # An empty value fails its pattern or enum only because it is empty.
            errors = [error for error in errors if error.validator not in ("pattern", "enum")]
        for error in errors:
            messages = _translate(path, error)
            if messages and error.validator != "additionalProperties":
                failed.add(path)
            found.extend((path, message) for message in messages)

    canonical_ca: dict[str, str] = {}
    if isinstance(settings, dict):
        for section in SECTIONS:
            body = settings.get(section)
            if not isinstance(body, dict) or not isinstance(body.get("ca"), str):
                continue
            path = ("registry", section, "ca")
            if path in failed:
                continue
            canonical = canonical_ca_bundle(body["ca"])
            if canonical is None:
                failed.add(path)
                found.append((path, MSG_CA.format(p=_dotted(path))))
            else:
                canonical_ca[section] = canonical

    found.sort()
    return found, failed, canonical_ca


def _translate(path: _Path, error: Any) -> list[str]:
    p = _dotted(path)
    field = path[-1]
    kind = error.validator
    if kind == "additionalProperties":
        known = error.schema.get("properties", {})
        keys = sorted(_sanitise(str(key)) for key in error.instance if key not in known)
        return [MSG_UNKNOWN_FIELD.format(p=p, key=key) for key in keys]
    if kind == "type":
        expected = error.validator_value
        if isinstance(expected, list):
            expected = " or ".join(expected)
        return [MSG_TYPE.format(p=p, type=expected)]
    if kind == "enum":
        message = MSG_ENUM.format(p=p, allowed=", ".join(str(item) for item in error.validator_value))
        return [message + _echo(field, error.instance)]
    if kind == "minLength":
        return [MSG_EMPTY.format(p=p)]
    if kind == "maxLength":
        return [MSG_TOO_LONG.format(p=p, n=error.validator_value)]
    if kind == "pattern":
        return _pattern_messages(p, field, error.validator_value, error.instance)
    if kind == "required":
        # Reported by the cross-field pass with its own wording.
        return []
    return [MSG_INVALID.format(p=p)]


def _pattern_messages(p: str, field: str, regex: str, value: str) -> list[str]:
    if regex in (USERNAME_PATTERN, NO_CONTROL_PATTERN):
        messages = []
        if ":" in value and regex == USERNAME_PATTERN:
            messages.append(MSG_COLON.format(p=p))
        if _CONTROL_RE.search(value):
            messages.append(MSG_CONTROL.format(p=p))
        return messages
    return [MSG_PATTERN.format(p=p, re=regex) + _echo(field, value)]


def _echo(field: str, value: Any) -> str:
    if field not in ECHOED_FIELDS or not isinstance(value, str):
        return ""
    if field == "imagesRepo":
        value = _redact_userinfo(value)
    return ECHO_SUFFIX.format(v=_sanitise(value))


def _redact_userinfo(value: str) -> str:
    # Someone pasting `https://user:token@host/repo` must not get the token back in a condition message.
    if "@" not in value:
        return value
    scheme = _URL_SCHEME_RE.match(value)
    prefix = scheme.group(0) if scheme else ""
    return prefix + "***@" + value.rsplit("@", 1)[1]


def _sanitise(text: str, limit: int = ECHO_LIMIT) -> str:
    """Escape non-printable characters (and the backslash, to keep escapes unambiguous); cap the length."""
    pieces: list[str] = []
    # Every piece is at least one character long, so looking past limit+1 characters cannot change the result.
    for char in text[: limit + 1]:
        if char == "\\":
            pieces.append("\\\\")
        elif char in _SHORT_ESCAPES:
            pieces.append(_SHORT_ESCAPES[char])
        elif char.isprintable():
            pieces.append(char)
        else:
            code = ord(char)
            if code <= 0xFF:
                pieces.append(f"\\x{code:02x}")
            elif code <= 0xFFFF:
                pieces.append(f"\\u{code:04x}")
            else:
                pieces.append(f"\\U{code:08x}")
    if sum(len(piece) for piece in pieces) <= limit:
        return "".join(pieces)
    kept: list[str] = []
    size = 0
    for piece in pieces:
        if size + len(piece) > limit - 3:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept) + "..."


def _dotted(path: _Path) -> str:
    return ".".join(_sanitise(part) for part in path)


def canonical_ca_bundle(text: str) -> str | None:
    """Canonical PEM of 1..16 X.509 certificates separated only by whitespace, or None when invalid."""
    if not text.isascii() or len(text.encode("ascii")) > CA_MAX_BYTES:
        return None
    blocks = _PEM_CERT_RE.findall(text)
    if not 1 <= len(blocks) <= CA_MAX_CERTS:
        return None
    if _PEM_CERT_RE.sub("", text).strip():
        return None

    import warnings

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    canonical = []
    for block in blocks:
        try:
            # Odd but parseable certificates make cryptography warn on stderr, which would corrupt the
            # hook's JSON-lines log.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                certificate = x509.load_pem_x509_certificate(block.encode("ascii"))
                pem = certificate.public_bytes(Encoding.PEM).decode("ascii")
        except Exception:  # any failure of the parser means "not a certificate"
            return None
        canonical.append(pem.strip())
    return "\n".join(canonical)


# ---------------------------------------------------------------------------------------------------------
# Cross-field, producer and environment rules


def _mode_of(settings: dict) -> str | None:
    """The requested mode, or None when `mode` itself is invalid (its error is already reported)."""
    mode = settings.get("mode", "Unmanaged")
    return mode if isinstance(mode, str) and mode in MODES else None


def _cross_field_errors(settings: dict, failed: set[_Path]) -> list[str]:
    errors = []
    mode = _mode_of(settings)
    if mode is not None:
        for owner, section in (("Direct", "direct"), ("Proxy", "proxy")):
            if mode == owner and section not in settings:
                errors.append(MSG_SECTION_REQUIRED.format(mode=owner, s=section))
            if mode != owner and section in settings:
                errors.append(MSG_SECTION_FORBIDDEN.format(mode=owner, s=section))
        if mode != "Unmanaged" and "unmanaged" in settings:
            errors.append(MSG_SECTION_FORBIDDEN.format(mode="Unmanaged", s="unmanaged"))

    for section in SECTIONS:
        body = settings.get(section)
        if not isinstance(body, dict):
            continue
        if "imagesRepo" not in body:
            errors.append(MSG_IMAGES_REPO_REQUIRED.format(s=section))
        if "username" in body and "password" not in body:
            errors.append(MSG_PASSWORD_REQUIRED.format(s=section))
        if "password" in body and "username" not in body:
            errors.append(MSG_USERNAME_REQUIRED.format(s=section))
        if "license" in body and ("username" in body or "password" in body):
            errors.append(MSG_LICENSE_EXCLUSIVE.format(s=section))
        if section == "proxy" and isinstance(body.get("ttl"), str) and ("registry", "proxy", "ttl") not in failed:
            seconds = ttl_seconds(body["ttl"])
            if seconds is not None and seconds < MIN_TTL_SECONDS:
                errors.append(MSG_TTL_TOO_SHORT)
    return errors


def _producer_errors(settings: dict, failed: set[_Path]) -> list[str]:
    errors = []
    for section in SECTIONS:
        body = settings.get(section)
        if not isinstance(body, dict):
            continue
        images_repo = body.get("imagesRepo")
        if not isinstance(images_repo, str) or ("registry", section, "imagesRepo") in failed:
            continue
        errors.extend(message.format(s=section) for message in images_repo_problems(images_repo))
    return errors


def images_repo_problems(images_repo: str) -> list[str]:
    """Producer-rule templates (with `{s}`) violated by an imagesRepo that already matches the schema pattern."""
    problems = []
    host_port, path = split_images_repo(images_repo)
    host, has_port, port = host_port.partition(":")
    if not is_valid_host(host):
        problems.append(MSG_REPO_HOST)
    if has_port and not (_PORT_RE.fullmatch(port) and 1 <= int(port) <= 65535):
        problems.append(MSG_REPO_PORT)
    segments = path.split("/") if path else []
    if not segments:
        problems.append(MSG_REPO_NO_PATH)
    if any(segment in (".", "..") for segment in segments):
        problems.append(MSG_REPO_DOT_SEGMENT)
    if not all(is_valid_path_segment(segment) for segment in segments if segment not in (".", "..")):
        problems.append(MSG_REPO_SEGMENT)
    hostname = host.lower()
    if hostname == FIXED_HOSTNAME or hostname.startswith(FIXED_HOSTNAME + "."):
        # The FQDN form (registry.d8-system.svc.<clusterDomain>) reaches the same Service.
        problems.append(MSG_REPO_FIXED)
    return problems


def _environment_errors(settings: dict, env: Environment) -> list[str]:
    mode = _mode_of(settings)
    if mode not in MANAGED_MODES:
        return []
    if not env.cluster_configuration_present:
        return [MSG_ENV_NOT_MANAGED.format(mode=mode)]
    errors = []
    cri = DEFAULT_CRI if env.default_cri is None else env.default_cri
    if cri not in CONTAINERD_CRIS:
        errors.append(MSG_ENV_CRI.format(mode=mode, cri=_sanitise(cri)))
    if mode in STATIC_ONLY_MODES and env.cluster_type != "Static":
        errors.append(MSG_ENV_STATIC.format(mode=mode, type=_sanitise(env.cluster_type or "")))
    return errors


# ---------------------------------------------------------------------------------------------------------
# Normalisation


def _normalise(settings: dict, canonical_ca: dict[str, str]) -> dict:
    mode = settings.get("mode", "Unmanaged")
    section = {"Direct": "direct", "Proxy": "proxy", "Unmanaged": "unmanaged"}.get(mode)
    body = settings.get(section) if section else None
    if body is None:
        # Local takes no parameters; Unmanaged without its section is the legacy variant.
        return {"mode": mode, "legacy": mode == "Unmanaged"}

    host, path = split_images_repo(body["imagesRepo"])
    params: dict[str, Any] = {
        "mode": mode,
        "legacy": False,
        "scheme": body.get("scheme", DEFAULT_SCHEME),
        "host": host,
        "path": path,
    }
    if section in canonical_ca:
        params["ca"] = canonical_ca[section]
    if "license" in body:
        params["username"] = LICENSE_USERNAME
        params["password"] = body["license"]
    elif "username" in body:
        params["username"] = body["username"]
        params["password"] = body["password"]
    if section == "proxy":
        params["ttl"] = body.get("ttl", DEFAULT_TTL)
    params["checkMode"] = body.get("checkMode", DEFAULT_CHECK_MODE)
    return params


def _optional_text(value: Any) -> str | None:
    # Globals are schema-checked by Deckhouse; a non-string here is still reported, never trusted as a match.
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)

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
"""Check a module hook's `--config` output the way addon-operator does (configVersion v1 only).

Two layers, mirroring addon-operator's order:

1. the JSON schema in schemas/hook-config-v1.yaml (shell-operator's v1 schema plus addon-operator's
   beforeHelm/afterHelm/afterDeleteHelm), strict about unknown fields;
2. once the shape is right, the checks shell-operator makes while converting the config:
   includeSnapshotsFrom must name exactly one kubernetes binding, crontab and settings must
   parse, label selector requirements must fit their operator, and so on.

Errors come back as plain sentences that start with where the problem is, e.g.
``kubernetes[0]: unknown field 'jqFIlter' (did you mean 'jqFilter'?)``.
"""

from __future__ import annotations

import difflib
import json
import re
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import yaml

SCHEMA_FILE = "hook-config-v1.yaml"

# Sections whose entries may carry includeSnapshotsFrom.
_SNAPSHOT_USERS = (
    "kubernetes",
    "schedule",
    "kubernetesValidating",
    "kubernetesMutating",
    "kubernetesCustomResourceConversion",
)

# time.ParseDuration grammar: optionally signed, one or more <number><unit> pairs, or a bare 0.
_GO_DURATION = re.compile(r"[-+]?(?:0|(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)")
# Named schedules understood by robfig/cron.v2, the parser shell-operator uses.
_CRON_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_CRON_FIELD = re.compile(r"[0-9A-Za-z*/,?\-]+")

_JSON_TYPE_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


# --------------------------------------------------------------------------- schema


@cache
def load_schema() -> dict:
    """The hook config schema as a dict, read once. Treat it as read-only."""
    text = resources.files(__package__).joinpath("schemas", SCHEMA_FILE).read_text(encoding="utf-8")
    schema = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml: same data, faster
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema())


# --------------------------------------------------------------------------- parsing


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key repeated within one mapping instead of keeping the last."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # unhashable key; let the base class report it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def _json_pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"hook --config output is not usable: duplicate key {key!r} in a JSON object")
        result[key] = value
    return result


def parse_hook_config_output(stdout: str | bytes) -> dict:
    """Turn what a hook printed for ``--config`` into a dict.

    JSON is tried first, then YAML (shell-operator accepts both). Raises ValueError when the output
    is empty, is not parseable, repeats a key, or is not a mapping at the top.
    """
    if isinstance(stdout, bytes):
        try:
            stdout = stdout.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"hook --config output is not UTF-8 text: {exc}") from exc
    if not stdout.strip():
        raise ValueError("hook --config printed nothing; expected a JSON or YAML mapping")

    try:
        data = json.loads(stdout, object_pairs_hook=_json_pairs_without_duplicates)
    except json.JSONDecodeError as json_exc:
        try:
            data = yaml.load(stdout, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
        except yaml.YAMLError as yaml_exc:
            looks_like_json = stdout.lstrip().startswith(("{", "["))
            detail = f"as JSON: {json_exc}" if looks_like_json else f"as YAML: {yaml_exc}"
            raise ValueError(
                f"hook --config output is neither valid JSON nor valid YAML (failed {detail})"
            ) from None

    if not isinstance(data, dict):
        raise ValueError(f"hook --config output must be a mapping at the top level, got {_type_name(data)}")
    return data


# --------------------------------------------------------------------------- validation


def validate_hook_config(config: Any) -> list[str]:
    """All problems addon-operator would report for this config; an empty list means it is accepted."""
    errors = _schema_errors(config)
    if errors:
        # The later checks assume the documented shape, so only run them on a config that has it.
        return errors
    return _conversion_errors(config)


def _where(path) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "config"


def _type_name(value: Any) -> str:
    for python_type, name in _JSON_TYPE_NAMES.items():
        if type(value) is python_type:
            return name
    return type(value).__name__


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _suggest(unknown: str, known: list[str]) -> str:
    by_lower = {name.lower(): name for name in known}
    matches = difflib.get_close_matches(str(unknown).lower(), list(by_lower), n=1, cutoff=0.75)
    return f" (did you mean '{by_lower[matches[0]]}'?)" if matches else ""


def _describe(error: jsonschema.ValidationError) -> list[str]:
    where = _where(error.absolute_path)
    kind = error.validator
    value = error.validator_value
    instance = error.instance

    if kind == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        return [
            f"{where}: unknown field '{key}'{_suggest(key, known)}"
            for key in instance
            if key not in error.schema.get("properties", {})
        ]
    if kind == "required":
        return [f"{where}: missing required field '{name}'" for name in value if name not in instance]
    if kind == "type":
        expected = value if isinstance(value, str) else " or ".join(value)
        got = _type_name(instance)
        if not isinstance(instance, dict | list):
            got += f" {_show(instance)}"
        return [f"{where}: expected {expected}, got {got}"]
    if kind == "enum":
        return [f"{where}: {_show(instance)} is not one of {', '.join(_show(v) for v in value)}"]
    if kind == "minItems":
        return [f"{where}: must not be empty" if value == 1 else f"{where}: needs at least {value} items"]
    if kind == "minProperties":
        if not error.absolute_path:
            if "configVersion" not in instance:
                return []  # the missing configVersion is already reported, and says more
            return ["config: declares no bindings (only configVersion)"]
        return [f"{where}: must not be empty" if value == 1 else f"{where}: needs at least {value} fields"]
    return [f"{where}: {error.message}"]


def _path_key(error: jsonschema.ValidationError) -> tuple:
    return tuple(
        (0, part, "") if isinstance(part, int) else (1, 0, str(part)) for part in error.absolute_path
    )


def _schema_errors(config: Any) -> list[str]:
    messages: list[str] = []
    for error in sorted(_validator().iter_errors(config), key=lambda e: (_path_key(e), e.message)):
        for message in _describe(error):
            if message not in messages:
                messages.append(message)
    return messages


# --------------------------------------------------------------------------- checks after the schema


def _binding_name(binding: dict) -> str:
    # shell-operator names an unnamed kubernetes binding "kubernetes".
    return binding.get("name") or "kubernetes"


def _check_snapshot_references(config: dict) -> list[str]:
    names = [_binding_name(b) for b in config.get("kubernetes", [])]
    errors = []
    for section in _SNAPSHOT_USERS:
        for index, binding in enumerate(config.get(section, [])):
            for ref in binding.get("includeSnapshotsFrom", []):
                count = names.count(ref)
                where = f"{section}[{index}].includeSnapshotsFrom"
                if count == 0:
                    errors.append(f"{where}: '{ref}' is not the name of any kubernetes binding of this hook")
                elif count > 1:
                    errors.append(
                        f"{where}: '{ref}' is the name of {count} kubernetes bindings (must be unique)"
                    )
    return errors


def _check_label_selector(selector: dict | None, where: str) -> list[str]:
    errors = []
    for index, requirement in enumerate((selector or {}).get("matchExpressions", [])):
        operator = requirement["operator"]
        values = requirement.get("values") or []
        place = f"{where}.matchExpressions[{index}]"
        if operator in ("In", "NotIn") and not values:
            errors.append(f"{place}: operator {operator} needs at least one value")
        if operator in ("Exists", "DoesNotExist") and values:
            errors.append(f"{place}: operator {operator} takes no values")
    return errors


def _check_kubernetes(index: int, binding: dict) -> list[str]:
    where = f"kubernetes[{index}]"
    errors = []
    if binding.get("apiVersion", "").count("/") > 1:
        errors.append(f"{where}.apiVersion: '{binding['apiVersion']}' is not 'version' or 'group/version'")
    errors += _check_label_selector(binding.get("labelSelector"), f"{where}.labelSelector")
    errors += _check_label_selector(
        binding.get("namespace", {}).get("labelSelector"), f"{where}.namespace.labelSelector"
    )
    if binding.get("nameSelector", {}).get("matchNames"):
        expressions = binding.get("fieldSelector", {}).get("matchExpressions", [])
        if any(expr["field"] == "metadata.name" for expr in expressions):
            errors.append(
                f"{where}: fieldSelector on 'metadata.name' cannot be combined with nameSelector.matchNames"
            )
    return errors


def _check_crontab(index: int, crontab: str) -> list[str]:
    where = f"schedule[{index}].crontab"
    spec = crontab.strip()
    if spec.startswith("TZ="):
        _, _, spec = spec.partition(" ")
        spec = spec.strip()
    if spec.startswith("@"):
        if spec in _CRON_DESCRIPTORS:
            return []
        if spec.startswith("@every ") and _GO_DURATION.fullmatch(spec[len("@every ") :].strip()):
            return []
        return [f"{where}: unknown schedule descriptor '{crontab}'"]
    fields = spec.split()
    if len(fields) not in (5, 6):
        return [f"{where}: '{crontab}' has {len(fields)} fields, expected 5 (or 6 with seconds)"]
    bad = [field for field in fields if not _CRON_FIELD.fullmatch(field)]
    if bad:
        return [f"{where}: '{crontab}' has malformed field(s) {', '.join(repr(b) for b in bad)}"]
    return []


def _check_settings(settings: dict | None) -> list[str]:
    # shell-operator parses both values whenever the block is present, so both are needed.
    if settings is None:
        return []
    errors = []
    interval = settings.get("executionMinInterval")
    if interval is None:
        errors.append("settings: missing required field 'executionMinInterval'")
    elif not _GO_DURATION.fullmatch(interval):
        errors.append(
            f"settings.executionMinInterval: '{interval}' is not a duration such as '500ms', '3s' or '1m30s'"
        )
    burst = settings.get("executionBurst")
    if burst is None:
        errors.append("settings: missing required field 'executionBurst'")
    elif not -(2**31) <= burst < 2**31:
        errors.append(f"settings.executionBurst: {burst} does not fit a 32-bit integer")
    return errors


def _conversion_errors(config: dict) -> list[str]:
    errors = _check_settings(config.get("settings"))
    for index, binding in enumerate(config.get("kubernetes", [])):
        errors += _check_kubernetes(index, binding)
    errors += _check_snapshot_references(config)
    for index, binding in enumerate(config.get("schedule", [])):
        errors += _check_crontab(index, binding["crontab"])
    for section in ("kubernetesValidating", "kubernetesMutating"):
        for index, binding in enumerate(config.get(section, [])):
            where = f"{section}[{index}]"
            errors += _check_label_selector(binding.get("labelSelector"), f"{where}.labelSelector")
            errors += _check_label_selector(
                binding.get("namespace", {}).get("labelSelector"), f"{where}.namespace.labelSelector"
            )
    return errors

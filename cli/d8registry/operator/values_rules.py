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
"""addon-operator's rules for module values, applied the way addon-operator applies them.

- A hook may only patch its own module's section ('/registry/...'), only with 'add' and 'remove',
  and patches are applied strictly (removing a missing path or adding under a missing parent fails).
- The module section is validated against openapi/values.yaml, which extends config-values.yaml
  ('x-extend'), after forcing 'additionalProperties: false' wherever a schema leaves it unset and after
  filling schema defaults.
- 'x-required-for-helm' fields are required only when the chart is about to be rendered.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonpatch
import jsonschema
import yaml

from .memo import clone, digest

MODULE = "registry"


class ValuesPatchError(ValueError):
    """A hook emitted a values patch addon-operator would refuse."""


class ValuesValidationError(ValueError):
    """Module values do not match openapi/values.yaml."""


def check_patch(operations: list[dict], module: str = MODULE) -> None:
    prefix = f"/{module}/"
    for op in operations:
        kind = op.get("op")
        path = op.get("path", "")
        if kind not in ("add", "remove"):
            raise ValuesPatchError(f"values patch operation {kind!r} at {path!r} is not allowed (only add/remove)")
        if not path.startswith(prefix):
            raise ValuesPatchError(f"values patch path {path!r} is outside {prefix!r}")


def apply_patch(values: dict, operations: list[dict], module: str = MODULE) -> dict:
    """Return new values with the patch applied strictly; the input is left untouched."""
    check_patch(operations, module)
    if not operations:
        return clone(values)
    try:
        # on a copy of our own (what in_place=False would make with copy.deepcopy, faster for JSON data)
        return jsonpatch.apply_patch(clone(values), operations, in_place=True)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise ValuesPatchError(f"values patch does not apply strictly: {exc}") from exc


def _force_closed(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_force_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _force_closed(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = _force_closed(value)
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            out[key] = [_force_closed(sub) for sub in value]
        else:
            out[key] = value
    if "additionalProperties" not in out and ("properties" in out or out.get("type") == "object"):
        out["additionalProperties"] = False
    return out


def _with_required_for_helm(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_with_required_for_helm(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    # a 'properties' map is walked once, below, as the map of schemas it is
    out = {key: value if key == "properties" and isinstance(value, dict) else _with_required_for_helm(value)
           for key, value in schema.items()}
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {n: _with_required_for_helm(s) for n, s in schema["properties"].items()}
    extra = schema.get("x-required-for-helm")
    if extra:
        out["required"] = sorted(set(out.get("required", [])) | set(extra))
    return out


def _load_yaml(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        # libyaml's safe loader: the same data as yaml.safe_load, several times faster
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}


@lru_cache(maxsize=8)
def _schemas(openapi_dir: str) -> tuple[dict, dict, dict]:
    base = Path(openapi_dir)
    config = _load_yaml(base / "config-values.yaml")
    values = _load_yaml(base / "values.yaml")
    extend = values.pop("x-extend", None)
    if extend:
        parent = _load_yaml(base / extend["schema"])
        merged = copy.deepcopy(parent)
        merged.setdefault("properties", {}).update(values.get("properties", {}))
        for key, value in values.items():
            if key != "properties":
                merged[key] = value
        values = merged
    return _force_closed(config), _force_closed(values), _force_closed(_with_required_for_helm(values))


def values_schema(openapi_dir: Path | str, for_helm: bool = False) -> dict:
    _config, values, helm = _schemas(str(openapi_dir))
    return copy.deepcopy(helm if for_helm else values)


def config_schema(openapi_dir: Path | str) -> dict:
    return copy.deepcopy(_schemas(str(openapi_dir))[0])


def apply_defaults(schema: dict, data: Any) -> Any:
    """Fill defaults of absent object properties, recursively, as addon-operator does."""
    if not isinstance(data, dict) or not isinstance(schema, dict):
        return data
    for name, sub in (schema.get("properties") or {}).items():
        if name not in data and isinstance(sub, dict) and "default" in sub:
            data[name] = copy.deepcopy(sub["default"])
        if name in data:
            apply_defaults(sub, data[name])
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for name, child in data.items():
            if name not in (schema.get("properties") or {}):
                apply_defaults(extra, child)
    return data


def _describe(error: jsonschema.ValidationError, module: str) -> str:
    where = ".".join(str(p) for p in (module, *error.absolute_path))
    return f"{where}: {error.message}"


_VALIDATED: OrderedDict[tuple, dict] = OrderedDict()
_VALIDATED_MAX = 256


def validate_module_values(
    openapi_dir: Path | str, module_values: dict, module: str = MODULE, for_helm: bool = False
) -> dict:
    """Return the module values with defaults filled; raise ValuesValidationError listing every problem.
    Values whose content was accepted before (same digest, same schema) are not validated again; anything
    else is, and a refusal is never remembered. The caller always gets its own copy."""
    content = digest(module_values)
    key = (str(openapi_dir), module, for_helm, content)
    filled = _VALIDATED.get(key) if content is not None else None
    if filled is None:
        # the cached schema itself: apply_defaults copies the defaults it takes and the validator only reads
        _config, values, helm = _schemas(str(openapi_dir))
        schema = helm if for_helm else values
        filled = apply_defaults(schema, clone(module_values) if content is not None else copy.deepcopy(module_values))
        validator = jsonschema.Draft7Validator(schema)
        problems = sorted(validator.iter_errors(filled), key=lambda e: [str(p) for p in e.absolute_path])
        if problems:
            raise ValuesValidationError("; ".join(_describe(p, module) for p in problems))
        if content is None:
            return filled
        _VALIDATED[key] = filled
        if len(_VALIDATED) > _VALIDATED_MAX:
            _VALIDATED.popitem(last=False)
    else:
        _VALIDATED.move_to_end(key)
    return clone(filled)


def validate_config_values(openapi_dir: Path | str, config: dict, module: str = MODULE) -> dict:
    schema = config_schema(openapi_dir)
    filled = apply_defaults(schema, copy.deepcopy(config))
    problems = list(jsonschema.Draft7Validator(schema).iter_errors(filled))
    if problems:
        raise ValuesValidationError("; ".join(_describe(p, module) for p in problems))
    return filled

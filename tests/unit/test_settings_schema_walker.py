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
"""The schema walker of hooks/lib/settings.py against jsonschema, its reference (issue #15).

Hooks validate `spec.settings.registry` with a walker over the shipped schema instead of importing
jsonschema. These tests hold the two to the same errors and the same verdicts, and make sure a
schema the walker does not fully understand goes to jsonschema instead.
"""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from lib import settings

from tests.unit.test_settings_properties import (
    ENVIRONMENTS,
    HOSTILE,
    SLOW_OK,
    hostile_text,
    json_like,
    mutated_settings,
    valid_settings,
)


def _errors(raw, engine):
    """What the messages are made of, per error, in a comparable form."""
    return sorted(
        (tuple(str(part) for part in error.absolute_path), error.validator, repr(error.validator_value),
         repr(error.instance), repr(sorted((error.schema or {}).get("properties", {}))))
        for error in settings.schema_errors(raw, engine)
    )


def _same(raw):
    assert _errors(raw, "walker") == _errors(raw, "jsonschema")


def _same_verdict(raw, env, monkeypatch):
    monkeypatch.setattr(settings, "_schema_walkable", lambda: False)
    reference = settings.evaluate(copy.deepcopy(raw), env)
    monkeypatch.undo()
    assert settings._schema_walkable()
    assert settings.evaluate(copy.deepcopy(raw), env) == reference


def test_shipped_schema_is_walked():
    # Otherwise every settings change would import jsonschema again.
    assert settings.walkable(settings.load_schema())


def test_libyaml_reads_the_schema_like_the_pure_python_loader():
    with open(settings.SCHEMA_PATH, encoding="utf-8") as handle:
        text = handle.read()
    assert yaml.load(text, Loader=yaml.SafeLoader) == settings.load_schema()


@pytest.mark.parametrize("extra", [
    {"format": "hostname"}, {"minimum": 1}, {"patternProperties": {"^x": {}}}, {"$ref": "#/properties/mode"},
    {"type": "integer"}, {"type": ["string", "null"]}, {"enum": [1, 2]}, {"additionalProperties": {"format": "x"}},
    {"minLength": True}, {"required": "mode"}, {"allOf": []}, {"const": "x"},
])
def test_any_other_keyword_goes_to_jsonschema(extra):
    schema = copy.deepcopy(settings.load_schema())
    schema["properties"]["mode"].update(extra)
    assert not settings.walkable(schema)
    assert settings.walkable(copy.deepcopy(settings.load_schema()))


@pytest.mark.parametrize("raw", [
    None, [], "Direct", 5, True, {}, {"mode": None}, {"mode": 1}, {"mode": "direct"}, {"mode": ""},
    {"mode": "Direct", "direct": "x"}, {"mode": "Direct", "direct": {}}, {"direct": {"imagesRepo": ""}},
    {"proxy": {"imagesRepo": "a" * 300, "ttl": "5h\n", "username": "a:b\n", "password": "\x00", "bogus": 1}},
    {"unmanaged": {"imagesRepo": 7, "scheme": "https", "ca": "", "checkMode": []}, "other": {}, "x": None},
    *({"direct": {"username": text, "license": text}} for text in HOSTILE),
])
def test_examples(raw, monkeypatch):
    _same(raw)
    for env in ENVIRONMENTS[:2]:
        _same_verdict(raw, env, monkeypatch)


@SLOW_OK
@given(raw=st.one_of(json_like, mutated_settings(), valid_settings()))
def test_generated_settings_give_the_same_errors(raw):
    _same(raw)


@SLOW_OK
@given(raw=mutated_settings(), env=st.sampled_from(ENVIRONMENTS), section=hostile_text)
def test_generated_settings_give_the_same_verdict(raw, env, section):
    if isinstance(raw, dict) and len(raw) < 3:
        raw[section] = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        _same_verdict(raw, env, monkeypatch)


def _bounded_fields():
    for section in ("direct", "proxy", "unmanaged"):
        for name, field in settings.load_schema()["properties"][section]["properties"].items():
            if "maxLength" in field:
                yield section, name, field["maxLength"]


@pytest.mark.parametrize(("section", "name", "limit"), list(_bounded_fields()))
def test_length_bounds(section, name, limit, monkeypatch):
    for value in ("", "a", "a" * limit, "a" * (limit + 1), "\u00e9" * limit, "\u00e9" * (limit + 1)):
        raw = {"mode": section.capitalize(), section: {name: value}}
        _same(raw)
        _same_verdict(raw, ENVIRONMENTS[0], monkeypatch)


def test_a_settings_change_is_validated_without_jsonschema():
    code = (
        "import sys; sys.path.insert(0, 'hooks'); from lib import settings;"
        "env = settings.Environment(True, 'Containerd', 'Static');"
        "assert settings.evaluate({'mode': 'Proxy', 'proxy': {'imagesRepo': 'r.io/d', 'ttl': '1h'}}, env).valid;"
        "assert not settings.evaluate({'mode': 'Proxy', 'proxy': {'imagesRepo': ''}}, env).valid;"
        "assert 'jsonschema' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(settings.SCHEMA_PATH).parents[1])

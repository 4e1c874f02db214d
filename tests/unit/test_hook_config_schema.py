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
"""The hook --config checker: shell-operator's v1 schema, addon-operator's module extras, and the
checks shell-operator makes after the schema."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
import yaml
from d8registry.operator import hook_config


def full_config() -> dict:
    """A config touching every binding type and most optional fields; it must be accepted."""
    return {
        "configVersion": "v1",
        "onStartup": 5,
        "beforeHelm": 10,
        "afterHelm": 20,
        "afterDeleteHelm": 30,
        "settings": {"executionMinInterval": "3s", "executionBurst": 1},
        "schedule": [
            {
                "name": "reconcile",
                "crontab": "*/5 * * * *",
                "allowFailure": True,
                "includeSnapshotsFrom": ["secrets", "nodes"],
                "queue": "/modules/registry/reconcile",
                "group": "main",
            }
        ],
        "kubernetes": [
            {
                "name": "secrets",
                "apiVersion": "v1",
                "kind": "Secret",
                "nameSelector": {"matchNames": ["registry-user", "registry-pki"]},
                "namespace": {"nameSelector": {"matchNames": ["d8-system"]}},
                "jqFilter": '{"name": .metadata.name, "data": .data}',
                "executeHookOnEvent": [],
                "executeHookOnSynchronization": False,
                "keepFullObjectsInMemory": False,
                "group": "main",
                "queue": "/modules/registry/reconcile",
            },
            {
                "name": "nodes",
                "apiVersion": "v1",
                "kind": "Node",
                "labelSelector": {
                    "matchLabels": {"node.deckhouse.io/group": "master"},
                    "matchExpressions": [
                        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"},
                        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                    ],
                },
                "fieldSelector": {
                    "matchExpressions": [
                        {"field": "spec.unschedulable", "operator": "NotEquals", "value": "true"}
                    ]
                },
                "jqFilter": ".metadata.name",
                "executeHookOnEvent": ["Added", "Deleted"],
                "waitForSynchronization": False,
                "allowFailure": False,
                "includeSnapshotsFrom": ["secrets"],
                "queue": "/modules/registry/nodes",
            },
            {
                "name": "pods",
                "kind": "Pod",
                "namespace": {
                    "labelSelector": {
                        "matchExpressions": [{"key": "heritage", "operator": "NotIn", "values": ["x"]}]
                    }
                },
                "resynchronizationPeriod": "10m",
                "keepFullObjectsInMemory": True,
            },
        ],
        "kubernetesValidating": [
            {
                "name": "registry-config.deckhouse.io",
                "includeSnapshotsFrom": ["secrets"],
                "group": "main",
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "timeoutSeconds": 10,
                "matchConditions": [
                    {"name": "not-system", "expression": "request.userInfo.username != 'system'"}
                ],
                "labelSelector": {"matchLabels": {"app": "registry"}},
                "namespace": {"labelSelector": {"matchLabels": {"heritage": "deckhouse"}}},
                "rules": [
                    {
                        "apiGroups": ["deckhouse.io"],
                        "apiVersions": ["v1alpha1"],
                        "resources": ["moduleconfigs"],
                        "operations": ["CREATE", "UPDATE"],
                        "scope": "Cluster",
                    }
                ],
            }
        ],
        "kubernetesMutating": [
            {
                "name": "registry-mutate.deckhouse.io",
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                        "operations": ["*"],
                    }
                ],
            }
        ],
        "kubernetesCustomResourceConversion": [
            {
                "name": "convert",
                "crdName": "registries.deckhouse.io",
                "conversions": [{"fromVersion": "deckhouse.io/v1alpha1", "toVersion": "deckhouse.io/v1"}],
            }
        ],
    }


def errors_of(config) -> list[str]:
    errors = hook_config.validate_hook_config(config)
    assert isinstance(errors, list)
    assert all(isinstance(e, str) for e in errors)
    return errors


def assert_error(config, expected_start: str) -> None:
    errors = errors_of(config)
    assert any(e.startswith(expected_start) for e in errors), (
        f"no error starting with {expected_start!r} in {errors}"
    )


# --------------------------------------------------------------------------- the schema file


def test_schema_is_valid_draft_2020_12_and_cached():
    schema = hook_config.load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert hook_config.load_schema() is schema
    assert schema["additionalProperties"] is False


def test_schema_top_level_fields():
    assert set(hook_config.load_schema()["properties"]) == {
        "configVersion",
        "onStartup",
        "beforeHelm",
        "afterHelm",
        "afterDeleteHelm",
        "settings",
        "schedule",
        "kubernetes",
        "kubernetesValidating",
        "kubernetesMutating",
        "kubernetesCustomResourceConversion",
    }


def test_every_object_in_the_schema_is_closed_except_matchconditions():
    """Guard against a new object being added without additionalProperties: false."""
    open_objects = []

    def walk(node, where):
        if isinstance(node, dict):
            if node.get("type") == "object" and "additionalProperties" not in node:
                open_objects.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(hook_config.load_schema(), "#")
    assert open_objects == ["#/$defs/admissionBinding/properties/matchConditions/items"]


# --------------------------------------------------------------------------- valid configs


def test_full_config_is_accepted():
    assert errors_of(full_config()) == []


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"configVersion": "v1", "beforeHelm": 10}, id="beforeHelm-only"),
        pytest.param({"configVersion": "v1", "onStartup": 1}, id="onStartup-only"),
        pytest.param({"configVersion": "v1", "afterDeleteHelm": 0}, id="afterDeleteHelm-only"),
        pytest.param({"configVersion": "v1", "kubernetes": [{"kind": "Pod"}]}, id="apiVersion-is-optional"),
        pytest.param(
            {"configVersion": "v1", "schedule": [{"crontab": "*/10 * * * * *"}]},
            id="six-field-crontab",
        ),
        pytest.param(
            {"configVersion": "v1", "schedule": [{"crontab": "@every 1m30s"}, {"crontab": "@daily"}]},
            id="cron-descriptors",
        ),
        pytest.param(
            {
                "configVersion": "v1",
                "schedule": [{"name": "s", "crontab": "0 * * * *", "includeSnapshotsFrom": ["kubernetes"]}],
                "kubernetes": [{"kind": "ConfigMap"}],
            },
            id="unnamed-kubernetes-binding-is-called-kubernetes",
        ),
        pytest.param(
            {"configVersion": "v1", "kubernetes": [{"kind": "Pod", "watchEvent": ["Modified"]}]},
            id="deprecated-watchEvent",
        ),
        pytest.param(
            {"configVersion": "v1", "onStartup": 10.0},
            id="integral-float-order",
        ),
        pytest.param(
            {
                "configVersion": "v1",
                "kubernetes": [
                    {
                        "name": "module-config",
                        "apiVersion": "deckhouse.io/v1alpha1",
                        "kind": "ModuleConfig",
                        "nameSelector": {"matchNames": ["registry"]},
                        "executeHookOnEvent": [],
                        "executeHookOnSynchronization": False,
                        "keepFullObjectsInMemory": False,
                        "jqFilter": ".spec.settings",
                    }
                ],
                "beforeHelm": 10,
            },
            id="snapshot-only-binding-before-helm",
        ),
    ],
)
def test_valid_configs_are_accepted(config):
    assert errors_of(config) == []


# --------------------------------------------------------------------------- misspelled fields


# (path to the object as keys/indexes, misspelled key, where the error should point)
MISSPELLINGS = [
    ([], "onstartup", "config", "onStartup"),
    ([], "beforeHelms", "config", "beforeHelm"),
    ([], "configversion", "config", "configVersion"),
    ([], "beforeAll", "config", None),  # a global-hook binding, not allowed in a module hook
    (["settings"], "executionMinIntervals", "settings", "executionMinInterval"),
    (["schedule", 0], "executeHookOnSchedule", "schedule[0]", None),
    (["schedule", 0], "allowfailure", "schedule[0]", "allowFailure"),
    (["schedule", 0], "includeSnapshotFrom", "schedule[0]", "includeSnapshotsFrom"),
    (["kubernetes", 0], "jqFIlter", "kubernetes[0]", "jqFilter"),
    (["kubernetes", 0], "executeHookOnEvents", "kubernetes[0]", "executeHookOnEvent"),
    (["kubernetes", 0], "keepFullObjectInMemory", "kubernetes[0]", "keepFullObjectsInMemory"),
    (["kubernetes", 0], "executeOnSynchronization", "kubernetes[0]", None),
    (["kubernetes", 0], "mode", "kubernetes[0]", None),
    (["kubernetes", 1], "labelSelectors", "kubernetes[1]", "labelSelector"),
    (["kubernetes", 0, "nameSelector"], "matchName", "kubernetes[0].nameSelector", "matchNames"),
    (["kubernetes", 1, "labelSelector"], "matchLabel", "kubernetes[1].labelSelector", "matchLabels"),
    (
        ["kubernetes", 1, "labelSelector", "matchExpressions", 1],
        "value",
        "kubernetes[1].labelSelector.matchExpressions[1]",
        "values",
    ),
    (
        ["kubernetes", 1, "fieldSelector", "matchExpressions", 0],
        "values",
        "kubernetes[1].fieldSelector.matchExpressions[0]",
        "value",
    ),
    (["kubernetes", 1, "fieldSelector"], "matchLabels", "kubernetes[1].fieldSelector", None),
    (["kubernetes", 0, "namespace"], "nameSelectors", "kubernetes[0].namespace", "nameSelector"),
    (
        ["kubernetes", 0, "namespace", "nameSelector"],
        "matchname",
        "kubernetes[0].namespace.nameSelector",
        "matchNames",
    ),
    (["kubernetesValidating", 0], "failurepolicy", "kubernetesValidating[0]", "failurePolicy"),
    (["kubernetesValidating", 0, "rules", 0], "operation", "kubernetesValidating[0].rules[0]", "operations"),
    (["kubernetesValidating", 0, "namespace"], "nameSelector", "kubernetesValidating[0].namespace", None),
    (["kubernetesMutating", 0], "objectSelector", "kubernetesMutating[0]", None),
    (["kubernetesCustomResourceConversion", 0], "crd", "kubernetesCustomResourceConversion[0]", None),
    (
        ["kubernetesCustomResourceConversion", 0, "conversions", 0],
        "from",
        "kubernetesCustomResourceConversion[0].conversions[0]",
        None,
    ),
]


@pytest.mark.parametrize(
    ("path", "bad", "where", "hint"),
    MISSPELLINGS,
    ids=[f"{'.'.join(map(str, p)) or 'top'}:{b}" for p, b, _, _ in MISSPELLINGS],
)
def test_misspelled_field_is_rejected_and_named(path, bad, where, hint):
    config = full_config()
    target = config
    for step in path:
        target = target[step]
    target[bad] = True
    errors = errors_of(config)
    expected = f"{where}: unknown field '{bad}'"
    matching = [e for e in errors if e.startswith(expected)]
    assert matching, f"{expected!r} not in {errors}"
    if hint:
        assert matching[0] == f"{expected} (did you mean '{hint}'?)"


def test_brief_example_message():
    config = {"configVersion": "v1", "kubernetes": [{"kind": "Pod", "jqFIlter": ".metadata"}]}
    assert errors_of(config) == ["kubernetes[0]: unknown field 'jqFIlter' (did you mean 'jqFilter'?)"]


def test_several_problems_are_all_reported():
    config = full_config()
    config["kubernetes"][0]["jqFIlter"] = "."
    config["schedule"][0]["allowFailure"] = "yes"
    config["onstartup"] = 1
    errors = errors_of(config)
    assert len(errors) == 3
    assert any(e.startswith("kubernetes[0]: unknown field 'jqFIlter'") for e in errors)
    assert "schedule[0].allowFailure: expected boolean, got string 'yes'" in errors
    assert any(e.startswith("config: unknown field 'onstartup'") for e in errors)


# --------------------------------------------------------------------------- wrong types and values


def _set(config: dict, path: list, value) -> dict:
    target = config
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return config


WRONG_VALUES = [
    (["configVersion"], "v0", "configVersion: 'v0' is not one of 'v1'"),
    (["configVersion"], 1, "configVersion: expected string, got integer 1"),
    (["onStartup"], "10", "onStartup: expected integer, got string '10'"),
    (["onStartup"], True, "onStartup: expected integer, got boolean true"),
    (["beforeHelm"], 1.5, "beforeHelm: expected integer, got number 1.5"),
    (["afterHelm"], None, "afterHelm: expected integer, got null"),
    (["settings", "executionBurst"], "1", "settings.executionBurst: expected integer"),
    (["schedule"], {"crontab": "* * * * *"}, "schedule: expected array, got object"),
    (["schedule"], [], "schedule: must not be empty"),
    (["schedule", 0, "allowFailure"], "true", "schedule[0].allowFailure: expected boolean"),
    (["schedule", 0, "includeSnapshotsFrom"], [], "schedule[0].includeSnapshotsFrom: must not be empty"),
    (["schedule", 0, "includeSnapshotsFrom"], "secrets", "schedule[0].includeSnapshotsFrom: expected array"),
    (
        ["kubernetes", 0, "executeHookOnEvent"],
        ["Add"],
        "kubernetes[0].executeHookOnEvent[0]: 'Add' is not one of",
    ),
    (["kubernetes", 0, "executeHookOnEvent"], "Added", "kubernetes[0].executeHookOnEvent: expected array"),
    (["kubernetes", 0, "watchEvent"], ["Updated"], "kubernetes[0].watchEvent[0]: 'Updated' is not one of"),
    (
        ["kubernetes", 0, "executeHookOnSynchronization"],
        "false",
        "kubernetes[0].executeHookOnSynchronization: expected boolean",
    ),
    (
        ["kubernetes", 0, "keepFullObjectsInMemory"],
        0,
        "kubernetes[0].keepFullObjectsInMemory: expected boolean",
    ),
    (
        ["kubernetes", 0, "waitForSynchronization"],
        "no",
        "kubernetes[0].waitForSynchronization: expected boolean",
    ),
    (["kubernetes", 0, "jqFilter"], [".a"], "kubernetes[0].jqFilter: expected string"),
    (["kubernetes", 0, "kind"], None, "kubernetes[0].kind: expected string"),
    (
        ["kubernetes", 0, "nameSelector", "matchNames"],
        "registry",
        "kubernetes[0].nameSelector.matchNames: expected array",
    ),
    (["kubernetes", 0, "namespace"], {}, "kubernetes[0].namespace: must not be empty"),
    (["kubernetes", 1, "labelSelector"], {}, "kubernetes[1].labelSelector: must not be empty"),
    (
        ["kubernetes", 1, "labelSelector", "matchLabels", "node.deckhouse.io/group"],
        1,
        "kubernetes[1].labelSelector.matchLabels.node.deckhouse.io/group: expected string",
    ),
    (
        ["kubernetes", 1, "labelSelector", "matchExpressions", 0, "operator"],
        "Equals",
        "kubernetes[1].labelSelector.matchExpressions[0].operator: 'Equals' is not one of 'In', 'NotIn', 'Exists', 'DoesNotExist'",
    ),
    (
        ["kubernetes", 1, "labelSelector", "matchExpressions", 0, "operator"],
        "DoesNotExists",
        "kubernetes[1].labelSelector.matchExpressions[0].operator: 'DoesNotExists' is not one of",
    ),
    (
        ["kubernetes", 1, "fieldSelector", "matchExpressions", 0, "operator"],
        "In",
        "kubernetes[1].fieldSelector.matchExpressions[0].operator: 'In' is not one of '=', '==', 'Equals', '!=', 'NotEquals'",
    ),
    (
        ["kubernetes", 1, "fieldSelector", "matchExpressions", 0, "value"],
        True,
        "kubernetes[1].fieldSelector.matchExpressions[0].value: expected string",
    ),
    (
        ["kubernetesValidating", 0, "failurePolicy"],
        "fail",
        "kubernetesValidating[0].failurePolicy: 'fail' is not one of 'Ignore', 'Fail'",
    ),
    (
        ["kubernetesValidating", 0, "sideEffects"],
        "Some",
        "kubernetesValidating[0].sideEffects: 'Some' is not one of",
    ),
    (
        ["kubernetesValidating", 0, "timeoutSeconds"],
        "10",
        "kubernetesValidating[0].timeoutSeconds: expected integer",
    ),
    (
        ["kubernetesValidating", 0, "rules", 0, "operations"],
        ["PATCH"],
        "kubernetesValidating[0].rules[0].operations[0]: 'PATCH' is not one of",
    ),
    (
        ["kubernetesValidating", 0, "rules", 0, "scope"],
        "Namespace",
        "kubernetesValidating[0].rules[0].scope: 'Namespace' is not one of",
    ),
    (["kubernetesMutating", 0, "rules"], [], "kubernetesMutating[0].rules: must not be empty"),
    (
        ["kubernetesCustomResourceConversion", 0, "conversions"],
        [],
        "kubernetesCustomResourceConversion[0].conversions: must not be empty",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    WRONG_VALUES,
    ids=[f"{'.'.join(map(str, p))}={v!r}" for p, v, _ in WRONG_VALUES],
)
def test_wrong_type_or_value_is_rejected(path, value, expected):
    assert_error(_set(full_config(), path, value), expected)


def test_config_that_is_not_a_mapping():
    assert errors_of(["configVersion", "v1"]) == ["config: expected object, got array"]


# --------------------------------------------------------------------------- required fields


def test_missing_config_version_is_rejected():
    config = full_config()
    del config["configVersion"]
    assert errors_of(config) == ["config: missing required field 'configVersion'"]


def test_config_without_bindings_is_rejected():
    assert errors_of({"configVersion": "v1"}) == ["config: declares no bindings (only configVersion)"]


@pytest.mark.parametrize(
    ("path", "field", "expected"),
    [
        (["kubernetes", 0], "kind", "kubernetes[0]: missing required field 'kind'"),
        (["schedule", 0], "crontab", "schedule[0]: missing required field 'crontab'"),
        (
            ["kubernetes", 0, "nameSelector"],
            "matchNames",
            "kubernetes[0].nameSelector: missing required field 'matchNames'",
        ),
        (
            ["kubernetes", 1, "labelSelector", "matchExpressions", 1],
            "operator",
            "kubernetes[1].labelSelector.matchExpressions[1]: missing required field 'operator'",
        ),
        (
            ["kubernetes", 1, "fieldSelector", "matchExpressions", 0],
            "value",
            "kubernetes[1].fieldSelector.matchExpressions[0]: missing required field 'value'",
        ),
        (["kubernetesValidating", 0], "name", "kubernetesValidating[0]: missing required field 'name'"),
        (
            ["kubernetesValidating", 0, "rules", 0],
            "resources",
            "kubernetesValidating[0].rules[0]: missing required field 'resources'",
        ),
        (
            ["kubernetesValidating", 0, "matchConditions", 0],
            "expression",
            "kubernetesValidating[0].matchConditions[0]: missing required field 'expression'",
        ),
        (
            ["kubernetesValidating", 0, "namespace"],
            "labelSelector",
            "kubernetesValidating[0].namespace: missing required field 'labelSelector'",
        ),
        (
            ["kubernetesCustomResourceConversion", 0],
            "crdName",
            "kubernetesCustomResourceConversion[0]: missing required field 'crdName'",
        ),
        (
            ["kubernetesCustomResourceConversion", 0, "conversions", 0],
            "toVersion",
            "kubernetesCustomResourceConversion[0].conversions[0]: missing required field 'toVersion'",
        ),
    ],
)
def test_missing_required_field_is_rejected(path, field, expected):
    config = full_config()
    target = config
    for step in path:
        target = target[step]
    del target[field]
    assert expected in errors_of(config)


# --------------------------------------------------------------------------- checks after the schema


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda c: c["schedule"][0].update(includeSnapshotsFrom=["secret"]),
            "schedule[0].includeSnapshotsFrom: 'secret' is not the name of any kubernetes binding",
        ),
        (
            lambda c: c["kubernetesValidating"][0].update(includeSnapshotsFrom=["nope"]),
            "kubernetesValidating[0].includeSnapshotsFrom: 'nope' is not the name",
        ),
        (
            lambda c: c["kubernetes"][2].update(name="secrets"),
            "kubernetes[1].includeSnapshotsFrom: 'secrets' is the name of 2 kubernetes bindings",
        ),
        (
            lambda c: c["schedule"][0].update(crontab="*/5 * * *"),
            "schedule[0].crontab: '*/5 * * *' has 4 fields",
        ),
        (
            lambda c: c["schedule"][0].update(crontab="@sometimes"),
            "schedule[0].crontab: unknown schedule descriptor",
        ),
        (
            lambda c: c["schedule"][0].update(crontab="*/5 * * * %"),
            "schedule[0].crontab: '*/5 * * * %' has malformed field(s) '%'",
        ),
        (
            lambda c: c["settings"].update(executionMinInterval="3 seconds"),
            "settings.executionMinInterval: '3 seconds' is not a duration",
        ),
        (
            lambda c: c["settings"].pop("executionBurst"),
            "settings: missing required field 'executionBurst'",
        ),
        (
            lambda c: c["kubernetes"][1]["labelSelector"]["matchExpressions"][1].pop("values"),
            "kubernetes[1].labelSelector.matchExpressions[1]: operator In needs at least one value",
        ),
        (
            lambda c: c["kubernetes"][1]["labelSelector"]["matchExpressions"][0].update(values=["x"]),
            "kubernetes[1].labelSelector.matchExpressions[0]: operator Exists takes no values",
        ),
        (
            lambda c: c["kubernetes"][0].update(
                fieldSelector={
                    "matchExpressions": [{"field": "metadata.name", "operator": "=", "value": "a"}]
                }
            ),
            "kubernetes[0]: fieldSelector on 'metadata.name' cannot be combined with nameSelector.matchNames",
        ),
        (
            lambda c: c["kubernetes"][0].update(apiVersion="deckhouse.io/v1/extra"),
            "kubernetes[0].apiVersion: 'deckhouse.io/v1/extra' is not",
        ),
    ],
)
def test_checks_after_the_schema(mutate, expected):
    config = full_config()
    mutate(config)
    assert_error(config, expected)


def test_checks_after_the_schema_wait_for_a_clean_schema():
    config = full_config()
    config["schedule"][0]["crontab"] = "* *"  # would fail the later check
    config["schedule"][0]["allowFailure"] = "yes"  # fails the schema
    assert errors_of(config) == ["schedule[0].allowFailure: expected boolean, got string 'yes'"]


# --------------------------------------------------------------------------- parsing --config output


def test_parse_json_output():
    text = json.dumps(full_config()) + "\n"
    assert hook_config.parse_hook_config_output(text) == full_config()


def test_parse_yaml_output():
    text = """
configVersion: v1
beforeHelm: 10
schedule:
- name: reconcile
  crontab: "*/5 * * * *"
  allowFailure: true
  includeSnapshotsFrom: [secrets]
kubernetes:
- name: secrets
  apiVersion: v1
  kind: Secret
  nameSelector:
    matchNames: [registry-user]
  namespace:
    nameSelector:
      matchNames: [d8-system]
  executeHookOnEvent: []
  executeHookOnSynchronization: false
  keepFullObjectsInMemory: false
  jqFilter: .data
"""
    config = hook_config.parse_hook_config_output(text)
    assert config["kubernetes"][0]["executeHookOnEvent"] == []
    assert config["beforeHelm"] == 10
    assert hook_config.validate_hook_config(config) == []


def test_parse_bytes_output():
    assert hook_config.parse_hook_config_output(b'{"configVersion": "v1", "onStartup": 1}') == {
        "configVersion": "v1",
        "onStartup": 1,
    }


def test_parse_yaml_crontab_stays_a_string():
    # shell-operator reads YAML 1.1 too; a quoted crontab must come back unchanged.
    config = hook_config.parse_hook_config_output('configVersion: v1\nschedule:\n- crontab: "0 * * * *"\n')
    assert config["schedule"][0]["crontab"] == "0 * * * *"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "printed nothing"),
        ("   \n\t\n", "printed nothing"),
        ('{"configVersion": "v1", "onStartup": 1, "onStartup": 2}', "duplicate key 'onStartup'"),
        ("configVersion: v1\nonStartup: 1\nonStartup: 2\n", "duplicate key 'onStartup'"),
        ('{"configVersion": "v1", "onStartup": 1', "neither valid JSON nor valid YAML (failed as JSON"),
        ("configVersion: v1\n  kubernetes: [\n", "neither valid JSON nor valid YAML (failed as YAML"),
        ("configVersion: v1\n---\nonStartup: 1\n", "neither valid JSON nor valid YAML"),
        ('["configVersion", "v1"]', "must be a mapping at the top level, got array"),
        ("just some text", "must be a mapping at the top level, got string"),
        ("null", "must be a mapping at the top level, got null"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_parse_rejects_unusable_output(text, fragment):
    with pytest.raises(ValueError) as excinfo:
        hook_config.parse_hook_config_output(text)
    assert fragment in str(excinfo.value)


def test_round_trip_of_what_the_hook_runner_prints():
    """hooks/lib/runner.py prints json.dumps(config); the result must parse back unchanged."""
    config = full_config()
    parsed = hook_config.parse_hook_config_output(json.dumps(config))
    assert parsed == config
    assert hook_config.validate_hook_config(copy.deepcopy(parsed)) == []
    # and the same config written as YAML
    assert hook_config.parse_hook_config_output(yaml.safe_dump(config)) == config

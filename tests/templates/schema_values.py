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
"""Module values built only from the openapi schemas and their examples, the way dmt feeds its template rules.

The rule for one schema node: its first `x-examples` entry when it has one, else its `default`, else a value
built from its type: every property of an object, one item of an array, the first enum value of a string (or
a sample matching its format), `true`, or the minimum of a number. `values.yaml` extends `config-values.yaml`
(`x-extend`), so the properties of both are combined. A template that fails with these values is a template
dmt skips, so every template must render with them.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

# Stand-in for dmt's own global schema examples: only the global keys the chart reads, with example values.
GLOBAL_EXAMPLE = {
    "clusterIsBootstrapped": True,
    "clusterConfiguration": {"clusterType": "Static", "clusterDomain": "cluster.local",
                             "podSubnetCIDR": "10.111.0.0/16", "serviceSubnetCIDR": "10.222.0.0/16"},
    "discovery": {"clusterMasterCount": 3, "clusterControlPlaneIsHighlyAvailable": True,
                  "clusterDomain": "cluster.local", "prometheusScrapeInterval": 30,
                  "d8SpecificNodeCountByRole": {"system": 1}},
    "enabledModules": ["operator-prometheus-crd", "operator-prometheus", "prometheus", "prometheus-crd",
                       "cert-manager", "vertical-pod-autoscaler", "ingress-nginx"],
    "highAvailability": True,
    "modules": {"publicDomainTemplate": "%s.example.com", "ingressClass": "nginx", "placement": {},
                "https": {"mode": "CertManager", "certManager": {"clusterIssuerName": "letsencrypt"}}},
    "modulesImages": {"registry": {"base": "registry.example.com/deckhouse/ce"}, "digests": {}},
}

SAMPLE_BY_FORMAT = {"date-time": "2026-01-01T00:00:00Z", "date": "2026-01-01", "ipv4": "10.0.0.1"}


def _merged_schema(openapi: Path) -> dict:
    values = yaml.safe_load((openapi / "values.yaml").read_text())
    parent_name = (values.get("x-extend") or {}).get("schema")
    if parent_name:
        parent = yaml.safe_load((openapi / parent_name).read_text())
        merged = dict(parent)
        merged.pop("x-examples", None)  # the root examples describe ModuleConfig settings alone
        merged["properties"] = {**(parent.get("properties") or {}), **(values.get("properties") or {})}
        return merged
    return values


def value_for(schema: dict):
    if not isinstance(schema, dict):
        return None
    if schema.get("x-examples"):
        return copy.deepcopy(schema["x-examples"][0])
    if "default" in schema and not (schema.get("properties") and schema["default"] == {}):
        return copy.deepcopy(schema["default"])
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {name: value_for(sub) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        items = value_for(schema.get("items") or {})
        return [] if items is None else [items]
    if schema.get("enum"):
        return copy.deepcopy(schema["enum"][0])
    if kind == "string":
        return SAMPLE_BY_FORMAT.get(schema.get("format"), "example")
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    return None


def _camel(name: str) -> str:
    head, *rest = name.replace("_", "-").split("-")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def module_values(repo_root: Path) -> dict:
    """The Helm values: `registry` from the module schemas, `global` from GLOBAL_EXAMPLE plus image digests."""
    module = value_for(_merged_schema(repo_root / "openapi"))
    globals_ = copy.deepcopy(GLOBAL_EXAMPLE)
    digests = {_camel(path.name): "sha256:" + "0" * 63 + str(index % 10)
               for index, path in enumerate(sorted((repo_root / "images").iterdir())) if path.is_dir()}
    globals_["modulesImages"]["digests"] = {"registry": digests}
    return {"global": globals_, "registry": module}

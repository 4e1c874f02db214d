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
"""Spellings of the enum values the orchestrator keeps in module values and in its state Secrets.

Deckhouse requires every openapi enum value to be CamelCase (dmt), internal values included. Before that the
module wrote lower-case, dashed spellings into registry-state and registry-private-state; a restart after an
upgrade reads those back, so `normalize_*` map them to the current spelling and leave anything else as is.
"""

from __future__ import annotations

# node_config.containerd.kind: which containerd hosts config the nodes get (SPEC 6.2)
KIND_NONE = "None"
KIND_TRANSITIONAL = "Transitional"
KIND_FINAL = "Final"
CONTAINERD_KINDS = (KIND_NONE, KIND_TRANSITIONAL, KIND_FINAL)

# registry_service: which pods the headless Service `registry` selects ("" = no Service)
SERVICE_NONE = ""
SERVICE_INCLUSTER_PROXY = "InClusterProxy"
SERVICE_NODE_SERVICES = "NodeServices"
REGISTRY_SERVICES = (SERVICE_NONE, SERVICE_INCLUSTER_PROXY, SERVICE_NODE_SERVICES)

_LEGACY_KINDS = {"none": KIND_NONE, "transitional": KIND_TRANSITIONAL, "final": KIND_FINAL}
_LEGACY_SERVICES = {"incluster-proxy": SERVICE_INCLUSTER_PROXY, "node-services": SERVICE_NODE_SERVICES}


def normalize_containerd_kind(value):
    return _LEGACY_KINDS.get(value, value) if isinstance(value, str) else value


def normalize_registry_service(value):
    return _LEGACY_SERVICES.get(value, value) if isinstance(value, str) else value

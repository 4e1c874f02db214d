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
"""The e2e tests and `up` run the containerd step composed by d8registry.containerd_node: it must be the chart's
NodeGroupConfiguration content byte for byte."""

from __future__ import annotations

from d8registry import containerd_node
from lib import enums, node_config

from .conftest import render_node_config

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_composed_step_is_the_chart_content(helm_bin):
    mirror_map = {node_config.FIXED_DIR: [{"scheme": "https", "host": "127.0.0.1:5001", "ca": CA,
                                           "header": {"Authorization": ["Basic cm86cA=="]}, "dial_timeout": "1s"}],
                  "nexus.example.com:8443": [{"scheme": "http", "host": "nexus.example.com:8443"}]}
    payload = node_config.containerd_payload(enums.KIND_TRANSITIONAL, mirror_map)
    rendered = render_node_config({"containerd": payload}).content("d8-registry-containerd.sh")
    assert containerd_node.step_content(payload) == rendered

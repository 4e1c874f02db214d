#!/usr/bin/env python3
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
"""Copy the user's TLS Secret for the Local push endpoint (https mode CustomCertificate, SPEC 5.8, 7.1).

Binding config and wiring only; the logic lives in hooks/lib/custom_certificate.py.
"""

from lib import custom_certificate, runner
from lib.log import Logger
from lib.values import del_path, get_path, set_path

DATA = "registry.internal.customCertificateData"

CONFIG = {
    "configVersion": "v1",
    "beforeHelm": 8,
    "kubernetes": [
        {
            "name": "custom_certificates",
            "group": "custom_certificate",
            "queue": "/modules/registry/custom-certificate",
            "apiVersion": "v1",
            "kind": "Secret",
            "namespace": {"nameSelector": {"matchNames": ["d8-system"]}},
            "fieldSelector": {"matchExpressions": [{"field": "type", "operator": "Equals",
                                                    "value": "kubernetes.io/tls"}]},
            "keepFullObjectsInMemory": False,
            "jqFilter": '{name: .metadata.name, crt: .data["tls.crt"], key: .data["tls.key"], ca: .data["ca.crt"]}',
        },
    ],
}


def main(ctx) -> None:
    choice = custom_certificate.effective(get_path(ctx.values, "registry.https"),
                                          get_path(ctx.values, "global.modules.https"))
    items = [item.get("filterResult") for item in ctx.snapshots.get("custom_certificates") or []]
    data, problem = custom_certificate.select(choice, items)
    if data is None:
        if problem:
            # the chart then renders no push Ingress at all rather than one without its certificate
            Logger("copy_custom_certificate").error("Push endpoint certificate not usable", reason=problem)
        if get_path(ctx.values, DATA) is not None:
            del_path(ctx.values, DATA)
        return
    if get_path(ctx.values, DATA) != data:
        set_path(ctx.values, DATA, data)


if __name__ == "__main__":
    runner.run(main, CONFIG)

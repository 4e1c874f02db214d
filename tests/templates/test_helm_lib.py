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
"""Behaviour of the local lib-helm subset (`templates/_helm_lib.tpl`).

Each test copies the library into a scratch chart, adds a small template that calls one helper inside an
object, renders it with the Helm v3 CLI and checks the parsed result against values derived from the input.
"""

import base64
import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

pytestmark = pytest.mark.helm

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "templates" / "_helm_lib.tpl"
RULES_ROOT = Path("monitoring") / "prometheus-rules"

PUBLIC_HELPERS = [
    "helm_lib_module_labels",
    "helm_lib_module_image",
    "helm_lib_priority_class",
    "helm_lib_node_selector",
    "helm_lib_tolerations",
    "helm_lib_module_pod_security_context_run_as_user_deckhouse",
    "helm_lib_module_container_security_context_read_only_root_filesystem_capabilities_drop_all",
    "helm_lib_module_ephemeral_storage_logs_with_extra",
    "helm_lib_ha_enabled",
    "helm_lib_pod_anti_affinity_for_ha",
    "helm_lib_deployment_on_master_strategy_and_replicas_for_ha",
    "helm_lib_envs_for_proxy",
    "helm_lib_module_public_domain",
    "helm_lib_module_https_mode",
    "helm_lib_module_https_secret_name",
    "helm_lib_module_ingress_class",
    "helm_lib_prometheus_rules",
]

ANY_NODE_KEYS = [
    "node-role.kubernetes.io/master",
    "node-role.kubernetes.io/control-plane",
    "node.deckhouse.io/etcd-arbiter",
    "dedicated.deckhouse.io",
    "dedicated",
    "DeletionCandidateOfClusterAutoscaler",
    "ToBeDeletedByClusterAutoscaler",
]
UNINITIALIZED_KEYS = ["node.deckhouse.io/bashible-uninitialized", "node.deckhouse.io/uninitialized"]
NODE_PROBLEM_KEYS = [
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/out-of-disk",
    "node.kubernetes.io/memory-pressure",
    "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/pid-pressure",
    "node.kubernetes.io/unreachable",
    "node.kubernetes.io/network-unavailable",
]
STORAGE_PROBLEM_KEYS = [
    "drbd.linbit.com/lost-quorum",
    "drbd.linbit.com/force-io-error",
    "drbd.linbit.com/ignore-fail-over",
]
NO_CSI_KEYS = ["ToBeDeletedTaint", "node.deckhouse.io/csi-not-bootstrapped"]


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def helm_cli() -> str:
    """The Helm v3 CLI: the one `make tools` installs, else the one built into the user cache."""
    candidates = [
        REPO / ".tools" / "bin" / "helm",
        Path.home() / ".cache" / "d8registry" / "tools" / "helm-v3.22.0" / "helm",
    ]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    pytest.fail(
        f"Helm v3 CLI not found (looked at {', '.join(str(p) for p in candidates)}): run `make tools`"
    )


def base_values() -> dict:
    """A realistic single-master, non-HA cluster with everything the helpers read."""
    return {
        "global": {
            "clusterIsBootstrapped": True,
            "enabledModules": ["cert-manager", "ingress-nginx", "operator-prometheus"],
            "highAvailability": False,
            "clusterConfiguration": {
                "clusterType": "Static",
                "clusterDomain": "cluster.local",
                "podSubnetCIDR": "10.111.0.0/16",
                "serviceSubnetCIDR": "10.222.0.0/16",
                "defaultCRI": "Containerd",
            },
            "discovery": {
                "clusterMasterCount": 1,
                "clusterControlPlaneIsHighlyAvailable": False,
                "clusterDomain": "cluster.local",
                "d8SpecificNodeCountByRole": {},
                "prometheusScrapeInterval": 30,
            },
            "modulesImages": {
                "registry": {"base": "registry.deckhouse.io/deckhouse/ce"},
                "digests": {
                    "registry": {
                        "distribution": "sha256:" + "1" * 64,
                        "nginx": "sha256:" + "2" * 64,
                    },
                    "common": {"pause": "sha256:" + "3" * 64},
                },
            },
            "modules": {
                "publicDomainTemplate": "%s.kube.example.com",
                "https": {"mode": "CertManager", "certManager": {"clusterIssuerName": "letsencrypt"}},
                "ingressClass": "nginx",
                "placement": {},
            },
        },
        "registry": {"internal": {}},
    }


class Rendered:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.proc = proc

    @property
    def ok(self) -> bool:
        return self.proc.returncode == 0

    @property
    def stderr(self) -> str:
        return self.proc.stderr

    def docs(self) -> list[dict]:
        assert self.ok, f"helm template failed:\n{self.proc.stderr}"
        return [d for d in yaml.safe_load_all(self.proc.stdout) if d]

    def doc(self, kind: str, name: str) -> dict:
        found = [
            d for d in self.docs() if d.get("kind") == kind and d.get("metadata", {}).get("name") == name
        ]
        assert len(found) == 1, f"expected one {kind}/{name}, got {len(found)}:\n{self.proc.stdout}"
        return found[0]


@pytest.fixture
def render(tmp_path, helm_cli):
    """render(template_text, values, files={relative path: text}, chart_name="registry") -> Rendered."""
    counter = {"n": 0}

    def _render(
        template: str, values: dict, files: dict | None = None, chart_name: str = "registry"
    ) -> Rendered:
        counter["n"] += 1
        chart = tmp_path / f"chart{counter['n']}"
        (chart / "templates").mkdir(parents=True)
        shutil.copy(LIBRARY, chart / "templates" / "_helm_lib.tpl")
        (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {chart_name}\nversion: 0.0.1\n")
        (chart / "templates" / "under-test.yaml").write_text(template)
        for rel, text in (files or {}).items():
            target = chart / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        values_file = tmp_path / f"values{counter['n']}.json"
        values_file.write_text(json.dumps(values))
        proc = subprocess.run(
            [
                helm_cli,
                "template",
                chart_name,
                str(chart),
                "--namespace",
                "d8-system",
                "-f",
                str(values_file),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Rendered(proc)

    return _render


def holder(body: str, name: str = "probe") -> str:
    """A ConfigMap-shaped object whose `spec` carries a helper's YAML fragment (indented by the caller)."""
    return f"apiVersion: v1\nkind: Probe\nmetadata:\n  name: {name}\nspec:\n{body}\n"


def scalar(include_expr: str) -> str:
    """A template that puts one helper's string result into data.value."""
    return holder(f"  value: {{{{ {include_expr} | quote }}}}")


def value_of(rendered: Rendered) -> str:
    return rendered.doc("Probe", "probe")["spec"]["value"]


def fragment(include_expr: str) -> str:
    return holder(f"  {{{{- {include_expr} | nindent 2 }}}}")


def spec_of(rendered: Rendered) -> dict:
    return rendered.doc("Probe", "probe")["spec"] or {}


def with_(values: dict, path: str, value) -> dict:
    """Copy of values with the dotted path set (None deletes the key)."""
    out = copy.deepcopy(values)
    node = out
    *parents, leaf = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    if value is None:
        node.pop(leaf, None)
    else:
        node[leaf] = value
    return out


# --------------------------------------------------------------------------------------------- library file


def test_library_defines_every_helper_the_chart_uses():
    text = LIBRARY.read_text()
    defined = set(re.findall(r'define\s+"([^"]+)"', text))
    missing = [name for name in PUBLIC_HELPERS if name not in defined]
    assert not missing, f"missing helpers: {missing}"
    private = {name for name in defined if not name.startswith(("helm_lib_", "registry_"))}
    assert not private, f"helpers must be prefixed helm_lib_ or registry_: {sorted(private)}"


# --------------------------------------------------------------------------------------------- labels


def test_labels_carry_heritage_module_and_extras(render):
    extras = {"app": "registry", "component": "registry-service", "type": "incluster-proxy"}
    args = " ".join(f'"{k}" "{v}"' for k, v in extras.items())
    out = render(
        f"apiVersion: v1\nkind: Probe\nmetadata:\n  name: probe\n"
        f'  {{{{- include "helm_lib_module_labels" (list . (dict {args})) | nindent 2 }}}}\n',
        base_values(),
    )
    labels = out.doc("Probe", "probe")["metadata"]["labels"]
    assert labels == {"heritage": "deckhouse", "module": "registry", **extras}


def test_labels_without_extras_and_module_from_chart_name(render):
    out = render(
        "apiVersion: v1\nkind: Probe\nmetadata:\n  name: probe\n"
        '  {{- include "helm_lib_module_labels" (list .) | nindent 2 }}\n',
        base_values(),
        chart_name="some-module",
    )
    assert out.doc("Probe", "probe")["metadata"]["labels"] == {
        "heritage": "deckhouse",
        "module": "some-module",
    }


# --------------------------------------------------------------------------------------------- images


@pytest.mark.parametrize("image", ["distribution", "nginx"])
def test_image_is_base_at_digest(render, image):
    values = base_values()
    out = render(scalar(f'include "helm_lib_module_image" (list . "{image}")'), values)
    base = values["global"]["modulesImages"]["registry"]["base"]
    digest = values["global"]["modulesImages"]["digests"]["registry"][image]
    assert value_of(out) == f"{base}@{digest}"


def test_image_module_comes_from_camelcased_chart_name(render):
    values = base_values()
    digest = "sha256:" + "a" * 64
    values["global"]["modulesImages"]["digests"]["registryExtra"] = {"tool": digest}
    out = render(
        scalar('include "helm_lib_module_image" (list . "tool")'), values, chart_name="registry-extra"
    )
    assert value_of(out) == f"{values['global']['modulesImages']['registry']['base']}@{digest}"


def test_image_of_another_module_by_third_argument(render):
    values = base_values()
    out = render(scalar('include "helm_lib_module_image" (list . "pause" "common")'), values)
    assert (
        value_of(out)
        == "registry.deckhouse.io/deckhouse/ce@"
        + values["global"]["modulesImages"]["digests"]["common"]["pause"]
    )


@pytest.mark.parametrize(
    "values_change",
    [
        lambda v: v["global"]["modulesImages"]["digests"]["registry"].pop("distribution"),
        lambda v: v["global"]["modulesImages"]["digests"].pop("registry"),
        lambda v: v["global"]["modulesImages"]["digests"]["registry"].__setitem__("distribution", ""),
    ],
    ids=["image-missing", "module-missing", "empty-digest"],
)
def test_missing_digest_fails_with_clear_message(render, values_change):
    values = base_values()
    values_change(values)
    out = render(scalar('include "helm_lib_module_image" (list . "distribution")'), values)
    assert not out.ok
    assert "Image registry.distribution has no digest" in out.stderr
    assert "global.modulesImages.digests.registry.distribution" in out.stderr


def test_missing_registry_base_fails(render):
    values = with_(base_values(), "global.modulesImages.registry.base", None)
    out = render(scalar('include "helm_lib_module_image" (list . "distribution")'), values)
    assert not out.ok
    assert "global.modulesImages.registry.base is not set" in out.stderr


# --------------------------------------------------------------------------------------------- scheduling


@pytest.mark.parametrize("klass", ["system-cluster-critical", "system-node-critical"])
def test_priority_class(render, klass):
    out = render(fragment(f'include "helm_lib_priority_class" (tuple . "{klass}")'), base_values())
    assert spec_of(out) == {"priorityClassName": klass}


@pytest.mark.parametrize(
    ("masters", "by_role", "expected"),
    [
        (3, {}, {"node-role.kubernetes.io/control-plane": ""}),
        (0, {"master": 2}, {"node-role.deckhouse.io/control-plane": ""}),
        (0, {"system": 1}, {"node-role.deckhouse.io/system": ""}),
        (0, {}, None),
    ],
)
def test_node_selector_master(render, masters, by_role, expected):
    values = with_(base_values(), "global.discovery.clusterMasterCount", masters)
    values["global"]["discovery"]["d8SpecificNodeCountByRole"] = by_role
    out = render(fragment('include "helm_lib_node_selector" (tuple . "master")'), values)
    assert spec_of(out).get("nodeSelector") == expected


def test_node_selector_system_prefers_module_setting_then_roles(render):
    values = base_values()
    values["global"]["discovery"]["d8SpecificNodeCountByRole"] = {"system": 2}
    tpl = fragment('include "helm_lib_node_selector" (tuple . "system")')
    assert spec_of(render(tpl, values))["nodeSelector"] == {"node-role.deckhouse.io/system": ""}
    values["registry"]["nodeSelector"] = {"node.example/pool": "infra"}
    assert spec_of(render(tpl, values))["nodeSelector"] == {"node.example/pool": "infra"}


def test_node_selector_unknown_strategy_fails(render):
    out = render(fragment('include "helm_lib_node_selector" (tuple . "everywhere")'), base_values())
    assert not out.ok
    assert 'unknown strategy "everywhere"' in out.stderr


def tolerations_of(render, values, *strategies) -> list[dict]:
    args = " ".join(f'"{s}"' for s in strategies)
    out = render(fragment(f'include "helm_lib_tolerations" (tuple . {args})'), values)
    return spec_of(out)["tolerations"]


def test_tolerations_any_node_with_uninitialized_static_cluster(render):
    tolerations = tolerations_of(render, base_values(), "any-node", "with-uninitialized")
    keys = [t.get("key") for t in tolerations]
    assert keys == ANY_NODE_KEYS + STORAGE_PROBLEM_KEYS + UNINITIALIZED_KEYS + NODE_PROBLEM_KEYS
    by_key = {t["key"]: t for t in tolerations}
    for key in UNINITIALIZED_KEYS:
        assert by_key[key] == {"key": key, "operator": "Exists", "effect": "NoSchedule"}
    assert by_key["dedicated.deckhouse.io"] == {"key": "dedicated.deckhouse.io", "operator": "Exists"}


@pytest.mark.parametrize(
    ("cluster_type", "modules", "expect_no_csi"),
    [
        ("Cloud", [], True),
        ("Static", ["cloud-provider-openstack"], True),
        ("Static", ["cni-cilium"], False),
    ],
)
def test_tolerations_uninitialized_adds_no_csi_on_cloud_or_hybrid(
    render, cluster_type, modules, expect_no_csi
):
    values = with_(base_values(), "global.clusterConfiguration.clusterType", cluster_type)
    values["global"]["enabledModules"] = modules
    keys = [t.get("key") for t in tolerations_of(render, values, "any-node", "with-uninitialized")]
    assert all((k in keys) == expect_no_csi for k in NO_CSI_KEYS)


def test_tolerations_custom_keys_and_without(render):
    custom = ["example.com/gpu", "example.com/infra"]
    values = with_(base_values(), "global.modules.placement.customTolerationKeys", custom)
    tolerations = tolerations_of(render, values, "any-node", "without-storage-problems")
    keys = [t.get("key") for t in tolerations]
    assert keys == ANY_NODE_KEYS + custom
    for key in custom:
        assert {"key": key, "operator": "Exists"} in tolerations


def test_tolerations_system_uses_dedicated_taints_or_module_override(render):
    values = base_values()
    tolerations = tolerations_of(render, values, "system", "without-storage-problems")
    assert tolerations == [
        {"key": "dedicated.deckhouse.io", "operator": "Equal", "value": "registry"},
        {"key": "dedicated.deckhouse.io", "operator": "Equal", "value": "system"},
    ]
    own = [{"key": "example.com/only-here", "operator": "Exists", "effect": "NoExecute"}]
    values["registry"]["tolerations"] = own
    assert tolerations_of(render, values, "system", "without-storage-problems") == own


def test_tolerations_wildcard_and_unknown(render):
    assert tolerations_of(render, base_values(), "wildcard") == [{"operator": "Exists"}]
    out = render(fragment('include "helm_lib_tolerations" (tuple . "nowhere")'), base_values())
    assert not out.ok
    assert 'unknown strategy "nowhere"' in out.stderr


def test_tolerations_cloud_provider_uninitialized_only_before_bootstrap(render):
    key = "node.cloudprovider.kubernetes.io/uninitialized"
    strategies = ("custom", "with-cloud-provider-uninitialized")
    values = with_(base_values(), "global.clusterIsBootstrapped", False)
    assert tolerations_of(render, values, *strategies) == [{"key": key, "operator": "Exists"}]
    values["global"]["clusterIsBootstrapped"] = True
    assert not tolerations_of(render, values, *strategies)


# --------------------------------------------------------------------------------------------- security, storage


def test_pod_security_context_deckhouse_user(render):
    out = render(
        fragment('include "helm_lib_module_pod_security_context_run_as_user_deckhouse" .'), base_values()
    )
    assert spec_of(out)["securityContext"] == {"runAsNonRoot": True, "runAsUser": 64535, "runAsGroup": 64535}


def test_container_security_context_read_only_drop_all(render):
    helper = "helm_lib_module_container_security_context_read_only_root_filesystem_capabilities_drop_all"
    out = render(fragment(f'include "{helper}" .'), base_values())
    assert spec_of(out)["securityContext"] == {
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }


@pytest.mark.parametrize("extra", [0, 10, 37])
def test_ephemeral_storage_logs_with_extra(render, extra):
    out = render(
        fragment(f'include "helm_lib_module_ephemeral_storage_logs_with_extra" {extra}'), base_values()
    )
    assert spec_of(out) == {"ephemeral-storage": f"{50 + extra}Mi"}


# --------------------------------------------------------------------------------------------- high availability


HA_CASES = [
    # (module highAvailability, global.highAvailability, clusterControlPlaneIsHighlyAvailable, expected)
    (None, True, False, True),
    (None, False, True, False),
    (None, None, True, True),
    (None, None, False, False),
    (True, False, False, True),
    (False, True, True, False),
]


@pytest.mark.parametrize(("module_ha", "global_ha", "cp_ha", "expected"), HA_CASES)
def test_ha_enabled_decision_order(render, module_ha, global_ha, cp_ha, expected):
    values = with_(base_values(), "global.highAvailability", global_ha)
    values = with_(values, "global.discovery.clusterControlPlaneIsHighlyAvailable", cp_ha)
    values = with_(values, "registry.highAvailability", module_ha)
    template = holder(
        '  enabled: {{ include "helm_lib_ha_enabled" . | quote }}\n'
        '  replicasIfHa: {{ include "helm_lib_is_ha_to_value" (list . 7 1) }}'
    )
    spec = spec_of(render(template, values))
    assert bool(spec["enabled"]) is expected
    assert spec["replicasIfHa"] == (7 if expected else 1)


def deployment_spec(render, values) -> dict:
    template = holder(
        '  {{- include "helm_lib_deployment_on_master_strategy_and_replicas_for_ha" . | nindent 2 }}\n'
        "  template:\n"
        "    spec:\n"
        '      {{- include "helm_lib_pod_anti_affinity_for_ha" (list . (dict "app" "registry" "type" "incluster-proxy")) | nindent 6 }}'
    )
    return spec_of(render(template, values))


@pytest.mark.parametrize("masters", [1, 2, 3, 5])
def test_replicas_follow_master_count_under_ha(render, masters):
    values = with_(base_values(), "global.highAvailability", True)
    values["global"]["discovery"]["clusterMasterCount"] = masters
    spec = deployment_spec(render, values)
    assert spec["replicas"] == masters
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 2 if masters > 2 else 1},
    }
    term = spec["template"]["spec"]["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term == [
        {
            "labelSelector": {"matchLabels": {"app": "registry", "type": "incluster-proxy"}},
            "topologyKey": "kubernetes.io/hostname",
        }
    ]


def test_replicas_capped_by_schedulable_masters(render):
    values = with_(base_values(), "global.highAvailability", True)
    values["global"]["discovery"].update(clusterMasterCount=3, clusterSchedulableMasterCount=2)
    assert deployment_spec(render, values)["replicas"] == 2
    values["global"]["discovery"]["clusterSchedulableMasterCount"] = 0
    assert deployment_spec(render, values)["replicas"] == 1


def test_replicas_under_ha_without_master_count(render):
    values = with_(base_values(), "global.highAvailability", True)
    values["global"]["discovery"]["clusterMasterCount"] = 0
    assert deployment_spec(render, values)["replicas"] == 2
    values["global"]["discovery"]["d8SpecificNodeCountByRole"] = {"master": 3}
    assert deployment_spec(render, values)["replicas"] == 3


@pytest.mark.parametrize("masters", [1, 3])
def test_single_replica_and_no_anti_affinity_without_ha(render, masters):
    values = with_(base_values(), "global.discovery.clusterMasterCount", masters)
    spec = deployment_spec(render, values)
    assert spec["replicas"] == 1
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    assert "affinity" not in (spec["template"]["spec"] or {})


def test_anti_affinity_revision_scoped(render):
    values = with_(base_values(), "global.highAvailability", True)
    template = fragment(
        'include "helm_lib_pod_anti_affinity_for_ha" (list . (dict "app" "x") (dict "revisionScoped" true))'
    )
    term = spec_of(render(template, values))["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ][0]
    assert term["matchLabelKeys"] == ["pod-template-hash"]
    assert term["labelSelector"] == {"matchLabels": {"app": "x"}}


# --------------------------------------------------------------------------------------------- proxy


def env_of(render, values, call: str = 'include "helm_lib_envs_for_proxy" .') -> dict[str, str]:
    out = render(holder(f"  env:\n  {{{{- {call} | nindent 2 }}}}"), values)
    items = spec_of(out)["env"] or []
    names = [i["name"] for i in items]
    assert len(names) == len(set(names)), f"duplicate env names: {names}"
    return {i["name"]: i["value"] for i in items}


def test_no_proxy_envs_without_cluster_proxy(render):
    assert env_of(render, base_values()) == {}
    values = with_(base_values(), "global.clusterConfiguration", None)
    assert env_of(render, values) == {}


def test_proxy_envs_and_no_proxy_merge(render):
    proxy = {
        "httpProxy": "http://proxy.example:3128",
        "httpsProxy": "https://user:pw@proxy.example:3129",
        "noProxy": ["internal.example", "10.0.0.0/8"],
    }
    values = with_(base_values(), "global.clusterConfiguration.proxy", proxy)
    cc = values["global"]["clusterConfiguration"]
    env = env_of(render, values)
    assert env["HTTP_PROXY"] == env["http_proxy"] == proxy["httpProxy"]
    assert env["HTTPS_PROXY"] == env["https_proxy"] == proxy["httpsProxy"]
    expected = [
        "127.0.0.1",
        "169.254.169.254",
        "registry.d8-system.svc",
        cc["clusterDomain"],
        cc["podSubnetCIDR"],
        cc["serviceSubnetCIDR"],
        *proxy["noProxy"],
    ]
    assert env["NO_PROXY"].split(",") == expected
    assert env["no_proxy"] == env["NO_PROXY"]


def test_proxy_envs_only_configured_scheme_and_extra_no_proxy(render):
    values = with_(
        base_values(), "global.clusterConfiguration.proxy", {"httpsProxy": "http://p.example:8080"}
    )
    env = env_of(
        render, values, 'include "helm_lib_envs_for_proxy" (list . (list "upstream.example" "10.9.8.7"))'
    )
    assert "HTTP_PROXY" not in env and "http_proxy" not in env
    assert env["HTTPS_PROXY"] == "http://p.example:8080"
    assert env["NO_PROXY"].split(",")[-2:] == ["upstream.example", "10.9.8.7"]
    assert "cluster.local" in env["NO_PROXY"].split(",")


# --------------------------------------------------------------------------------------------- domain, https, ingress


@pytest.mark.parametrize("template", ["%s.kube.example.com", "%s-cluster1.apps.example.org"])
def test_public_domain(render, template):
    values = with_(base_values(), "global.modules.publicDomainTemplate", template)
    out = render(scalar('include "helm_lib_module_public_domain" (list . "registry")'), values)
    assert value_of(out) == template % "registry"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("kube.example.com", "must contain"),
        (None, "must contain"),
        ("%s." + "x" * 60 + ".example.com", "not longer than 64"),
    ],
)
def test_public_domain_failures(render, template, message):
    values = with_(base_values(), "global.modules.publicDomainTemplate", template)
    out = render(scalar('include "helm_lib_module_public_domain" (list . "registry")'), values)
    assert not out.ok
    assert message in out.stderr


def https_values(global_mode: str, module_mode: str | None = None, enabled=("cert-manager",)) -> dict:
    values = with_(base_values(), "global.modules.https.mode", global_mode)
    values["global"]["enabledModules"] = list(enabled)
    if module_mode is not None:
        values["registry"]["https"] = {"mode": module_mode}
    return values


@pytest.mark.parametrize(
    ("global_mode", "module_mode", "expected"),
    [
        ("CertManager", None, "CertManager"),
        ("OnlyInURI", None, "OnlyInURI"),
        ("CertManager", "CustomCertificate", "CustomCertificate"),
        ("Disabled", "CertManager", "CertManager"),
        ("CustomCertificate", "Disabled", "Disabled"),
    ],
)
def test_https_mode_module_then_global(render, global_mode, module_mode, expected):
    out = render(scalar('include "helm_lib_module_https_mode" .'), https_values(global_mode, module_mode))
    assert value_of(out) == expected


def test_https_mode_module_https_without_mode_falls_back(render):
    values = https_values("OnlyInURI")
    values["registry"]["https"] = {"certManager": {"clusterIssuerName": "own"}}
    assert value_of(render(scalar('include "helm_lib_module_https_mode" .'), values)) == "OnlyInURI"


def test_https_mode_unknown_fails(render):
    out = render(scalar('include "helm_lib_module_https_mode" .'), https_values("CertManager", "Sometimes"))
    assert not out.ok
    assert 'Unknown https.mode: "Sometimes"' in out.stderr


def test_https_cert_manager_requires_the_module(render):
    values = https_values("CertManager", enabled=())
    out = render(scalar('include "helm_lib_module_https_mode" .'), values)
    assert not out.ok
    assert "cert-manager module not enabled" in out.stderr
    unchecked = render(scalar('include "registry_https_mode_unchecked" .'), values)
    assert value_of(unchecked) == "CertManager"


@pytest.mark.parametrize(
    ("module_https", "global_issuer", "expected"),
    [
        (
            {"mode": "CertManager", "certManager": {"clusterIssuerName": "own-issuer"}},
            "global-issuer",
            "own-issuer",
        ),
        ({"mode": "CertManager"}, "global-issuer", "global-issuer"),
        (None, "global-issuer", "global-issuer"),
        (None, None, "letsencrypt"),
    ],
)
def test_https_cluster_issuer(render, module_https, global_issuer, expected):
    values = https_values("CertManager")
    values = with_(
        values,
        "global.modules.https.certManager",
        {"clusterIssuerName": global_issuer} if global_issuer else None,
    )
    if module_https:
        values["registry"]["https"] = module_https
    out = render(scalar('include "helm_lib_module_https_cert_manager_cluster_issuer_name" .'), values)
    assert value_of(out) == expected


@pytest.mark.parametrize("prefix", ["registry-ingress-tls", "other-tls"])
@pytest.mark.parametrize(
    ("mode", "suffix"),
    [("CertManager", ""), ("CustomCertificate", "-customcertificate")],
)
def test_https_secret_name(render, prefix, mode, suffix):
    out = render(
        scalar(f'include "helm_lib_module_https_secret_name" (list . "{prefix}")'), https_values(mode)
    )
    assert value_of(out) == prefix + suffix


@pytest.mark.parametrize("mode", ["Disabled", "OnlyInURI"])
def test_https_secret_name_fails_without_tls_secret(render, mode):
    out = render(
        scalar('include "helm_lib_module_https_secret_name" (list . "registry-ingress-tls")'),
        https_values(mode),
    )
    assert not out.ok
    assert "https.mode must be CustomCertificate or CertManager" in out.stderr


@pytest.mark.parametrize(
    ("mode", "tls"),
    [("CertManager", True), ("CustomCertificate", True), ("OnlyInURI", False), ("Disabled", False)],
)
def test_https_ingress_tls_enabled_and_scheme(render, mode, tls):
    template = holder(
        '  tls: {{ include "helm_lib_module_https_ingress_tls_enabled" . | quote }}\n'
        '  scheme: {{ include "helm_lib_module_uri_scheme" . | quote }}'
    )
    spec = spec_of(render(template, https_values(mode)))
    assert bool(spec["tls"]) is tls
    assert spec["scheme"] == ("http" if mode == "Disabled" else "https")


def test_custom_certificate_secret_is_base64_of_pem(render):
    values = https_values("CustomCertificate")
    pem = {
        "tls.crt": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "tls.key": "-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n",
        "ca.crt": "-----BEGIN CERTIFICATE-----\nCCCC\n-----END CERTIFICATE-----\n",
    }
    values["registry"]["internal"]["customCertificateData"] = pem
    out = render(
        '{{- include "helm_lib_module_https_copy_custom_certificate" (list . "d8-system" "registry-ingress-tls") }}\n',
        values,
    )
    secret = out.doc("Secret", "registry-ingress-tls-customcertificate")
    assert secret["metadata"]["namespace"] == "d8-system"
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"]["labels"] == {"heritage": "deckhouse", "module": "registry", "app": "registry"}
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == pem
    # Any other mode renders nothing.
    values["global"]["modules"]["https"]["mode"] = "CertManager"
    assert (
        render(
            '{{- include "helm_lib_module_https_copy_custom_certificate" (list . "d8-system" "x") }}\n',
            values,
        ).docs()
        == []
    )


@pytest.mark.parametrize(
    ("module", "global_modules", "expected"),
    [
        ({"ingressClass": "own"}, {"ingressClass": "nginx"}, "own"),
        ({}, {"ingressClass": "nginx-global"}, "nginx-global"),
        ({}, {"ingress": {"ingressClass": "new-style"}, "ingressClass": "old-style"}, "new-style"),
        (
            {"ingress": {"ingressClass": "mod-new"}, "ingressClass": "mod-old"},
            {"ingressClass": "g"},
            "mod-new",
        ),
        ({}, {}, ""),
    ],
)
def test_ingress_class_fallback(render, module, global_modules, expected):
    values = base_values()
    values["registry"].update(module)
    values["global"]["modules"] = {**global_modules, "publicDomainTemplate": "%s.example.com"}
    assert value_of(render(scalar('include "helm_lib_module_ingress_class" .'), values)) == expected


# --------------------------------------------------------------------------------------------- prometheus rules


RULES = [
    {
        "name": "d8.registry-test",
        "rules": [
            {
                "alert": "D8RegistryProbeAlert",
                "expr": "d8_registry_input_valid == 0",
                "for": "__SCRAPE_INTERVAL_X_2__",
                "labels": {"severity_level": "5", "tier": "cluster", "d8_module": "registry"},
                "annotations": {"plk_protocol_version": "1", "summary": "probe"},
            },
            {
                "alert": "D8RegistryMutedOnUpdate",
                "expr": "up == 0",
                "for": "__SCRAPE_INTERVAL__",
                "annotations": {"d8_ignore_on_update": "true"},
            },
        ],
    }
]
MONITORING_TEMPLATE = '{{- include "helm_lib_prometheus_rules" (list . "d8-monitoring") }}\n'


@pytest.mark.parametrize("interval", [30, 15])
def test_prometheus_rules_from_chart_files(render, interval):
    values = with_(base_values(), "global.discovery.prometheusScrapeInterval", interval)
    files = {
        str(RULES_ROOT / "registry.yaml"): yaml.safe_dump(RULES),
        str(RULES_ROOT / "node_services" / "storage.v2.yaml"): yaml.safe_dump(
            [{"name": "nested", "rules": [{"record": "r", "expr": "1"}]}]
        ),
    }
    out = render(MONITORING_TEMPLATE, values, files)
    rule = out.doc("PrometheusRule", "registry-registry")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == "d8-monitoring"
    assert rule["metadata"]["labels"] == {
        "heritage": "deckhouse",
        "module": "registry",
        "app": "prometheus",
        "prometheus": "main",
        "component": "rules",
    }
    groups = rule["spec"]["groups"]
    assert [g["name"] for g in groups] == [RULES[0]["name"]]
    first, muted = groups[0]["rules"]
    assert first["alert"] == RULES[0]["rules"][0]["alert"]
    assert first["expr"] == RULES[0]["rules"][0]["expr"]
    assert first["labels"] == RULES[0]["rules"][0]["labels"]
    assert first["annotations"] == RULES[0]["rules"][0]["annotations"]
    assert first["for"] == f"{interval * 2}s"
    assert muted["for"] == f"{interval}s"
    assert muted["expr"] == "(up == 0) and ON() ((max(d8_is_updating) != 1) or ON() absent(d8_is_updating))"
    nested = out.doc("PrometheusRule", "registry-node-services-storage-v2")
    assert nested["spec"]["groups"] == [{"name": "nested", "rules": [{"record": "r", "expr": "1"}]}]
    assert len([d for d in out.docs() if d["kind"] == "PrometheusRule"]) == 2


def test_prometheus_rules_tpl_files_are_templated(render):
    files = {
        str(
            RULES_ROOT / "dynamic.tpl"
        ): '- name: {{ .Chart.Name }}.dynamic\n  rules:\n  - record: x\n    expr: "1"\n'
    }
    out = render(MONITORING_TEMPLATE, base_values(), files)
    assert out.doc("PrometheusRule", "registry-dynamic")["spec"]["groups"][0]["name"] == "registry.dynamic"


@pytest.mark.parametrize("modules", [["operator-prometheus"], ["operator-prometheus-crd"], []])
def test_prometheus_rules_only_with_prometheus_operator(render, modules):
    values = base_values()
    values["global"]["enabledModules"] = modules
    out = render(MONITORING_TEMPLATE, values, {str(RULES_ROOT / "registry.yaml"): yaml.safe_dump(RULES)})
    names = [d["metadata"]["name"] for d in out.docs() if d["kind"] == "PrometheusRule"]
    assert names == (["registry-registry"] if modules else [])


def test_prometheus_rules_invalid_yaml_fails(render):
    out = render(
        MONITORING_TEMPLATE, base_values(), {str(RULES_ROOT / "broken.yaml"): "- name: x\n  rules: [\n"}
    )
    assert not out.ok
    assert "broken.yaml" in out.stderr


def test_real_rules_file_renders_when_present(render):
    """The module's own rules (if already written) go through the helper without errors."""
    sources = sorted((REPO / RULES_ROOT).rglob("*.yaml")) if (REPO / RULES_ROOT).is_dir() else []
    if not sources:
        pytest.skip("monitoring/prometheus-rules has no files yet")
    files = {str(p.relative_to(REPO)): p.read_text() for p in sources}
    out = render(MONITORING_TEMPLATE, base_values(), files)
    assert len([d for d in out.docs() if d["kind"] == "PrometheusRule"]) == len(sources)


# --------------------------------------------------------------------------------------------- composition


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: registry-incluster-proxy
  namespace: d8-system
  {{- include "helm_lib_module_labels" (list . (dict "app" "registry" "component" "registry-service")) | nindent 2 }}
spec:
  {{- include "helm_lib_deployment_on_master_strategy_and_replicas_for_ha" . | nindent 2 }}
  revisionHistoryLimit: 2
  selector:
    matchLabels:
      app: registry
  template:
    metadata:
      labels:
        app: registry
    spec:
      {{- include "helm_lib_priority_class" (tuple . "system-cluster-critical") | nindent 6 }}
      {{- include "helm_lib_node_selector" (tuple . "master") | nindent 6 }}
      {{- include "helm_lib_tolerations" (tuple . "any-node" "with-uninitialized") | nindent 6 }}
      {{- include "helm_lib_pod_anti_affinity_for_ha" (list . (dict "app" "registry")) | nindent 6 }}
      {{- include "helm_lib_module_pod_security_context_run_as_user_deckhouse" . | nindent 6 }}
        seccompProfile:
          type: RuntimeDefault
      automountServiceAccountToken: false
      containers:
      - name: distribution
        image: {{ include "helm_lib_module_image" (list . "distribution") }}
        {{- include "helm_lib_module_container_security_context_read_only_root_filesystem_capabilities_drop_all" . | nindent 8 }}
        env:
        - name: PLACEHOLDER
          value: "1"
        {{- include "helm_lib_envs_for_proxy" . | nindent 8 }}
        resources:
          requests:
            {{- include "helm_lib_module_ephemeral_storage_logs_with_extra" 10 | nindent 12 }}
"""


@pytest.mark.parametrize("ha", [False, True])
def test_helpers_compose_into_a_valid_deployment(render, ha):
    values = with_(base_values(), "global.highAvailability", ha)
    values["global"]["discovery"]["clusterMasterCount"] = 3
    values["global"]["clusterConfiguration"]["proxy"] = {
        "httpProxy": "http://proxy:3128",
        "noProxy": ["x.example"],
    }
    deployment = render(DEPLOYMENT, values).doc("Deployment", "registry-incluster-proxy")
    kubernetes_validate.validate(deployment, "1.33", strict=True)
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == (3 if ha else 1)
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ("affinity" in pod) is ha
    assert {e["name"] for e in pod["containers"][0]["env"]} >= {"PLACEHOLDER", "HTTP_PROXY", "NO_PROXY"}

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
"""SPEC 2.4 / 3.7 on a real API server: `kubectl apply` of ModuleConfig 'deckhouse' (and 'registry') is
accepted or refused with the spec's exact message, by the policies the chart renders.

The policies read ConfigMap d8-system/registry-admission-params, rendered by Helm from the orchestrator
state; each case renders it for the state it needs. hooks/lib/admission.py (what `plan` says) must give
the same answer as the server in every case.
"""

from __future__ import annotations

import copy
import time
import uuid

import pytest
from d8registry import helm
from lib import admission, messages, settings, transitions

from .conftest import KubectlError, call_denial, denial

# The policy objects are applied server-side, as test_rendered_objects applies them later in the same server:
# a client-side apply leaves a last-applied annotation that a server-side apply then conflicts on.
SERVER_SIDE = ("--server-side", "--force-conflicts")

POLICY_KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
# how long a params or policy change may take to reach the admission plugin (bounded in count and time)
EVENTUAL_TRIES, EVENTUAL_SECONDS = 200, 60
REPO = "registry.example.com/deckhouse/ee"
PARAMS_PATH = "/api/v1/namespaces/d8-system/configmaps/registry-admission-params"
MODULE_CONFIGS = "/apis/deckhouse.io/v1alpha1/moduleconfigs"

MATRIX_FROM = {
    # label: orchestrator state of a finished switch
    "Unmanaged (legacy)": {"mode": "Unmanaged", "target_mode": "Unmanaged", "target_legacy": True},
    "Unmanaged (cfg)": {"mode": "Unmanaged", "target_mode": "Unmanaged", "target_legacy": False},
    "Direct": {"mode": "Direct", "target_mode": "Direct", "target_legacy": False},
    "Proxy": {"mode": "Proxy", "target_mode": "Proxy", "target_legacy": False},
    "Local": {"mode": "Local", "target_mode": "Local", "target_legacy": False},
}


def request(target: str) -> dict:
    """A fresh registry section for a requested mode; unique where the mode takes parameters."""
    repo = f"{REPO}-{uuid.uuid4().hex[:8]}"
    return {
        "Unmanaged (legacy)": {},
        "Unmanaged (cfg)": {"mode": "Unmanaged", "unmanaged": {"imagesRepo": repo}},
        "Direct": {"mode": "Direct", "direct": {"imagesRepo": repo, "license": "k"}},
        "Proxy": {"mode": "Proxy", "proxy": {"imagesRepo": repo, "username": "u", "password": "p", "ttl": "1h"}},
        "Local": {"mode": "Local"},
    }[target]


def matrix_message(source: str, target: str) -> str | None:
    """The expected answer, from the transition matrix of the hooks (SPEC 2.4)."""
    mode = "Unmanaged" if target.startswith("Unmanaged") else target
    legacy = target == "Unmanaged (legacy)"
    if transitions.allowed(source.split(" ")[0], mode, legacy):
        return None
    return messages.ADMISSION_LEGACY_FROM_LOCAL if legacy else messages.ADMISSION_LOCAL_PROXY


class Admission:
    """The cluster side of the policies: params state, the stored ModuleConfigs, probes."""

    def __init__(self, server, repo_root, rendered: list[dict], values: dict):
        self.server = server
        self.repo_root = repo_root
        self.values = values
        self.policies = [obj for obj in rendered if obj["kind"] in POLICY_KINDS]
        self.state_key = None
        self.data: dict[str, str] | None = None
        self.stored: dict | None = None  # registry section of the stored ModuleConfig 'deckhouse'

    def module_config(self, name: str, spec: dict) -> dict:
        return {"apiVersion": "deckhouse.io/v1alpha1", "kind": "ModuleConfig", "metadata": {"name": name},
                "spec": spec}

    def deckhouse(self, registry: dict | None, **extra) -> dict:
        settings_ = dict(extra)
        if registry is not None:
            settings_["registry"] = registry
        return self.module_config("deckhouse", {"version": 1, "enabled": True, "settings": settings_})

    def try_registry(self, registry: dict | None, *, dry_run: bool = False, **extra) -> str | None:
        """kubectl apply of ModuleConfig 'deckhouse'; the denial message, or None when accepted."""
        args = ("--dry-run=server",) if dry_run else ()
        found = denial(self.server.apply(self.deckhouse(registry, **extra), *args, check=False))
        if found is None and not dry_run:
            self.stored = copy.deepcopy(registry) if registry is not None else {}
        return found

    def render_params(self, state: dict, *, cluster_type: str, bootstrapped: bool) -> dict:
        values = copy.deepcopy(self.values)
        values["registry"]["internal"]["orchestrator"]["state"].update(state)
        values["global"]["clusterConfiguration"]["clusterType"] = cluster_type
        values["global"]["clusterIsBootstrapped"] = bootstrapped
        [params] = [obj for obj in helm.render(self.repo_root, values)
                    if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "registry-admission-params"]
        return params

    def eventually(self, probe, expected) -> object:
        """Re-run probe until it returns expected (bounded); returns the last answer for the assert."""
        deadline = time.monotonic() + EVENTUAL_SECONDS
        for _ in range(EVENTUAL_TRIES):
            answer = probe()
            if answer == expected or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        return answer

    def dry_run(self, registry: dict | None) -> str | None:
        """A server dry run of ModuleConfig 'deckhouse' with this registry section, as `kubectl apply` would
        leave it; the denial message or None. It is sent from this process: it only tells when a change
        reached the admission plugin, the verdicts under test go through kubectl."""
        spec = self.deckhouse(registry)["spec"]
        status, answer = self.server.call("PATCH", f"{MODULE_CONFIGS}/deckhouse?dryRun=All",
                                          [{"op": "replace", "path": "/spec", "value": spec}],
                                          "application/json-patch+json")
        if status == 404:  # not created yet (or deleted by a test): the create is judged by the same policy
            status, answer = self.server.call("POST", f"{MODULE_CONFIGS}?dryRun=All",
                                              self.module_config("deckhouse", spec))
        return call_denial(status, answer)

    def _probe(self) -> str | None:
        # allowed from every mode once bootstrapped, refused by the freeze otherwise
        return self.dry_run(request("Direct"))

    def _write_params(self, params: dict) -> None:
        """The rendered params ConfigMap, server-side applied from this process (the same request as
        `kubectl apply --server-side --force-conflicts`; the params are test state, not the subject)."""
        status, answer = self.server.call("PATCH", f"{PARAMS_PATH}?fieldManager=kubectl&force=true", params,
                                          "application/apply-patch+yaml")
        if status not in (200, 201):
            raise KubectlError(f"params write failed ({status}): {answer.get('message')}")

    def set_state(self, state: dict, *, cluster_type: str = "Static", bootstrapped: bool = True) -> None:
        """Render and apply the params for this state and wait until the policy sees them.

        The params go through a fixed state with the opposite bootstrap flag first (the same values each
        time, so Helm renders it once per process); the freeze probe tells when each write is visible, and
        writes are seen in order, so after the second probe the policy reads exactly this state.
        """
        key = (tuple(sorted(state.items())), cluster_type, bootstrapped)
        if key == self.state_key:
            return
        for flag in (not bootstrapped, bootstrapped):
            if flag == bootstrapped:
                params = self.render_params(state, cluster_type=cluster_type, bootstrapped=flag)
            else:
                params = self.render_params(MATRIX_FROM["Unmanaged (legacy)"], cluster_type="Static", bootstrapped=flag)
            self._write_params(params)
            expected = None if flag else messages.ADMISSION_BOOTSTRAP
            assert self.eventually(self._probe, expected) == expected, "params change never reached the policy"
        self.data = params["data"]
        self.state_key = key

    def case(self, registry: dict | None) -> str | None:
        """Apply a change of the registry section; make sure it is a change first (unrelated edits pass)."""
        new = registry if registry is not None else {}
        if self.stored == new:
            assert self.try_registry(request("Direct")) is None
        old = self.stored
        found = self.try_registry(registry)
        assert found == admission.refusal(old, registry, self.data), "plan's admission verdict differs from the server"
        return found


@pytest.fixture(scope="module")
def adm(apiserver, repo_root, helm_bin):
    from tests.templates.conftest import run_module

    values = run_module(repo_root, None).helm_values()
    rendered = helm.render(repo_root, values)
    handle = Admission(apiserver, repo_root, rendered, values)
    apiserver.apply(handle.policies, *SERVER_SIDE)
    handle.try_registry(None)  # the cluster's ModuleConfig 'deckhouse' exists from the installer on
    handle.set_state(MATRIX_FROM["Unmanaged (legacy)"])
    return handle


MATRIX = [(source, target) for source in MATRIX_FROM for target in MATRIX_FROM]


@pytest.mark.parametrize(("source", "target"), MATRIX, ids=[f"{s}->{t}" for s, t in MATRIX])
def test_transition_matrix(adm, source, target):
    adm.set_state(MATRIX_FROM[source])
    assert adm.case(request(target)) == matrix_message(source, target)


IN_PROGRESS = [(mode, target) for mode in ("Unmanaged", "Direct", "Proxy", "Local")
               for target in ("Unmanaged", "Direct", "Proxy", "Local") if mode != target]


@pytest.mark.parametrize(("mode", "target"), IN_PROGRESS, ids=[f"{m}->{t}" for m, t in IN_PROGRESS])
def test_in_progress_rule(adm, mode, target):
    """While mode != target_mode a new target must be allowed from both (SPEC 2.4)."""
    adm.set_state({"mode": mode, "target_mode": target, "target_legacy": False})
    for requested in MATRIX_FROM:
        blocker = transitions.blocking_source(mode, target, "Unmanaged" if requested.startswith("Unmanaged")
                                              else requested, requested == "Unmanaged (legacy)")
        expected = None if blocker is None else matrix_message(blocker, requested)
        assert adm.case(request(requested)) == expected, requested


def test_direct_to_proxy_in_progress_then_local_is_refused(adm):
    """The spec's example: Direct -> Proxy running, Local requested -> refused as from Proxy to Local."""
    adm.set_state({"mode": "Direct", "target_mode": "Proxy", "target_legacy": False})
    assert adm.case({"mode": "Local"}) == messages.ADMISSION_LOCAL_PROXY


@pytest.mark.parametrize("cluster_type", ["Cloud", ""])
def test_proxy_and_local_need_a_static_cluster(adm, cluster_type):
    adm.set_state(MATRIX_FROM["Direct"], cluster_type=cluster_type)
    assert adm.case(request("Proxy")) == messages.ADMISSION_STATIC
    assert adm.case(request("Local")) == messages.ADMISSION_STATIC
    assert adm.case(request("Direct")) is None
    assert adm.case(request("Unmanaged (cfg)")) is None


def test_bootstrap_freeze(adm):
    adm.set_state(MATRIX_FROM["Unmanaged (legacy)"], bootstrapped=False)
    for target in MATRIX_FROM:
        assert adm.case(request(target)) == messages.ADMISSION_BOOTSTRAP, target
    # unrelated edits of the deckhouse ModuleConfig stay possible
    assert adm.try_registry(adm.stored, bundle="Minimal", logLevel="Debug") is None


def test_creating_the_moduleconfig_is_checked_too(adm, apiserver):
    adm.set_state(MATRIX_FROM["Local"])
    apiserver.kubectl("delete", "moduleconfig", "deckhouse")
    adm.stored = None
    assert adm.case({}) == messages.ADMISSION_LEGACY_FROM_LOCAL
    assert adm.case(request("Direct")) is None


def test_unknown_mode(adm):
    adm.set_state(MATRIX_FROM["Direct"])
    assert adm.case({"mode": "direct"}) == messages.ADMISSION_MODE_ENUM
    assert adm.case({"mode": "Bogus", "direct": {"imagesRepo": REPO}}) == messages.ADMISSION_MODE_ENUM


def _cross_field_cases() -> list[tuple[dict, str]]:
    cases = []
    for section, mode in (("direct", "Direct"), ("proxy", "Proxy"), ("unmanaged", "Unmanaged")):
        bodies = [
            ({"scheme": "HTTP"}, settings.MSG_IMAGES_REPO_REQUIRED),
            ({"imagesRepo": REPO, "username": "u"}, settings.MSG_PASSWORD_REQUIRED),
            ({"imagesRepo": REPO, "password": "p"}, settings.MSG_USERNAME_REQUIRED),
            ({"imagesRepo": REPO, "license": "l", "username": "u", "password": "p"}, settings.MSG_LICENSE_EXCLUSIVE),
        ]
        cases += [({"mode": mode, section: body}, message.format(s=section)) for body, message in bodies]
    cases += [({"mode": "Proxy", "proxy": {"imagesRepo": REPO, "ttl": ttl}}, settings.MSG_TTL_TOO_SHORT)
              for ttl in ("4m59s", "299s", "0h0m0s", "")]
    cases += [
        ({"mode": "Direct"}, settings.MSG_SECTION_REQUIRED.format(mode="Direct", s="direct")),
        ({"mode": "Proxy"}, settings.MSG_SECTION_REQUIRED.format(mode="Proxy", s="proxy")),
        ({"mode": "Local", "direct": {"imagesRepo": REPO}},
         settings.MSG_SECTION_FORBIDDEN.format(mode="Direct", s="direct")),
        ({"mode": "Direct", "direct": {"imagesRepo": REPO}, "proxy": {"imagesRepo": REPO}},
         settings.MSG_SECTION_FORBIDDEN.format(mode="Proxy", s="proxy")),
        ({"mode": "Local", "unmanaged": {"imagesRepo": REPO}},
         settings.MSG_SECTION_FORBIDDEN.format(mode="Unmanaged", s="unmanaged")),
    ]
    return cases


@pytest.mark.parametrize(("registry", "message"), _cross_field_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_cross_field_rules(adm, registry, message):
    """Each SPEC 3.3 rule refuses on its own with its exact message, which is also the hook's message."""
    adm.set_state(MATRIX_FROM["Direct"])
    assert adm.case(registry) == message
    env = settings.Environment(cluster_configuration_present=True, default_cri="Containerd", cluster_type="Static")
    assert message in settings.evaluate(registry, env).errors


@pytest.mark.parametrize("ttl", ["5m", "300s", "1h", "168h", "2h30m"])
def test_ttl_of_five_minutes_or_more_is_accepted(adm, ttl):
    adm.set_state(MATRIX_FROM["Direct"])
    assert adm.case({"mode": "Proxy", "proxy": {"imagesRepo": REPO, "ttl": ttl}}) is None


def test_unrelated_edit_is_not_blocked_by_an_old_invalid_value(adm, apiserver):
    adm.set_state(MATRIX_FROM["Direct"])
    invalid = {"mode": "Direct", "direct": {"imagesRepo": REPO, "username": "u"}}
    binding = [obj for obj in adm.policies if obj["kind"] == "ValidatingAdmissionPolicyBinding"
               and obj["metadata"]["name"] == "registry-moduleconfig-deckhouse"]
    # an old invalid value got in while the policy was not in place
    apiserver.kubectl("delete", "validatingadmissionpolicybinding", "registry-moduleconfig-deckhouse")
    assert adm.eventually(lambda: adm.dry_run(invalid), None) is None
    assert adm.try_registry(invalid) is None
    apiserver.apply(binding, *SERVER_SIDE)
    assert adm.eventually(lambda: adm.dry_run({"mode": "Bogus"}),
                          messages.ADMISSION_MODE_ENUM) == messages.ADMISSION_MODE_ENUM
    assert adm.try_registry({"mode": "Bogus"}, dry_run=True) == messages.ADMISSION_MODE_ENUM
    assert adm.try_registry(invalid, bundle="Default") is None
    assert adm.case({**invalid, "direct": {**invalid["direct"], "password": "p"}}) is None


def _disable(adm, enabled: bool) -> str | None:
    config = adm.module_config("registry", {"enabled": enabled, "version": 1, "settings": {}})
    return denial(adm.server.apply(config, "--dry-run=server", check=False))


@pytest.mark.parametrize(("state", "refused"), [
    ({"mode": "Unmanaged", "target_mode": "Unmanaged", "target_legacy": True}, False),
    ({"mode": "Unmanaged", "target_mode": "Unmanaged", "target_legacy": False}, False),
    ({"mode": "Direct", "target_mode": "Direct", "target_legacy": False}, True),
    ({"mode": "Local", "target_mode": "Local", "target_legacy": False}, True),
    ({"mode": "Unmanaged", "target_mode": "Proxy", "target_legacy": False}, True),
    ({"mode": "Direct", "target_mode": "Unmanaged", "target_legacy": False}, True),
], ids=["legacy", "unmanaged-cfg", "direct", "local", "switching-to-proxy", "switching-to-unmanaged"])
def test_disable_guard(adm, state, refused):
    adm.set_state(state)
    expected = messages.ADMISSION_DISABLE if refused else None
    # the registry policy has its own view of the params; give it the same bounded time to see them
    assert adm.eventually(lambda: _disable(adm, False), expected) == expected
    assert admission.disable_refusal(adm.data) == expected
    assert _disable(adm, True) is None

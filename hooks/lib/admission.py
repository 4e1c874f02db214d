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
"""What the admission policy (SPEC 3.7, templates/admission/policies.yaml) answers, computed in Python.

`plan` uses it to say up front whether `kubectl apply` would be refused and with which message. The rules
are listed in the order of the policy's validations; the API server reports the first one that fails.
tests/apiserver holds this module and the policy on a real API server equal.
"""

from __future__ import annotations

from typing import Any

from . import messages, settings


def params(state: dict, global_values: dict) -> dict[str, str]:
    """The data of ConfigMap registry-admission-params, as templates/admission/params-configmap.yaml renders it."""
    mode = state.get("mode") or "Unmanaged"
    target_legacy = state.get("target_legacy", "target_mode" not in state)
    cluster_configuration = global_values.get("clusterConfiguration") or {}
    return {
        "mode": mode,
        "targetMode": state.get("target_mode") or mode,
        "targetLegacy": "true" if target_legacy else "false",
        "clusterType": cluster_configuration.get("clusterType") or "",
        "bootstrapped": "true" if global_values.get("clusterIsBootstrapped") else "false",
    }


def _has(body: Any, key: str) -> bool:
    return isinstance(body, dict) and key in body


def _ttl_too_short(ttl: Any) -> bool:
    if not isinstance(ttl, str):
        return False
    seconds = settings.ttl_seconds(ttl)
    return seconds is not None and seconds < settings.MIN_TTL_SECONDS  # the empty string counts as 0


def _refusals(reg: dict, data: dict[str, str]) -> list[str]:
    mode = reg.get("mode", "Unmanaged")
    legacy = mode == "Unmanaged" and "unmanaged" not in reg
    sources = (data.get("mode"), data.get("targetMode"))
    rules: list[tuple[bool, str]] = [
        (data.get("bootstrapped") != "true", messages.ADMISSION_BOOTSTRAP),
        (mode not in settings.MODES, messages.ADMISSION_MODE_ENUM),
        (mode in settings.STATIC_ONLY_MODES and data.get("clusterType") != "Static", messages.ADMISSION_STATIC),
        ((mode == "Local" and "Proxy" in sources) or (mode == "Proxy" and "Local" in sources),
         messages.ADMISSION_LOCAL_PROXY),
        (legacy and "Local" in sources, messages.ADMISSION_LEGACY_FROM_LOCAL),
    ]
    for section in settings.SECTIONS:
        body = reg.get(section)
        if section not in reg:
            continue
        rules += [
            (not _has(body, "imagesRepo"), settings.MSG_IMAGES_REPO_REQUIRED.format(s=section)),
            (_has(body, "username") and not _has(body, "password"), settings.MSG_PASSWORD_REQUIRED.format(s=section)),
            (_has(body, "password") and not _has(body, "username"), settings.MSG_USERNAME_REQUIRED.format(s=section)),
            (_has(body, "license") and (_has(body, "username") or _has(body, "password")),
             settings.MSG_LICENSE_EXCLUSIVE.format(s=section)),
        ]
    proxy = reg.get("proxy")
    rules.append((_has(proxy, "ttl") and _ttl_too_short(proxy["ttl"]), settings.MSG_TTL_TOO_SHORT))
    for owner in ("Direct", "Proxy"):
        section = owner.lower()
        rules += [
            (mode == owner and section not in reg, settings.MSG_SECTION_REQUIRED.format(mode=owner, s=section)),
            (mode != owner and section in reg, settings.MSG_SECTION_FORBIDDEN.format(mode=owner, s=section)),
        ]
    rules.append((mode != "Unmanaged" and "unmanaged" in reg,
                  settings.MSG_SECTION_FORBIDDEN.format(mode="Unmanaged", s="unmanaged")))
    return [message for failed, message in rules if failed]


def refusal(old_registry: dict | None, new_registry: dict | None, data: dict[str, str] | None) -> str | None:
    """The message `kubectl apply` of ModuleConfig 'deckhouse' is refused with, or None when it is accepted.

    old_registry is None for a create; data None means the params ConfigMap is absent (the binding allows).
    """
    new = new_registry if new_registry is not None else {}
    old = old_registry if old_registry is not None else {}
    if data is None or (old_registry is not None and old == new):
        return None
    found = _refusals(new, data)
    return found[0] if found else None


def disable_refusal(data: dict[str, str] | None) -> str | None:
    """The message disabling the module (ModuleConfig 'registry', spec.enabled: false) is refused with."""
    if data is None or (data.get("mode") == "Unmanaged" and data.get("targetMode") == "Unmanaged"):
        return None
    return messages.ADMISSION_DISABLE

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
"""The transition matrix (SPEC 2.4) and the in-progress rule."""

from __future__ import annotations

# (from mode, to mode, to legacy) combinations that are refused; everything else is allowed.
# Static-only restrictions are environment rules of the input (settings), not of the matrix.
_REFUSED = {
    ("Proxy", "Local", False),
    ("Local", "Proxy", False),
    ("Local", "Unmanaged", True),
}


def allowed(source: str, target: str, target_legacy: bool) -> bool:
    return (source, target, bool(target_legacy)) not in _REFUSED


def blocking_source(mode: str, in_progress_target: str | None, target: str, target_legacy: bool) -> str | None:
    """The mode that forbids this target, or None when it is allowed.

    While a switch runs, the new target must be reachable from where the cluster is and from where
    it was heading, because nodes may already carry parts of either.
    """
    for source in (mode, in_progress_target):
        if source and not allowed(source, target, target_legacy):
            return source
    return None

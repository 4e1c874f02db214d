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
"""The tests run the consumers production runs (SPEC 12.3 #15): the regsync that `make tools` builds for the
Local e2e tests is the release the registry-sync image builds."""

from __future__ import annotations

import re

from tests.unit.test_images import build_file, pins_of


def test_make_tools_builds_the_regclient_release_of_the_sync_image(repo_root):
    makefile = (repo_root / "Makefile").read_text()
    pinned = re.search(r"^REGCLIENT_VERSION := (\S+)$", makefile, re.MULTILINE).group(1)
    assert pinned == pins_of(build_file("registry-sync").read_text())["regclientVersion"]
    for tool in ("regsync", "regctl"):
        assert f"required {tool} github.com/regclient/regclient/cmd/{tool} $(REGCLIENT_VERSION)" in makefile

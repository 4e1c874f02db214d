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
"""The runbook (English and Russian) links every alert of monitoring/ to a section that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXPLICIT_ID = re.compile(r"\s*\{#([a-z0-9-]+)\}\s*$")


def _alerts() -> set[str]:
    names = set()
    for path in (REPO / "monitoring" / "prometheus-rules").rglob("*.yaml"):
        for group in yaml.safe_load(path.read_text()) or []:
            names |= {rule["alert"] for rule in group["rules"] if "alert" in rule}
    return names


def _anchors(text: str) -> set[str]:
    """Section ids: an explicit `{#id}`, else the heading text as the docs site slugs it."""
    anchors = set()
    for line in text.splitlines():
        match = re.match(r"^#{2,4}\s+(.*)$", line)
        if not match:
            continue
        explicit = EXPLICIT_ID.search(match.group(1))
        if explicit:
            anchors.add(explicit.group(1))
        else:
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def test_alerts_exist():
    assert len(_alerts()) >= 10


@pytest.mark.parametrize("name", ["RUNBOOK.md", "RUNBOOK.ru.md"])
def test_runbook_links_every_alert_to_its_section(name):
    text = (REPO / "docs" / name).read_text()
    anchors = _anchors(text)
    rows = {}
    for line in text.splitlines():
        if line.startswith("| `D8"):
            cells = line.split("|")
            for alert in re.findall(r"`(D8[A-Za-z0-9]+)`", cells[1]):
                rows[alert] = re.findall(r"\]\(#([a-z0-9-]+)\)", cells[2])
    missing = sorted(_alerts() - set(rows))
    assert not missing, f"{name}: alerts without a row in the alerts table: {missing}"
    for alert, links in rows.items():
        assert links, f"{name}: {alert} has no link to a section"
        assert set(links) <= anchors, f"{name}: {alert} links to missing sections {set(links) - anchors}"
    assert set(rows) <= _alerts(), f"{name}: rows for alerts that do not exist: {set(rows) - _alerts()}"

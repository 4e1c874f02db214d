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
"""`d8registry simulate --cluster` on a cluster whose module Secrets hold damaged secret material, as a redacted
dump (`d8registry dump --live`) or a hand-edited file may: the simulator starts as a restarted Deckhouse
(values empty, restore from the Secrets), repeats every module run on its own output (idempotence check on)
and the switch must go on to Ready.

The cluster is caught mid-switch from Direct to Proxy, so the in-cluster proxy still runs while the Proxy
pipeline replaces the damaged CA, HTTP secret and user hash (the case that once broke idempotence).
"""

from __future__ import annotations

import pytest
import yaml

from ..hooks.damaged_secrets import damage
from .test_main_job import _cli

DAMAGE = {"ca_not_yet_valid", "http_secret_short", "user_hash_not_verifying"}


@pytest.mark.xdist_group("cli-simulate-direct")   # the Direct run test_main_job.py also makes (cli_once, conftest.py)
def test_a_dump_with_damaged_secrets_simulates_to_ready(helm_bin, cli_once, tmp_path):
    direct, mid, damaged = tmp_path / "direct.yaml", tmp_path / "mid.yaml", tmp_path / "damaged.yaml"
    run = cli_once("simulate", "--in-process", "--json", "--set", "mode=Direct", dump=True)
    assert run.proc.returncode == 0, run.proc.stderr[-3000:]
    direct.write_bytes(run.dump.read_bytes())
    # four ticks into the switch to Proxy: the in-cluster proxy runs, the node services start
    proc = _cli("simulate", "--in-process", "--cluster", str(direct), "--set", "mode=Proxy", "--max-ticks", "4",
                "--dump-to", str(mid))
    assert proc.returncode == 1 and "--- STUCK after 4 ticks" in proc.stdout, proc.stderr[-3000:]
    document = yaml.safe_load(mid.read_text())
    names = {o["metadata"]["name"] for o in document["objects"]}
    assert {"registry-incluster-proxy-config", "registry-pki", "registry-user-ro"} <= names
    document["objects"] = damage(document["objects"], DAMAGE)
    damaged.write_text(yaml.safe_dump(document, sort_keys=False))

    proc = _cli("simulate", "--in-process", "--cluster", str(damaged), "--set", "mode=Proxy", "--max-ticks", "60")
    assert "NotIdempotent" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "--- READY after" in proc.stdout

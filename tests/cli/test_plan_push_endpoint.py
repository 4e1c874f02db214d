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
"""`plan --set mode=Local` tells the user where to push and how to read the rw password, never the password."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_plan_for_local_shows_the_push_address_and_where_the_password_is():
    proc = subprocess.run([sys.executable, "-m", "d8registry", "plan", "--set", "mode=Local"], capture_output=True,
                          text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "create Ingress d8-system/registry" in out and "create Service d8-system/registry-push" in out
    assert "Push endpoint (Local):\n  registry.example.com/system/deckhouse over https, user rw\n" in out
    assert "get secret registry-user-rw -o jsonpath='{.data.password}' | base64 -d" in out
    assert "password_hash" not in out


@pytest.mark.xdist_group("cli-plan-proxy")   # the run test_main_job.py also makes (cli_once, conftest.py)
def test_plan_for_proxy_has_no_push_endpoint(cli_once):
    proc = cli_once("plan", "--set", "mode=Proxy").proc
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Stages:" in proc.stdout and "Push endpoint" not in proc.stdout, proc.stdout

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
"""The node LB's nginx.conf: the failover settings SPEC 10.6 promises (exercised end to end by
tests/e2e/dataplane/test_failover_faults.py, measured by bench/dataplane_pull.py)."""

from __future__ import annotations

import re

from lib import lb

ENDPOINTS = ["10.0.0.11:5001", "10.0.0.12:5001", "10.0.0.13:5001"]


def _upstream_block(conf: str) -> str:
    match = re.search(r"upstream registry \{(.*?)\n    \}", conf, re.S)
    assert match, conf
    return match.group(1)


def test_workers_share_one_view_of_the_masters():
    # two workers: without a shared zone each one would rediscover a silent master on its own
    conf = lb.lb_nginx_conf(ENDPOINTS)
    assert "worker_processes 2;" in conf
    assert re.search(r"^\s+zone registry \d+k;$", _upstream_block(conf), re.M), conf


def test_a_failed_master_is_skipped_for_ten_seconds_after_one_failure():
    block = _upstream_block(lb.lb_nginx_conf(ENDPOINTS))
    servers = re.findall(r"^\s+server (\S+) (.*);$", block, re.M)
    assert [address for address, _ in servers] == ENDPOINTS
    assert {options for _, options in servers} == {"max_fails=1 fail_timeout=10s"}
    assert "least_conn;" in block


def test_connect_timeout_and_retries_bound_the_cost_of_a_silent_master():
    conf = lb.lb_nginx_conf(ENDPOINTS)
    server = conf[conf.index("    server {"):]
    for line in ("proxy_connect_timeout 1s;", "proxy_next_upstream on;", "proxy_next_upstream_tries 3;",
                 "proxy_timeout 1h;"):
        assert f"        {line}\n" in server, (line, server)

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
"""Benchmark: images the checker confirms per second with 1 worker vs 3 workers per registry.

A real distribution v3 registry on loopback (TLS + token auth through distribution's token server
when it was built, else TLS + htpasswd), seeded with --images images. Each round runs the checker on
a fresh queue (one token request, then one HEAD per image); 1- and 3-worker rounds are interleaved
and compared by their medians, so machine speed cancels out. A second case puts a relay adding
--delay-ms per request in front of the registry, closer to a registry across a network.
Usage: python bench/checker_throughput.py [--images N] [--rounds N] [--delay-ms MS]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for extra in (REPO, REPO / "hooks", REPO / "cli"):
    sys.path.insert(0, str(extra))

from lib import checker, clock  # noqa: E402

from tests.e2e.conftest import (  # noqa: E402
    PASSWORD,
    REGISTRY_HOST,
    REPOSITORY,
    USERNAME,
    Pusher,
    TcpRelay,
    make_image_set,
    start_loopback,
)


def _rate(image_set, containers, params, workers: int) -> float:
    result = checker.run({}, params, image_set.global_values, containers, clock.now(), workers=workers, budget=120)
    queue = result.state["queues"][REGISTRY_HOST]
    if queue["retry"] or queue["items"]:
        raise SystemExit(f"benchmark registry did not confirm every image: {result.state['message'][:500]}")
    return result.checked / result.duration


def _case(name: str, image_set, containers, params, overrides: str, rounds: int) -> None:
    os.environ["REGISTRY_CHECKER_HOST_OVERRIDES"] = overrides
    samples: dict[int, list[float]] = {1: [], 3: []}
    _rate(image_set, containers, params, 3)  # warm up: connections, page cache, token server
    for _ in range(rounds):
        for workers in samples:
            samples[workers].append(_rate(image_set, containers, params, workers))
    one, three = statistics.median(samples[1]), statistics.median(samples[3])
    print(f"{name:<38} 1 worker {one:7.0f} images/s   3 workers {three:7.0f} images/s   ratio {three / one:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--delay-ms", type=float, default=5.0)
    args = parser.parse_args()
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        os.environ.pop(name, None)

    with tempfile.TemporaryDirectory(prefix="d8-checker-bench-") as tmp:
        loopback = start_loopback(Path(tmp))
        try:
            registry = loopback.token or loopback.basic
            per_module = 100
            modules = {f"bench-{m}": [f"image{i}" for i in range(per_module)]
                       for m in range(max(1, args.images // per_module))}
            image_set = make_image_set(Pusher(loopback.plain), modules, prefix="bench-")
            pod_spec = image_set.deployment["spec"]["template"]["spec"]
            containers = [{"kind": kind, **c} for kind in ("containers", "initContainers") for c in pod_spec[kind]]
            params = {"registries": {REGISTRY_HOST: {
                "address": f"{REGISTRY_HOST}/{REPOSITORY}", "scheme": "HTTPS", "ca": loopback.pki.ca_pem,
                "username": USERNAME, "password": PASSWORD}}, "checkMode": "Default", "version": "bench"}
            auth = "token auth" if registry is loopback.token else "htpasswd"
            total = len(image_set.digests) + 3
            print(f"registry: distribution v3 on loopback, TLS + {auth}; {total} images; "
                  f"{args.rounds} rounds per case (interleaved, medians)")
            _case("loopback", image_set, containers, params, loopback.overrides(registry), args.rounds)
            relay = TcpRelay(("127.0.0.1", registry.port), delay=args.delay_ms / 1000)
            try:
                overrides = loopback.overrides(registry).replace(registry.loopback, f"127.0.0.1:{relay.port}")
                _case(f"loopback + {args.delay_ms:g} ms per request", image_set, containers, params, overrides, args.rounds)
            finally:
                relay.close()
        finally:
            loopback.stop()


if __name__ == "__main__":
    main()

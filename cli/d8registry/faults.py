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
"""Faults for the loopback data plane (SPEC 10.6): a master that goes silent, a master killed mid-transfer.

A silent master is one whose packets are dropped, so connect() hangs until the LB's connect timeout,
unlike a stopped one, which refuses at once. Drop rules only ever go into a network namespace this
module created (`PrivateNetwork`): the caller's thread moves into a fresh namespace with its own
loopback, every process it starts from then on lives there, and leaving restores the caller's
namespace. The namespace, its loopback addresses and its rules vanish with the last process in it.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from d8registry import loopback as lo

CLONE_NEWNET = 0x40000000
NFT_TABLE = "d8registry_faults"
# nginx (stream) logs a connect that ran into proxy_connect_timeout like this, at level error.
LB_CONNECT_TIMEOUT = re.compile(r"upstream timed out \(110: Connection timed out\) while connecting to upstream"
                                r".*upstream: \"([0-9.]+:[0-9]+)\"")


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _netns_id(fd_path: str = "/proc/thread-self/ns/net") -> int:
    return os.stat(fd_path).st_ino


class PrivateNetwork:
    """The calling thread in a fresh network namespace with loopback up, for as long as the block runs."""

    def __init__(self) -> None:
        self._home: int | None = None
        self._home_id = 0

    def __enter__(self) -> PrivateNetwork:
        if os.geteuid() != 0:
            raise lo.Unavailable("a private network namespace needs root")
        for tool in ("ip", "nft"):
            lo.binary(tool)
        self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self._home_id = _netns_id()
        libc = _libc()
        if libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            self._leave()
            raise lo.Unavailable(f"unshare(CLONE_NEWNET) failed: {os.strerror(err)}")
        try:
            subprocess.run([lo.binary("ip"), "link", "set", "lo", "up"], check=True, capture_output=True, timeout=10)
        except BaseException:
            self._leave()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._leave()

    def _leave(self) -> None:
        if self._home is None:
            return
        try:
            if _libc().setns(self._home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back to the caller's network namespace failed")
        finally:
            os.close(self._home)
            self._home = None

    @property
    def inside(self) -> bool:
        """True while this thread is in the namespace made here (not the one it came from)."""
        return self._home is not None and _netns_id() != self._home_id

    def run_outside(self, argv: list[str]) -> subprocess.CompletedProcess:
        """`argv` in the caller's own network namespace (to show what a fault did not touch)."""
        if self._home is None:
            raise RuntimeError("not inside a private network")
        return subprocess.run([lo.binary("nsenter"), f"--net=/proc/{os.getpid()}/fd/{self._home}", *argv],
                              capture_output=True, text=True, timeout=10)

    def nft(self, script: str) -> None:
        if not self.inside:
            raise RuntimeError("refusing to change packet filtering outside the private network namespace")
        result = subprocess.run([lo.binary("nft"), "-f", "-"], input=script, capture_output=True, text=True,
                                timeout=10)
        if result.returncode != 0:
            raise RuntimeError(f"nft failed: {result.stderr.strip()}")

    def nft_tables(self) -> str:
        """The tables of this thread's network namespace."""
        result = subprocess.run([lo.binary("nft"), "list", "tables"], capture_output=True, text=True, timeout=10)
        return result.stdout


def _loopback(ip: str) -> str:
    address = ipaddress.IPv4Address(ip)
    if not address.is_loopback:
        raise ValueError(f"{ip} is not a loopback address")
    return str(address)


@dataclass
class Silence:
    """Every packet to `ip:port` dropped inside the private network: new connections hang in SYN-SENT,
    established ones stall. `apply`/`lift`, or a `with` block; lifting twice is harmless."""

    network: PrivateNetwork
    ip: str
    port: int
    applied: bool = False

    def apply(self) -> None:
        ip, port = _loopback(self.ip), int(self.port)
        self.network.nft(
            f"add table inet {NFT_TABLE}\n"
            f"add chain inet {NFT_TABLE} output {{ type filter hook output priority 0; policy accept; }}\n"
            f"add rule inet {NFT_TABLE} output ip daddr {ip} tcp dport {port} drop\n")
        self.applied = True

    def lift(self) -> None:
        if self.applied and self.network.inside:
            self.network.nft(f"delete table inet {NFT_TABLE}\n")
        self.applied = False

    def __enter__(self) -> Silence:
        self.apply()
        return self

    def __exit__(self, *exc) -> None:
        self.lift()


def lb_connect_timeouts(procs: lo.Processes, since: int = 0) -> list[str]:
    """Upstreams the node LB gave up connecting to, from its log after byte offset `since`."""
    text = procs.log("lb").read_text(errors="replace")[since:] if procs.log("lb").exists() else ""
    return LB_CONNECT_TIMEOUT.findall(text)


def log_size(procs: lo.Processes, name: str) -> int:
    path = procs.log(name)
    return len(path.read_text(errors="replace")) if path.exists() else 0


def bytes_sent_by(ip: str, port: int) -> int:
    """Bytes the listener `ip:port` has sent on its established connections (kernel tcp_info)."""
    result = subprocess.run([lo.binary("ss"), "-tinH", "state", "established", "src", f"{_loopback(ip)}:{int(port)}"],
                            capture_output=True, text=True, timeout=10)
    return sum(int(n) for n in re.findall(r"\bbytes_sent:(\d+)", result.stdout))


def established_at(ip: str, port: int) -> int:
    """Established connections the listener `ip:port` is serving."""
    result = subprocess.run([lo.binary("ss"), "-tnH", "state", "established", "src", f"{_loopback(ip)}:{int(port)}"],
                            capture_output=True, text=True, timeout=10)
    return len([line for line in result.stdout.splitlines() if line.strip()])


def _wait_counts(replicas: list[lo.Replica], done, timeout: float = 5.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        counts = {r.name: established_at(r.ip, r.layout.port) for r in replicas}
        if done(counts) or time.monotonic() > deadline:
            return counts
        time.sleep(0.02)


@contextmanager
def next_pick(lb_address: tuple[str, int], replicas: list[lo.Replica], target: lo.Replica,
              attempts: int = 12) -> Iterator[None]:
    """Idle connections through the LB held open until every master but `target` serves one of them, so the
    LB's least_conn choice for the next connection is `target` (as when other pulls keep the rest busy).
    Needs the LB's shared zone: without it each worker counts only its own connections."""
    held: list[socket.socket] = []
    try:
        for _ in range(attempts):
            before = _wait_counts(replicas, lambda _counts: True)
            if all(before[r.name] > before[target.name] for r in replicas if r is not target):
                break
            sock = socket.create_connection(lb_address, timeout=5)
            after = _wait_counts(replicas, lambda counts, b=before: sum(counts.values()) > sum(b.values()))
            if after[target.name] > before[target.name]:
                sock.close()  # landed on the target: let it go and ask again
                _wait_counts(replicas, lambda counts, b=before: counts[target.name] <= b[target.name])
            else:
                held.append(sock)
        else:
            raise RuntimeError(f"could not make {target.name} the LB's next choice in {attempts} connections")
        yield
    finally:
        for sock in held:
            sock.close()


def kill_replica(procs: lo.Processes, replica: lo.Replica) -> None:
    """SIGKILL to the front's and the cache's process groups at once, as a crashed node would leave them:
    no graceful close of the connections being served."""
    handles = [procs.procs[name] for name in (f"{replica.name}-front", f"{replica.name}-distribution")
               if name in procs.procs]
    for proc in handles:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for proc in handles:
        proc.wait(10)


@dataclass
class MidTransferKill:
    """What happened when a pull lost the master serving its layer."""

    victim: str | None             # replica name, None if the pull ended before enough bytes flowed
    sent_at_kill: int              # bytes the victim had sent when it was killed
    pull_ok: bool
    pull_ms: float
    stderr: str = field(repr=False, default="")


def pull_and_kill_server(containerd: lo.Containerd, procs: lo.Processes, replicas: list[lo.Replica], ref: str,
                         after_bytes: int, timeout: float = 120) -> MidTransferKill:
    """Start a CRI pull; once one master has sent `after_bytes` (the big layer is flowing), SIGKILL that master.

    Byte counts are taken relative to the start, so connections left from earlier pulls do not count.
    """
    base = {r.name: bytes_sent_by(r.ip, r.layout.port) for r in replicas}
    outcome: dict = {}

    def pull() -> None:
        started = time.perf_counter()
        result = containerd.pull(ref, timeout=timeout)
        outcome.update(ok=result.returncode == 0, ms=(time.perf_counter() - started) * 1000, stderr=result.stderr)

    worker = threading.Thread(target=pull, daemon=True)
    worker.start()
    victim, sent = None, 0
    deadline = time.monotonic() + timeout
    while worker.is_alive() and victim is None and time.monotonic() < deadline:
        for replica in replicas:
            sent = bytes_sent_by(replica.ip, replica.layout.port) - base[replica.name]
            if sent >= after_bytes and worker.is_alive():
                kill_replica(procs, replica)
                victim = replica.name
                break
        else:
            time.sleep(0.005)
    worker.join(timeout + 30)
    return MidTransferKill(victim, sent, outcome.get("ok", False), outcome.get("ms", 0.0), outcome.get("stderr", ""))

"""Reachability probes: TCP connect to Squid's port and to sshd, ICMP echo where permitted.

Probes go only to the addresses written in ``[alerts.probes]``; nothing is
discovered or scanned. A round probes every proxy at once (one thread each,
bounded) in the :class:`Prober`'s own thread, so a black-holed address that
takes the whole timeout never delays ingest or rule evaluation.

ICMP needs either an unprivileged ICMP socket (``net.ipv4.ping_group_range``
covering the monitor's group) or root (a raw socket); without both, the ping
part is reported as ``ping not permitted`` and left out of the verdict.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from squidguard_bloom.monitor.alerts.settings import ProbeTarget

NOT_PERMITTED = "not permitted"


@dataclass
class ProbeResult:
    """One round's outcome for one proxy: each probe's word (``ok`` or why not)."""

    proxy: str
    at: float  # the prober's clock when the round started
    checks: dict[str, str] = field(default_factory=dict)  # "squid 10.0.0.1:3128" -> "ok"

    @property
    def failed(self) -> list[str]:
        """The probes that failed (ICMP that may not be sent is no failure)."""
        return [k for k, v in self.checks.items() if v not in ("ok", NOT_PERMITTED)]

    def describe(self) -> str:
        """``squid 10.0.0.1:3128 refused; ssh 10.0.0.1:22 ok; ping ok``."""
        return "; ".join(f"{k} {v}" for k, v in self.checks.items())


def tcp_probe(address: str, port: int, timeout: float) -> str:
    """``ok`` when a TCP connection to address:port opens within timeout, else why not."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return "ok"
    except TimeoutError:
        return f"no answer in {timeout:g} s"
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def icmp_probe(address: str, timeout: float) -> str:
    """``ok`` when address answers an ICMP echo (IPv4) within timeout; ``not permitted``
    when this process may not send one."""
    try:
        ip = socket.gethostbyname(address)
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()
    raw = False
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    except OSError:
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            raw = True
        except OSError:
            return NOT_PERMITTED
    ident = (os.getpid() ^ threading.get_ident()) & 0xFFFF
    seq = int(time.monotonic() * 1000) & 0xFFFF
    payload = b"squidguard-bloom-monitor"
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, seq) + payload
    deadline = time.monotonic() + timeout
    with sock:
        try:
            sock.sendto(packet, (ip, 0))
        except PermissionError:
            return NOT_PERMITTED
        except OSError as exc:
            return (exc.strerror or str(exc)).lower()
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                break
            try:
                data, (src, _port) = sock.recvfrom(2048)
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                return (exc.strerror or str(exc)).lower()
            if raw:  # the IP header comes first
                data = data[(data[0] & 0x0F) * 4:]
            if len(data) < 8 or src != ip:
                continue
            kind, _code, _sum, rid, rseq = struct.unpack("!BBHHH", data[:8])
            # an unprivileged socket's echo id is set by the kernel: match on seq only
            if kind == 0 and rseq == seq and (rid == ident or not raw):
                return "ok"
    return f"no answer in {timeout:g} s"


def probe(target: ProbeTarget, timeout: float, at: float) -> ProbeResult:
    """Every configured probe of one proxy."""
    result = ProbeResult(target.proxy, at)
    if target.squid_port is not None:
        result.checks[f"squid {target.address}:{target.squid_port}"] = tcp_probe(
            target.address, target.squid_port, timeout)
    if target.ssh_port is not None:
        result.checks[f"ssh {target.address}:{target.ssh_port}"] = tcp_probe(
            target.address, target.ssh_port, timeout)
    if target.icmp:
        result.checks["ping"] = icmp_probe(target.address, timeout)
    return result


class Prober:
    """Probes every target each interval in a thread of its own; results are read, not awaited."""

    def __init__(self, targets: dict[str, ProbeTarget], timeout: float, interval: float,
                 clock: Callable[[], float] = time.time, workers: int = 16) -> None:
        self.targets = dict(targets)
        self.timeout = timeout
        self.interval = interval
        self.clock = clock
        self.results: dict[str, ProbeResult] = {}
        self.rounds = 0  # completed rounds: the service evaluates after each
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(targets) or 1)),
                                        thread_name_prefix="probe")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_round(self) -> dict[str, ProbeResult]:
        """Probe every target now (blocks for at most about the timeout); the results."""
        at = self.clock()
        futures = {name: self._pool.submit(probe, t, self.timeout, at)
                   for name, t in self.targets.items()}
        fresh = {name: f.result() for name, f in futures.items()}
        with self._lock:
            self.results.update(fresh)
            self.rounds += 1
        return fresh

    def latest(self) -> dict[str, ProbeResult]:
        """The newest result of each target (a copy)."""
        with self._lock:
            return dict(self.results)

    def start(self) -> None:
        """Probe in the background every interval until stop()."""
        if not self.targets or self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.is_set():
                started = time.monotonic()
                self.run_round()
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

        self._thread = threading.Thread(target=loop, name="prober", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background rounds and the workers."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout * 3 + 5)
        self._pool.shutdown(wait=False, cancel_futures=True)

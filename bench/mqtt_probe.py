"""Lean MQTT instruments for latency benches: they must not compete for the CPU they measure.

On this 2-core machine a paho publisher and a paho subscriber at 1,000 messages/s cost
over half a core between them, under one GIL, and their own queueing showed up in the
"latency" they reported. So the bench publishes from pre-encoded MQTT 3.1.1 packets on a
plain socket (a few microseconds each) and receives with `mosquitto_sub`, which stamps
each message on arrival (`%U`, the wall clock in nanoseconds) in C. Both ends use the
wall clock, so publish and receipt moments compare across processes. This is a load
generator, not a client: the relay itself speaks MQTT through paho.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from transport.mqtt_socket import publish_packet, remaining_length

__all__ = ["LeanPublisher", "StampingSubscriber", "publish_packet"]


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


class LeanPublisher:
    """QoS 1 publisher on one socket; a thread counts the broker's PUBACKs."""

    def __init__(self, port: int, client_id: str, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = _string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 60) + _string(client_id)
        self.sock.sendall(b"\x10" + remaining_length(len(body)) + body)
        connack = self.sock.recv(4)
        if len(connack) < 4 or connack[0] != 0x20 or connack[3] != 0:
            raise RuntimeError(f"broker refused the bench publisher: {connack!r}")
        self.acked = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        received = 0
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            received += len(data)
            self.acked = received // 4  # PUBACKs only: 0x40 0x02 mid mid

    def publish_at_rate(self, packets: list[bytes], rate: int) -> list[float]:
        """Send each packet at its moment (`rate` per second); their send moments (wall clock)."""
        sent = []
        started = time.perf_counter()
        for i, packet in enumerate(packets):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent.append(time.time())
            self.sock.sendall(packet)
        return sent

    def wait_acked(self, count: int, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while self.acked < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.acked >= count

    def close(self) -> None:
        try:
            self.sock.sendall(b"\xe0\x00")
        finally:
            self.sock.close()


class StampingSubscriber:
    """`mosquitto_sub` at QoS 1 writing `<arrival> <payload>` per message to a file."""

    def __init__(self, port: int, topic: str, client_id: str, out: Path, host: str = "127.0.0.1") -> None:
        self.out = out
        self._file = out.open("wb")
        command = [shutil.which("mosquitto_sub") or "mosquitto_sub", "-h", host, "-p", str(port)]
        command += ["-t", topic, "-q", "1", "-i", client_id, "-F", "%U %p"]
        self.process = subprocess.Popen(command, stdout=self._file, stderr=subprocess.DEVNULL)

    @staticmethod
    def available() -> bool:
        return shutil.which("mosquitto_sub") is not None

    def lines(self) -> list[bytes]:
        return self.out.read_bytes().splitlines()

    def wait_ready(self, probe: Callable[[int], None], timeout: float = 15) -> None:
        """Publish probes (`probe(n)`) until one arrives: then the subscription is in place."""
        deadline = time.monotonic() + timeout
        n = 0
        while time.monotonic() < deadline:
            probe(n)
            n += 1
            time.sleep(0.05)
            if self.out.stat().st_size:
                return
        raise RuntimeError("mosquitto_sub did not subscribe")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self._file.close()

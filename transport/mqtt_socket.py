"""paho's client with buffered socket I/O and batched QoS 1 publishing.

paho 2 reads a packet with three `recv` calls (its type byte, its length bytes, its body)
after a `select`, and writes each queued packet with its own `send`. At a thousand alarms
a second through the relay (one inbound PUBLISH, two outbound PUBLISHes and their PUBACKs
each) those calls were a fifth of the relay's CPU on this machine's virtualised kernel.
`BufferedClient` gives paho a socket that reads up to 64 KiB at a time and serves paho's
small reads from that buffer (telling paho's loop, through `pending()` as an SSL socket
does, that buffered bytes wait), and that gathers the packets of one write pass into a
single `send`. Nothing else about paho changes: sessions, acknowledgements, reconnects
and TLS (the buffer sits on top of the TLS socket) are still paho's.

`publish_many` is for a publisher that keeps its own durable record of what is in flight
(the relay's outbox): paho's `publish` builds a message object, a condition variable and a
wake-up of its network thread per message, and re-sends unacknowledged messages itself
after a reconnect; here a group of PUBLISH packets goes out as one write, `on_raw_puback`
reports each acknowledgement, and the caller re-sends from its own record after a
reconnect (so paho keeps nothing that could be sent twice).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt

READ_SIZE = 65536
PUBLISH_QOS1 = 0x32  # PUBLISH, QoS 1, not a duplicate, not retained


def remaining_length(n: int) -> bytes:
    """MQTT's variable-length 'remaining length' field."""
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(topic: str, payload: bytes, mid: int, v5: bool = False) -> bytes:
    """A QoS 1 PUBLISH packet (MQTT 5: with an empty property list)."""
    name = topic.encode()
    head = struct.pack("!H", len(name)) + name + struct.pack("!H", mid) + (b"\x00" if v5 else b"")
    return bytes([PUBLISH_QOS1]) + remaining_length(len(head) + len(payload)) + head + payload


class BufferedSocket:
    """A connected socket with a read buffer and a write buffer (flushed by `flush`)."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._read = b""
        self._pos = 0
        self._write = bytearray()

    def recv(self, size: int) -> bytes:
        if self._pos >= len(self._read):
            data = self._sock.recv(max(size, READ_SIZE))  # BlockingIOError / b"" pass through to paho
            if len(data) <= size:
                return bytes(data)
            self._read, self._pos = data, 0
        end = min(self._pos + size, len(self._read))
        chunk = self._read[self._pos : end]
        self._pos = end
        return bytes(chunk)

    def buffered(self) -> int:
        """Bytes read from the network that paho has not taken yet."""
        return len(self._read) - self._pos

    def pending(self) -> int:
        """What paho's loop asks an SSL socket: bytes readable without waiting on the socket."""
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return self.buffered() + int(inner)

    def send(self, data: bytes | bytearray | memoryview) -> int:
        self._write += data
        return len(data)

    def wants_write(self) -> bool:
        return bool(self._write)

    def flush(self) -> None:
        """Send what paho's write pass queued; what the kernel will not take now waits for the
        socket to become writable (`wants_write` keeps paho's loop selecting for it)."""
        while self._write:
            sent = self._sock.send(self._write)  # BlockingIOError: keep the rest for the next pass
            del self._write[:sent]

    def close(self) -> None:
        # paho closes right after writing DISCONNECT: send it (and anything before it) first.
        try:
            self._sock.setblocking(True)
            self._sock.settimeout(1.0)
            self.flush()
        except OSError:
            pass
        self._sock.close()

    def fileno(self) -> int:
        return int(self._sock.fileno())

    def __getattr__(self, name: str) -> Any:  # setblocking, shutdown, getpeername, ...
        return getattr(self._sock, name)


class BufferedClient(mqtt.Client):
    """paho's `Client` on a `BufferedSocket` (same API, same behaviour, fewer system calls),
    with `publish_many` for callers that track their own QoS 1 messages."""

    # (packet id, reason code) of each PUBACK; True: the id was one of `publish_many`'s.
    on_raw_puback: Callable[[int, int], bool] | None = None
    # Called by the network thread after each read pass (every packet read is handled by then).
    after_read: Callable[[], None] | None = None

    def packet_ids(self, count: int) -> list[int]:
        """Packet ids for `publish_many`, taken from paho's own sequence so they never collide."""
        return [self._mid_generate() for _ in range(count)]

    def publish_many(self, messages: Sequence[tuple[str, bytes]], mids: Sequence[int]) -> None:
        """Queue QoS 1 PUBLISHes (with ids from `packet_ids`, recorded by the caller before this
        call: the acknowledgement can arrive before it returns) as one write. Not tracked by
        paho: if the connection drops first, they are lost with it, and the caller sends them again."""
        v5 = self._protocol == mqtt.MQTTv5
        data = b"".join(publish_packet(t, p, mid, v5) for (t, p), mid in zip(messages, mids, strict=True))
        if data:
            self._packet_queue(PUBLISH_QOS1 & 0xF0, data, 0, 1)  # qos 1: paho reports nothing on write

    def _handle_on_message(self, message: mqtt.MQTTMessage) -> None:
        # Without topic-specific callbacks (`message_callback_add`), straight to `on_message`:
        # paho decodes the topic twice and walks its (empty) filter tree for every message.
        if self._on_message_filtered._root._children:
            super()._handle_on_message(message)
            return
        on_message = self.on_message
        if on_message is None:
            return
        with self._in_callback_mutex:
            try:
                on_message(self, self._userdata, message)
            except Exception as err:
                self._easy_log(mqtt.MQTT_LOG_ERR, "Caught exception in on_message: %s", err)
                if not self.suppress_exceptions:
                    raise

    def _handle_pubackcomp(self, cmd: Any) -> mqtt.MQTTErrorCode:
        hook = self.on_raw_puback
        if cmd == "PUBACK" and hook is not None:
            packet = self._in_packet["packet"]
            mid = int.from_bytes(packet[:2], "big")
            reason = packet[2] if len(packet) > 2 and self._protocol == mqtt.MQTTv5 else 0
            if hook(mid, reason):
                return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._handle_pubackcomp(cmd)  # type: ignore[no-any-return]

    def _create_socket(self) -> Any:
        sock = super()._create_socket()
        return sock if self._transport == "websockets" else BufferedSocket(sock)

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        # paho reads one packet per select when it has few messages in flight: take every
        # complete packet already buffered before going back to select.
        rc = super().loop_read(max_packets)
        sock = self._sock
        if isinstance(sock, BufferedSocket):
            buffer: BufferedSocket = sock
            while rc == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS and buffer.buffered():
                before = buffer.buffered()
                rc = super().loop_read(max_packets)
                if buffer.buffered() >= before or self._sock is not buffer:  # a partial packet left, or closed
                    break
        if self.after_read is not None:
            self.after_read()
        return rc

    def loop_write(self) -> mqtt.MQTTErrorCode:
        rc = super().loop_write()
        sock = self._sock
        if isinstance(sock, BufferedSocket):
            try:
                sock.flush()
            except BlockingIOError:
                pass  # the rest goes when the socket is writable (want_write)
            except OSError:
                return mqtt.MQTTErrorCode.MQTT_ERR_CONN_LOST
        return rc

    def want_write(self) -> bool:
        sock = self._sock
        return super().want_write() or (isinstance(sock, BufferedSocket) and sock.wants_write())

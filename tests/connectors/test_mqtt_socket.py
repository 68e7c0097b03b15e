"""The buffered socket under paho: reads served from one receive, writes gathered, nothing lost
or reordered when the kernel pushes back. (Its use against real brokers is every relay and
collector test.)"""

from __future__ import annotations

import socket

from transport.mqtt_socket import BufferedSocket, publish_packet, remaining_length


def test_paho_s_small_reads_are_served_from_one_receive_in_order() -> None:
    left, right = socket.socketpair()
    packets = [publish_packet(f"t/{n}", bytes([n]) * (n * 50), n + 1) for n in range(1, 6)]
    left.sendall(b"".join(packets))
    buffered = BufferedSocket(right)
    for packet in packets:  # as paho reads: the type byte, the length bytes, then the rest
        assert buffered.recv(1) == packet[:1]
        length = bytearray()
        while True:
            byte = buffered.recv(1)
            length += byte
            if not byte[0] & 0x80:
                break
        assert bytes(length) == remaining_length(len(packet) - 1 - len(length))
        body = b""
        while len(body) < len(packet) - 1 - len(length):
            body += buffered.recv(len(packet) - 1 - len(length) - len(body))
        assert packet == packet[:1] + bytes(length) + body
    assert buffered.buffered() == 0 and buffered.pending() == 0
    left.close()
    buffered.close()


def test_gathered_writes_survive_a_full_kernel_buffer_in_order() -> None:
    left, right = socket.socketpair()
    left.setblocking(False)
    buffered = BufferedSocket(left)
    data = [bytes([n % 251]) * 4096 for n in range(2000)]  # 8 MB: more than the socket buffers hold
    for chunk in data:
        assert buffered.send(chunk) == len(chunk)
    received = bytearray()
    pushed_back = 0
    while buffered.wants_write():
        try:
            buffered.flush()
        except BlockingIOError:
            pushed_back += 1
        received += right.recv(1 << 20)
    while len(received) < sum(map(len, data)):
        received += right.recv(1 << 20)
    assert pushed_back > 0  # the kernel did push back, and nothing was lost or reordered
    assert bytes(received) == b"".join(data)
    left.close()
    right.close()


def test_a_publish_packet_is_what_mqtt_says() -> None:
    packet = publish_packet("a/b", b"hi", 7)
    assert packet == b"\x32\x09\x00\x03a/b\x00\x07hi"
    assert publish_packet("a/b", b"hi", 7, v5=True) == b"\x32\x0a\x00\x03a/b\x00\x07\x00hi"
    assert remaining_length(321) == b"\xc1\x02"  # the MQTT spec's own example

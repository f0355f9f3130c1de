"""Ports handed to the local cluster's servers are picked where no outgoing
connection can take them meanwhile (launch.devservices.free_port)."""

from __future__ import annotations

import socket
from pathlib import Path

from launch.devservices import FIRST_PICKED_PORT, free_port


def test_a_picked_port_is_below_the_ephemeral_range_and_binds() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(20):
        port = free_port()
        assert FIRST_PICKED_PORT <= port < max(low, FIRST_PICKED_PORT + 1000)
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))

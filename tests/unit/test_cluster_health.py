"""GET /cluster says which members answer, probing their metrics servers."""

from __future__ import annotations

from prometheus_client import start_http_server

from gateway.http.cluster import probe_members
from launch.devservices import free_port


async def test_a_member_that_does_not_answer_is_named() -> None:
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1")
    try:
        health = await probe_members(
            {"worker-1": f"127.0.0.1:{port}", "worker-2": f"127.0.0.1:{free_port()}"}
        )
    finally:
        server.shutdown()
        thread.join()
    assert health == {"worker-1": "ok", "worker-2": "not answering: ConnectError"}

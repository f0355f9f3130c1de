"""A role's own HTTP port (``CRONFLEET_METRICS_ADDR``): Prometheus metrics,
and the ``/healthz`` and ``/readyz`` that an orchestrator probes (Kubernetes,
deploy/k8s). The gateway answers these on its API port instead.

``/healthz`` says the process is alive: its event loop keeps beating (a loop
wedged by blocking code stops the beat, and the probe fails once the last
beat is older than ``stale_after``). ``/readyz`` says it is serving: from the
first beat until it is told to stop (SIGTERM), so a draining member is taken
out of rollouts and disruption budgets at once. Every other path serves the
metrics, as the port always has.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

StartResponse = Callable[..., Any]


class Probes:
    """What this process answers on /healthz and /readyz."""

    def __init__(self, stale_after: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._stale_after = stale_after
        self._clock = clock
        self._beat: float | None = None
        self._stopping = False

    def beat(self) -> None:
        """The event loop is turning (called from it, every second or so)."""
        self._beat = self._clock()

    def stop(self) -> None:
        """Told to stop: draining, no longer ready."""
        self._stopping = True

    def alive(self) -> bool:
        """True while starting (no beat yet) and while the beat is fresh."""
        return self._beat is None or self._clock() - self._beat <= self._stale_after

    def ready(self) -> bool:
        return self._beat is not None and not self._stopping and self.alive()


def _app(probes: Probes) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    metrics = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path not in ("/healthz", "/readyz"):
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        ok, word = (probes.alive(), "ok") if path == "/healthz" else (probes.ready(), "ready")
        body = json.dumps({"status": word if ok else "unavailable"}).encode()
        start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
        return [body]

    return app


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a probe every few seconds is not worth a line


def serve(addr: str, probes: Probes) -> str:
    """Serve metrics and probes on ``addr`` (host:port; port 0 picks one) in
    a background thread; return the address it listens on."""
    host, _, port = addr.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][0]
    server_class = type("_Server", (_Server,), {"address_family": family})
    httpd: WSGIServer = make_server(host, int(port or 0), _app(probes), server_class, handler_class=_Quiet)
    threading.Thread(target=httpd.serve_forever, name="metrics", daemon=True).start()
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{httpd.server_address[1]}"

"""A webhook receiver on loopback that records what it is sent, and answers
as a test scripts it: a status per request in turn, or "hang" (answers
nothing until the test ends), then 200 once the script is spent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int | None  # the status sent back; None: it hung

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def alert_id(self) -> str:
        return self.headers["x-cronfleet-alert-id"]


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: list[int | str] = []
        self.redirect_to: str | None = None  # answer 307 to this location (once per request)
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, *script: int | str) -> None:
        """The next requests get these answers in turn (a status, or "hang")."""
        with self._lock:
            self.script = list(script)

    def delivered(self, path: str | None = None) -> list[Received]:
        """The requests answered 2xx (to ``path`` if given)."""
        with self._lock:
            return [
                r
                for r in self.received
                if r.answered is not None and 200 <= r.answered < 300 and (path is None or r.path == path)
            ]

    def all(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if path is None or r.path == path]

    def _next(self) -> int | str:
        with self._lock:
            return self.script.pop(0) if self.script else 200

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if receiver.redirect_to:
                    record = Received(self.path, headers, body, 307)
                    self._reply(307, {"Location": receiver.redirect_to})
                else:
                    answer = receiver._next()
                    record = Received(self.path, headers, body, None if answer == "hang" else int(answer))
                with receiver._lock:
                    receiver.received.append(record)
                if receiver.redirect_to:
                    return
                if record.answered is None:
                    receiver._release.wait(60)
                    return
                self._reply(record.answered)

            def _reply(self, status: int, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up on us

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.close()

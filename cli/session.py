"""What every command shares: the SDK client (made on first use, for the
address and token the config resolves) and the CLI's errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import typer

from cli import config
from cronfleet.client import Client, ClientError

# Error codes that mean the input was wrong (exit 2); anything else exits 1.
BAD_INPUT_CODES = ("invalid_argument", "invalid_spec")


class Failure(Exception):
    """An error to show as one line, with the exit code it deserves."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class BadInput(Failure):
    """What the user typed or wrote cannot be used (exit 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 2)


@dataclass
class Session:
    flag_addr: str | None
    env: Mapping[str, str]
    _client: Client | None = field(default=None, init=False)

    def address(self) -> config.Address:
        return config.resolve_address(self.flag_addr, self.env)

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.address().addr, token=config.resolve_token(self.env))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def session(ctx: typer.Context) -> Session:
    found: Session = ctx.find_root().obj
    return found


def client_error_line(exc: ClientError, addr: str) -> str:
    """One line: the field, then what is wrong (the server's words)."""
    message = " ".join(exc.message.split()) or exc.code
    if exc.code == "unavailable":
        return f"cannot reach the gateway at {addr} ({message})"
    if exc.code == "unauthenticated":
        return f"{message} (log in with: cronfleet login --email ... --password ...)"
    if exc.field and not message.startswith(f"{exc.field}:"):
        return f"{exc.field}: {message}"
    return message


def exit_code_of(exc: ClientError) -> int:
    return 2 if exc.code in BAD_INPUT_CODES else 1

"""``cronfleet signup | login | logout | whoami``: the caller's account and
the saved token."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import config
from cli.output import Format, OutputOption, console, emit
from cli.session import session

Email = Annotated[str, typer.Option(help="your email")]
Password = Annotated[str, typer.Option(prompt=True, hide_input=True, help="asked for when not given")]


def signup(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="your name")],
    email: Email,
    password: Password,
    output: OutputOption = Format.table,
) -> None:
    """Make an account (then: cronfleet login).

    Example: cronfleet signup --name Ann --email ann@example.com --password correct-horse
    """
    user = session(ctx).client.signup(name, email, password)
    emit(
        user,
        output,
        lambda out: out.print(f"signed up {user['email']}; now: cronfleet login --email {email}"),
    )


def login(ctx: typer.Context, email: Email, password: Password) -> None:
    """Log in; the token is saved (mode 600) for the commands that follow.

    Example: cronfleet login --email ann@example.com --password correct-horse
    """
    s = session(ctx)
    token = s.client.login(email, password)
    path = config.credentials_path(s.env)
    config.save_credentials(path, token, s.address().addr)
    console().print(f"logged in as {email}; token saved to {path}")


def logout(ctx: typer.Context) -> None:
    """End the session on the server and forget the saved token.

    Example: cronfleet logout
    """
    s = session(ctx)
    s.client.logout()
    config.forget_credentials(config.credentials_path(s.env))
    console().print("logged out")


def whoami(ctx: typer.Context, output: OutputOption = Format.table) -> None:
    """Who the saved token is, and which gateway answered (and why that one).

    Example: cronfleet whoami
    """
    s = session(ctx)
    where = s.address()
    me = s.client.me()
    emit(
        me | {"gateway": where.addr},
        output,
        lambda out: out.print(f"{me['name']} <{me['email']}> at {where.addr} (from {where.source})"),
    )

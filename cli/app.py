"""The root of the ``cronfleet`` command: global options, the command
groups, and ``main``, which turns every error into one line and an exit
code (2: bad input, 1: anything else)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from cli import account, cluster, dead_letters, executions, files, jobs, server
from cli.config import ConfigError
from cli.entry import ROLE_NAMES
from cli.session import Failure, Session, client_error_line, exit_code_of
from cronfleet.client import ClientError
from cronfleet.errors import CronfleetError

OWN_PACKAGES = frozenset({"cronfleet", "cli", "launch", "coordinator", "scheduler", "worker", "gateway"})
SERVER_INSTALL = "pip install 'cronfleet[server]'"

HELP = """A distributed cron: jobs, their runs, and the cluster that fires them.

Talks gRPC to the gateway at --addr, else $CRONFLEET_GRPC_ADDR, else the
config file (~/.config/cronfleet/config.yaml: "addr: host:port"). Tables for
people; -o json or -o yaml give the API's objects, for scripts.

Example: cronfleet login --email ann@example.com; cronfleet jobs list;
cronfleet apply -f jobs.yaml; cronfleet logs 1234 -f
"""

app = typer.Typer(
    name="cronfleet",
    help=HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    addr: Annotated[
        str | None,
        typer.Option("--addr", metavar="HOST:PORT", help="the gateway's gRPC address (else the env, config)"),
    ] = None,
) -> None:
    ctx.obj = Session(addr, os.environ)
    ctx.call_on_close(ctx.obj.close)


app.add_typer(jobs.app, name="jobs")
app.add_typer(executions.app, name="executions")
app.add_typer(dead_letters.app, name="dead-letters")
COMMANDS: list[Callable[..., None]] = [
    files.apply,
    files.diff,
    files.export,
    cluster.cluster,
    cluster.preview,
]
for command in COMMANDS:
    app.command()(command)
ACCOUNT: list[Callable[..., None]] = [account.signup, account.login, account.logout, account.whoami]
for command in ACCOUNT:
    app.command(rich_help_panel="Account")(command)


@app.command("logs", epilog="Example: cronfleet logs 1234 -f")
def logs(
    ctx: typer.Context,
    execution: executions.ExecutionArg,
    follow: executions.FollowOption = False,
) -> None:
    """A run's console output (live with -f, until the run ends)."""
    executions.show_logs(ctx, execution, follow)


app.command(rich_help_panel="Run cronfleet")(server.up)
app.command(rich_help_panel="Run cronfleet")(server.migrate)
app.command(rich_help_panel="Run cronfleet")(server.certs)
app.command("secret-key", rich_help_panel="Run cronfleet")(server.secret_key)
for role in ROLE_NAMES:
    app.command(role, rich_help_panel="Run cronfleet")(server.role_command(role))


def main(argv: list[str] | None = None) -> None:
    """Run the command; every failure is one line on stderr and an exit code."""
    command = typer.main.get_command(app)
    args = sys.argv[1:] if argv is None else argv
    try:
        result: Any = command.main(args, prog_name="cronfleet", standalone_mode=False)
    except ClientError as exc:
        _fail(client_error_line(exc, _address(args)), exit_code_of(exc))
    except Failure as exc:
        _fail(str(exc), exc.exit_code)
    except (CronfleetError, ConfigError) as exc:
        _fail(str(exc), 2)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except BrokenPipeError:  # `cronfleet jobs list | head`: the reader left, no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except typer.Abort:
        _fail("aborted", 1)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] in OWN_PACKAGES:
            raise
        # `pip install cronfleet` is the SDK; up, migrate and the roles need more.
        _fail(f"this command needs the server's libraries ({exc.name} is missing): {SERVER_INSTALL}", 2)
    except Exception as exc:
        if not _is_usage_error(exc):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]  # the help of the command named
            sys.exit(0)
        _fail(" ".join(exc.format_message().split()), 2)  # type: ignore[attr-defined]
    sys.exit(result if isinstance(result, int) else 0)


def _is_usage_error(exc: Exception) -> bool:
    """Click's own errors (bad option, missing argument): Typer vendors Click,
    so they are known by shape rather than class."""
    return hasattr(exc, "format_message") and hasattr(exc, "exit_code")


def _address(args: list[str]) -> str:
    """The address a failed call went to, for its error line."""
    i = args.index("--addr") if "--addr" in args else -1
    flag = args[i + 1] if 0 <= i < len(args) - 1 else None
    flag = next((a.split("=", 1)[1] for a in args if a.startswith("--addr=")), flag)
    return Session(flag, os.environ).address().addr


def _fail(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)

"""Where the CLI finds the gateway and the caller's token, and where ``login``
keeps it.

The address: ``--addr``, else ``CRONFLEET_GRPC_ADDR``, else ``addr`` in the
config file, else the address the saved login was made against, else
``127.0.0.1:50051``. The config file is ``config.yaml`` in the config folder
(``$XDG_CONFIG_HOME/cronfleet``, by default ``~/.config/cronfleet``), or the
file ``CRONFLEET_CLI_CONFIG`` names
(``CRONFLEET_CONFIG`` is the servers' TOML). The token: ``CRONFLEET_TOKEN``, else the
credentials file (``credentials.json`` in the same folder, or
``CRONFLEET_CREDENTIALS``), written readable by its owner only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cronfleet.client import DEFAULT_ADDR

CONFIG_KEYS = ("addr",)


class ConfigError(Exception):
    """A config or credentials file that cannot be used; names the file."""


@dataclass(frozen=True)
class Address:
    """The gateway's gRPC address and where it was found (for ``whoami``)."""

    addr: str
    source: str


def config_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")) / ".config")
    return Path(base).expanduser() / "cronfleet"


def config_path(env: Mapping[str, str]) -> Path:
    return (
        Path(env["CRONFLEET_CLI_CONFIG"]).expanduser()
        if env.get("CRONFLEET_CLI_CONFIG")
        else config_dir(env) / "config.yaml"
    )


def credentials_path(env: Mapping[str, str]) -> Path:
    if env.get("CRONFLEET_CREDENTIALS"):
        return Path(env["CRONFLEET_CREDENTIALS"]).expanduser()
    return config_dir(env) / "credentials.json"


def read_config(path: Path) -> dict[str, Any]:
    """The config file's settings ({} when there is none)."""
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping like 'addr: 127.0.0.1:50051'")
    for key, value in data.items():
        if key not in CONFIG_KEYS:
            raise ConfigError(f"{path}: {key}: unknown setting (known: {', '.join(CONFIG_KEYS)})")
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path}: {key}: must be a host:port string")
    return data


def read_credentials(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return data if isinstance(data, dict) else {}


def resolve_address(flag: str | None, env: Mapping[str, str]) -> Address:
    """Flag, then environment, then config file, then the saved login's, then the default."""
    if flag:
        return Address(flag, "--addr")
    if env.get("CRONFLEET_GRPC_ADDR"):
        return Address(env["CRONFLEET_GRPC_ADDR"], "CRONFLEET_GRPC_ADDR")
    path = config_path(env)
    if addr := read_config(path).get("addr"):
        return Address(str(addr), str(path))
    creds = credentials_path(env)
    if addr := read_credentials(creds).get("grpc_addr"):
        return Address(str(addr), f"{creds} (saved by login)")
    return Address(DEFAULT_ADDR, "default")


def resolve_token(env: Mapping[str, str]) -> str | None:
    token = env.get("CRONFLEET_TOKEN") or read_credentials(credentials_path(env)).get("token")
    return str(token) if token else None


def save_credentials(path: Path, token: str, addr: str) -> None:
    """Write the token readable by its owner only, from the first byte
    (created 0600 and replaced whole, never widened for a moment)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"token": token, "grpc_addr": addr}, out)
    os.chmod(partial, 0o600)  # whatever the umask
    os.replace(partial, path)


def forget_credentials(path: Path) -> None:
    path.unlink(missing_ok=True)

"""Secret env values: :class:`Secret` (sealed at rest, ``"***"`` in every
reply and repr) and the environment a run gets with them opened."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

MASK = "***"  # how every reply shows a secret env value


@dataclass(frozen=True, repr=False)
class Secret:
    """An env value marked secret (``{"value": v, "secret": true}``).

    ``value`` is the plaintext: held from the request until the gateway seals
    it, and from the scheduler opening it until the run. ``sealed`` is how it
    is stored (cronfleet.sealing). Neither set: "the value stored under this
    name", what a reply's ``"***"`` sent back in an update means. Every codec
    shows it as ``"***"``, and so does its repr (a log line cannot leak it).
    """

    value: str | None = None
    sealed: str | None = None

    def __repr__(self) -> str:
        return "Secret(***)"


EnvValue = str | Secret


def reveal_env(env: Mapping[str, EnvValue]) -> dict[str, str]:
    """The environment a run gets: secrets as their opened values."""
    out = {}
    for name, value in env.items():
        if isinstance(value, Secret):
            if value.value is None:
                raise ValueError(f"env {name}: the secret is not opened")
            out[name] = value.value
        else:
            out[name] = value
    return out


def secret_names(env: Mapping[str, EnvValue]) -> list[str]:
    return [name for name, value in env.items() if isinstance(value, Secret)]

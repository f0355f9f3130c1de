"""Where cronfleet may call on a user's behalf: HTTP jobs (worker) and alert
webhooks (coordinator) both take URLs from users.

By default not loopback, link-local or unspecified addresses, nor the
cluster's own hosts (Postgres, etcd, S3, the gateway), so a user cannot aim
cronfleet at its own insides or a cloud's metadata service.
``CRONFLEET_HTTP_ALLOW_INTERNAL`` lifts that (the local cluster and tests);
``HTTP_DENY_NETWORKS`` and ``HTTP_ALLOW_NETWORKS`` refine it. Each address
a host resolves to is checked; the connection then resolves again, so a host
whose DNS answer changes in between is not caught (the deny list of an
egress firewall is the stronger guard).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import urllib.parse
from dataclasses import dataclass

from cronfleet.config import Settings


class Unreachable(Exception):
    """Not called: the destination is refused, or its name does not resolve."""


class Blocked(Unreachable):
    """The destination is one the policy refuses (``blocked_destination: ...``)."""


INTERNAL_NETWORKS = ("127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10", "0.0.0.0/8", "::/128")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class OutboundPolicy:
    """Where cronfleet may call on a user's behalf (HTTP jobs, alert webhooks)."""

    deny: tuple[Network, ...] = ()
    allow: tuple[Network, ...] = ()  # when set, only these
    deny_hosts: frozenset[str] = frozenset()  # the cluster's own host names and addresses

    @classmethod
    def from_settings(cls, s: Settings) -> OutboundPolicy:
        deny = [n for n in s.http_deny_networks.split(",") if n.strip()]
        hosts: set[str] = set()
        if not s.http_allow_internal:
            deny += INTERNAL_NETWORKS
            hosts = _cluster_hosts(s)
        allow = [n for n in s.http_allow_networks.split(",") if n.strip()]
        return cls(
            deny=tuple(ipaddress.ip_network(n.strip(), strict=False) for n in deny),
            allow=tuple(ipaddress.ip_network(n.strip(), strict=False) for n in allow),
            deny_hosts=frozenset(hosts),
        )

    async def check(self, url: str) -> None:
        """Raise Blocked unless every address ``url``'s host resolves to is allowed."""
        host = urllib.parse.urlsplit(url).hostname or ""
        if host.lower() in self.deny_hosts:
            raise Blocked(f"blocked_destination: {host} is one of the cluster's own hosts")
        for resolved in await _resolve(host):
            # ::ffff:127.0.0.1 is 127.0.0.1 to the kernel: judge the IPv4 address.
            mapped = resolved.ipv4_mapped if isinstance(resolved, ipaddress.IPv6Address) else None
            address: Address = mapped or resolved
            if address.compressed in self.deny_hosts or any(address in n for n in self.deny):
                raise Blocked(f"blocked_destination: {host} ({address}) is not allowed")
            if self.allow and not any(address in n for n in self.allow):
                raise Blocked(f"blocked_destination: {host} ({address}) is outside the allowed networks")


def _cluster_hosts(s: Settings) -> set[str]:
    urls = [s.database_url, s.s3_endpoint_url, s.public_url]
    urls += [f"//{a}" for a in (s.http_addr, s.grpc_addr, *s.etcd_endpoints.split(","))]
    hosts = {urllib.parse.urlsplit(u.strip()).hostname or "" for u in urls if u.strip()}
    return {h.lower() for h in hosts if h and h not in ("0.0.0.0", "::")}


async def _resolve(host: str) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Unreachable(f"connection failed: cannot resolve {host}: {exc.strerror}") from exc
    return [ipaddress.ip_address(info[4][0]) for info in infos]

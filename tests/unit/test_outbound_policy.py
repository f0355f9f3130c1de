"""Where HTTP jobs and alert webhooks may call: not the cluster's insides, unless allowed."""

from __future__ import annotations

import dataclasses

import pytest

from cronfleet.config import Settings
from cronfleet.outbound import Blocked, OutboundPolicy

CLUSTER = dataclasses.replace(
    Settings(),
    database_url="postgresql://postgres@db.internal:5432/cronfleet",
    etcd_endpoints="10.0.0.5:2379",
    s3_endpoint_url="http://minio.internal:9000",
)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/api/v1/jobs",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped: the same loopback
        "http://[::ffff:169.254.169.254]/",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://db.internal:5432/",
        "http://10.0.0.5:2379/v3/kv/range",
        "http://minio.internal:9000/cronfleet-logs",
        "http://localhost/",
    ],
)
async def test_the_clusters_insides_are_refused_by_default(url: str) -> None:
    with pytest.raises(Blocked, match="blocked_destination"):
        await OutboundPolicy.from_settings(CLUSTER).check(url)


async def test_public_addresses_are_allowed() -> None:
    await OutboundPolicy.from_settings(CLUSTER).check("http://93.184.216.34/")


async def test_the_local_cluster_may_call_loopback() -> None:
    await OutboundPolicy.from_settings(dataclasses.replace(CLUSTER, http_allow_internal=True)).check(
        "http://127.0.0.1:9/"
    )


async def test_operators_can_deny_more_or_allow_only_some() -> None:
    denied = OutboundPolicy.from_settings(dataclasses.replace(CLUSTER, http_deny_networks="93.184.0.0/16"))
    with pytest.raises(Blocked):
        await denied.check("http://93.184.216.34/")
    only = OutboundPolicy.from_settings(dataclasses.replace(CLUSTER, http_allow_networks="203.0.113.0/24"))
    await only.check("http://203.0.113.7/")
    with pytest.raises(Blocked, match="outside the allowed networks"):
        await only.check("http://93.184.216.34/")

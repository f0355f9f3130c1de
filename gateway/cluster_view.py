"""GET /cluster: asked of whichever coordinator etcd says leads."""

from __future__ import annotations

import aetcd
import grpc

from cronfleet import etcd, rpc
from cronfleet.errors import Unavailable
from cronfleet.v1 import coordinator_pb2_grpc, jobs_pb2


class ClusterView:
    """Asks the elected coordinator for the cluster state, one channel per leader."""

    def __init__(self, client: aetcd.Client, keys: etcd.Keys, tls: rpc.InternalTls | None) -> None:
        self.client = client
        self.keys = keys
        self.tls = tls
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def __call__(self) -> jobs_pb2.Cluster:
        try:
            leader, _ = await etcd.read_json(self.client, self.keys.leader)
        except (aetcd.exceptions.ClientError, OSError) as exc:
            raise Unavailable(f"etcd unavailable: {exc}") from exc
        if not leader:
            raise Unavailable("no coordinator is leader right now")
        address = leader["address"]
        if address not in self._channels:
            self._channels[address] = rpc.internal_channel(address, self.tls)
        stub = coordinator_pb2_grpc.CoordinatorServiceStub(self._channels[address])
        try:
            cluster: jobs_pb2.Cluster = await stub.GetCluster(jobs_pb2.GetClusterRequest(), timeout=3)
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(f"coordinator {leader.get('id')} did not answer: {exc.details()}") from exc
        return cluster

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()

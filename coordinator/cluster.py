"""The cluster as etcd and Postgres see it: GET /api/v1/cluster, served by
the coordinator over CoordinatorService."""

from __future__ import annotations

import aetcd
import grpc

from cronfleet import etcd, rpc
from cronfleet.db import Database
from cronfleet.errors import Unavailable
from cronfleet.v1 import coordinator_pb2_grpc, jobs_pb2


async def read_cluster(client: aetcd.Client, keys: etcd.Keys, db: Database) -> jobs_pb2.Cluster:
    try:
        leader, epoch = await etcd.read_json(client, keys.leader)
        roles = await etcd.read_all_members(client, keys, ("coordinators", "schedulers", "workers"))
        coordinators, schedulers, workers = roles["coordinators"], roles["schedulers"], roles["workers"]
        shard_map, _ = await etcd.read_json(client, keys.shard_map)
    except (aetcd.exceptions.ClientError, OSError) as exc:
        raise Unavailable(f"etcd unavailable: {exc}") from exc
    owners = (shard_map or {}).get("owners", {})
    running = {r["worker_id"]: r["running"] for r in await db.fetch_all("running_by_worker")}
    members = coordinators | schedulers | workers
    return jobs_pb2.Cluster(
        metrics={m: info["metrics"] for m, info in members.items() if info.get("metrics")},
        leader=(leader or {}).get("id", ""),
        epoch=epoch,
        coordinators=sorted(coordinators),
        schedulers=[
            jobs_pb2.SchedulerInfo(id=s, shards=owners.get(s, []), address=info.get("address", ""))
            for s, info in sorted(schedulers.items())
        ],
        workers=[
            jobs_pb2.WorkerInfo(
                id=w,
                capacity=info.get("capacity", 0),
                running=running.get(w, 0),
                runtime=info.get("runtime", ""),
                stopping=bool(info.get("stopping")),
            )
            for w, info in sorted(workers.items())
        ],
    )


class CoordinatorServicer(coordinator_pb2_grpc.CoordinatorServiceServicer):
    def __init__(self, client: aetcd.Client, keys: etcd.Keys, db: Database) -> None:
        self.client = client
        self.keys = keys
        self.db = db

    async def GetCluster(
        self, request: jobs_pb2.GetClusterRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.Cluster:
        await rpc.admit_peer(context, "gateway")
        return await read_cluster(self.client, self.keys, self.db)

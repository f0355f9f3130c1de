"""The cluster as the elected coordinator sees it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from google.protobuf.json_format import MessageToDict

from cronfleet.v1 import jobs_pb2
from gateway.http.common import Caller

router = APIRouter(prefix="/api/v1", tags=["cluster"])
ClusterSource = Callable[[], Awaitable[jobs_pb2.Cluster]]


def cluster_to_json(cluster: jobs_pb2.Cluster) -> dict[str, Any]:
    d = MessageToDict(cluster, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    return {
        "leader": d["leader"],
        "epoch": int(d.get("epoch", 0)),
        "coordinators": d["coordinators"],
        "schedulers": [
            {"id": s["id"], "shards": s["shards"], "address": s["address"]} for s in d["schedulers"]
        ],
        "workers": d["workers"],
        "metrics": d.get("metrics", {}),
    }


@router.get("/cluster")
async def get_cluster(request: Request, user: Caller) -> dict[str, Any]:
    source: ClusterSource = request.app.state.cluster
    view = cluster_to_json(await source())
    view["metrics"]["gateway"] = request.app.state.metrics_addr  # this gateway's own
    return view

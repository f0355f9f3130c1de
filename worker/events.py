"""What a run tells its scheduler: the Started event; the Checkpoint event of
a live run; the Finished event, from the runtime's outcome (a live run's, or
one a previous life of the worker left), or the Returned event of a run a
stopping worker never started."""

from __future__ import annotations

import time

from google.protobuf import timestamp_pb2

from cronfleet.codec import proto
from cronfleet.v1 import dispatch_pb2
from worker.runtime import RunOutcome, cut_checkpoint


def finished_event(
    execution_id: int, outcome: RunOutcome, log_url: str, log_bytes: int = 0
) -> dispatch_pb2.RunEvent:
    event = dispatch_pb2.RunEvent(
        execution_id=execution_id,
        kind=dispatch_pb2.EVENT_KIND_FINISHED,
        status=outcome.status,
        error=outcome.error,
        log_url=log_url,
        log_bytes=log_bytes if log_url else 0,
    )
    proto.set_time(event.at, outcome.ended_at or time.time())
    if outcome.exit_code is not None:
        event.exit_code = outcome.exit_code
    if outcome.checkpoint is not None:
        event.checkpoint, event.checkpoint_truncated = outcome.checkpoint, outcome.checkpoint_truncated
    if outcome.steps:  # most runs have none: the generic copy was a twentieth of a no-op run
        proto.encode_into(event, outcome, ("steps",))
        failed = [s for s in outcome.steps if s.exit_code != 0]
        if failed and not event.error:
            event.error = f"step {failed[0].name} exited {failed[0].exit_code}"
    return event


def started_event(execution_id: int, at: float, fire_at: float, container_id: str) -> dispatch_pb2.RunEvent:
    event = dispatch_pb2.RunEvent(
        execution_id=execution_id,
        kind=dispatch_pb2.EVENT_KIND_STARTED,
        lateness_ms=(at - fire_at) * 1000,
        container_id=container_id,
    )
    proto.set_time(event.at, at)
    return event


def returned_event(execution_id: int, fire: timestamp_pb2.Timestamp | None = None) -> dispatch_pb2.RunEvent:
    event = dispatch_pb2.RunEvent(
        execution_id=execution_id, kind=dispatch_pb2.EVENT_KIND_RETURNED, at=proto.timestamp_at(time.time())
    )
    if fire is not None:
        event.scheduled_at.CopyFrom(fire)
    return event


def checkpoint_event(execution_id: int, data: bytes) -> dispatch_pb2.RunEvent:
    """What a live run has left in $CRONFLEET_CHECKPOINT (cut to the most kept)."""
    kept, truncated = cut_checkpoint(data)
    return dispatch_pb2.RunEvent(
        execution_id=execution_id,
        kind=dispatch_pb2.EVENT_KIND_CHECKPOINT,
        at=proto.timestamp_at(time.time()),
        checkpoint=kept,
        checkpoint_truncated=truncated,
    )

"""The blocking SDK client, :class:`Client`: one gRPC call per method."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import grpc

from cronfleet.client import calls
from cronfleet.client.transport import (
    DEFAULT_ADDR,
    PAGE,
    TIMEOUT,
    Metadata,
    Op,
    Reply,
    T,
    error,
    idempotency,
    with_token,
)
from cronfleet.codec import proto
from cronfleet.v1 import jobs_pb2 as pb
from cronfleet.v1 import jobs_pb2_grpc


class Client:
    """Blocking client: each method is one call and returns API.md's JSON as dicts."""

    def __init__(self, address: str = DEFAULT_ADDR, token: str | None = None) -> None:
        self._channel = grpc.insecure_channel(address)
        self._stub = jobs_pb2_grpc.JobServiceStub(self._channel)
        self.token = token

    def _metadata(self, extra: Metadata = ()) -> Metadata:
        return with_token(self.token, extra)

    def _run(self, op: Op[T]) -> T:
        try:
            reply = getattr(self._stub, op.rpc)(
                op.request, metadata=self._metadata(op.metadata), timeout=TIMEOUT
            )
        except grpc.RpcError as exc:
            raise error(exc) from None
        return op.read(reply)

    def signup(self, name: str, email: str, password: str) -> Reply:
        return self._run(calls.signup(name, email, password))

    def login(self, email: str, password: str) -> str:
        """Log in; the token is kept for the calls that follow, and returned."""
        self.token = self._run(calls.login(email, password))
        return self.token

    def logout(self) -> None:
        self._run(calls.logout())
        self.token = None

    def me(self) -> Reply:
        return self._run(calls.me())

    def create_job(self, *, idempotency_key: str | None = None, **spec: Any) -> Reply:
        """Create a job; with ``idempotency_key``, a retry of the same call creates nothing new."""
        return self._run(calls.create_job(spec, idempotency_key))

    def list_jobs(
        self, status: str = "", limit: int = 0, page_token: str = "", *, q: str = "", recent: int = 0
    ) -> Reply:
        return self._run(calls.list_jobs(status, limit, page_token, q, recent))

    def get_job(self, job_id: str) -> Reply:
        return self._run(calls.get_job(job_id))

    def all_jobs(self, status: str = "", *, q: str = "", recent: int = 0) -> list[Reply]:
        """Every job of the caller (deleted ones only with ``status="deleted"``), all pages."""
        jobs: list[Reply] = []
        token = ""
        while True:
            page = self.list_jobs(status, PAGE, token, q=q, recent=recent)
            jobs.extend(page["jobs"])
            token = page["next_page_token"]
            if not token:
                return jobs

    def find_job(self, name_or_id: str) -> Reply:
        """A job by id, or by its exact name among the caller's jobs that are
        not deleted; ClientError when none or several have that name."""
        if calls.is_job_id(name_or_id):
            return self.get_job(name_or_id)
        return calls.the_job_named(name_or_id, self.all_jobs(q=name_or_id))

    def replace_job(self, job_id: str, **spec: Any) -> Reply:
        return self._run(calls.replace_job(job_id, spec))

    def update_job(self, job_id: str, **changes: Any) -> Reply:
        return self._run(calls.update_job(job_id, changes))

    def delete_job(self, job_id: str, *, cancel_running: bool = False) -> None:
        request = pb.DeleteJobRequest(id=job_id, cancel_running=cancel_running)
        self._run(Op("DeleteJob", request, lambda _r: None))

    def run_job(self, job_id: str, *, idempotency_key: str | None = None) -> Reply:
        return self._run(
            Op("RunJob", pb.RunJobRequest(id=job_id), calls.execution_json, idempotency(idempotency_key))
        )

    def pause_job(self, job_id: str) -> Reply:
        return self._run(calls.job_command("PauseJob", pb.PauseJobRequest(id=job_id)))

    def resume_job(self, job_id: str) -> Reply:
        return self._run(calls.job_command("ResumeJob", pb.ResumeJobRequest(id=job_id)))

    def list_executions(
        self, job_id: str = "", status: str = "", worker_id: str = "", limit: int = 0, page_token: str = ""
    ) -> Reply:
        return self._run(calls.list_executions(job_id, status, worker_id, limit, page_token))

    def get_execution(self, execution_id: str) -> Reply:
        return self._run(
            Op("GetExecution", pb.GetExecutionRequest(id=str(execution_id)), calls.execution_json)
        )

    def logs(self, execution_id: str) -> str:
        return self._run(calls.logs(execution_id))

    def follow_logs(self, execution_id: str) -> Iterator[str]:
        """The run's output as it is written, from the start, until the run is over."""
        call = self._stub.FollowExecutionLogs(calls.follow_request(execution_id), metadata=self._metadata())
        text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            for chunk in call:
                if part := text.decode(chunk.data):
                    yield part
        except grpc.RpcError as exc:
            raise error(exc) from None
        finally:
            call.cancel()  # a reader that stops early ends the stream
        if tail := text.decode(b"", final=True):
            yield tail

    def cancel_execution(self, execution_id: str) -> Reply:
        return self._run(
            Op("CancelExecution", pb.CancelExecutionRequest(id=str(execution_id)), calls.execution_json)
        )

    def list_dead_letters(self, job_id: str = "", limit: int = 0, page_token: str = "") -> Reply:
        return self._run(calls.list_dead_letters(job_id, limit, page_token))

    def replay_dead_letter(self, dead_letter_id: str) -> Reply:
        return self._run(
            Op("ReplayDeadLetter", pb.ReplayDeadLetterRequest(id=str(dead_letter_id)), calls.execution_json)
        )

    def delete_dead_letter(self, dead_letter_id: str) -> None:
        request = pb.DeleteDeadLetterRequest(id=str(dead_letter_id))
        self._run(Op("DeleteDeadLetter", request, lambda _r: None))

    def backfill_job(self, job_id: str, start: datetime | str, end: datetime | str) -> Reply:
        """One run per fire of the job's schedule in [start, end] that has none."""
        return self._run(calls.backfill(job_id, start, end))

    def list_alerts(self, job_id: str = "", limit: int = 0, page_token: str = "") -> Reply:
        return self._run(calls.list_alerts(job_id, limit, page_token))

    def new_webhook_secret(self) -> str:
        """A new secret for the signatures of this user's alerts (shown only now)."""
        return self._run(calls.new_webhook_secret())

    def stats(self, job_id: str = "") -> Reply:
        """The caller's totals, or one job's stats."""
        return self._run(calls.stats(job_id))

    def preview_schedule(self, schedule: str, timezone: str = "UTC", count: int = 5) -> Reply:
        return self._run(calls.preview(schedule, timezone, count))

    def cluster(self) -> Reply:
        return self._run(Op("GetCluster", pb.GetClusterRequest(), proto.cluster_to_json))

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

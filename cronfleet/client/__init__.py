"""The Python SDK: ``cronfleet.Client`` (blocking) and ``AsyncClient`` over gRPC.

    from cronfleet import Client
    c = Client("127.0.0.1:50051")
    c.login("me@example.com", "secret-password")
    job = c.create_job(name="hello", command="echo hello")
    print(c.list_executions(job_id=job["id"]))

Jobs and executions come back as plain dicts shaped like API.md's JSON.
Errors raise :class:`ClientError` with the server's code, message and field.

Its modules: ``blocking`` (:class:`Client`), ``asynchronous``
(:class:`AsyncClient`), ``calls`` (each call's RPC, request and reply, once
for both), ``transport`` (:class:`ClientError`, the call and its metadata).
"""

from cronfleet.client.asynchronous import AsyncClient
from cronfleet.client.blocking import Client
from cronfleet.client.calls import is_job_id, the_job_named
from cronfleet.client.transport import DEFAULT_ADDR, PAGE, TIMEOUT, ClientError, Reply

__all__ = [
    "DEFAULT_ADDR",
    "PAGE",
    "TIMEOUT",
    "AsyncClient",
    "Client",
    "ClientError",
    "Reply",
    "is_job_id",
    "the_job_named",
]

"""The gateway: the public gRPC JobService and its HTTP/JSON facade."""

from gateway.app import run_gateway as run

__all__ = ["run"]

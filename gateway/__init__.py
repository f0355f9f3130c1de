"""The gateway role: the public gRPC JobService and its HTTP/JSON facade."""

from gateway.node import run

__all__ = ["run"]

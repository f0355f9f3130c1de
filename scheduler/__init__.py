"""The scheduler role: claims due fires on its shards and streams them to workers."""

from scheduler.node import run

__all__ = ["run"]

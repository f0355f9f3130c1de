"""The worker role: arms each assigned run, releases it at its fire time,
reports what happened."""

from worker.node import run

__all__ = ["run"]

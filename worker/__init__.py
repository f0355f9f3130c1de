"""The worker role: arms each assigned run, releases it at its fire time,
reports what happened."""

from worker.service import run

__all__ = ["run"]

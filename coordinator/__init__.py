"""The coordinator role: elected through etcd, it assigns shards to live
schedulers under a fencing epoch and declares dead workers' runs lost."""

from coordinator.node import run

__all__ = ["run"]

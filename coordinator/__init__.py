"""The coordinator: elected through etcd; owns membership and the shard map."""

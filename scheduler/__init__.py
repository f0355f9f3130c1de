"""The scheduler: claims due fires on its shards and streams them to workers."""

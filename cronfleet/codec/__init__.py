"""One codec each way between the records of ``cronfleet.models`` and the
shapes they travel in:

- ``jsonapi``: API.md's JSON (HTTP replies, user input, the ``jobs.spec`` column)
- ``proto``: the protobuf messages of ``cronfleet.v1`` (gRPC, the dispatch stream)
  (``proto_fields``: how any record's fields map to a message's, under it)
- ``rows``: Postgres rows and query parameters

JSON and proto follow each record's field types, so a new job field needs no
code here unless it has a new kind of type.
"""

"""The gateway: the public gRPC JobService and its HTTP/JSON facade."""

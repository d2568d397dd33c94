"""The one request path: transport, retries, lifecycle (close, cancel, fork), bodies,
multipart and the telemetry hooks."""

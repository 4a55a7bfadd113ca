"""HTTP and WebSocket transport: authenticate, validate, call services, serialise."""

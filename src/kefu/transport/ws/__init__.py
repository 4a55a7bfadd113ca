"""The WebSocket endpoints `/ws/visitor` and `/ws/agent` (protocol §3)."""

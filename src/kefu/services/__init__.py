"""Use cases shared by HTTP and WebSocket: validate, change state in one transaction, publish after commit."""

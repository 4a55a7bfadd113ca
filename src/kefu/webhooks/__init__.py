"""Signed webhook deliveries: registration, the transactional outbox, and the delivery worker."""

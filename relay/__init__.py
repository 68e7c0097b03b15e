"""The real-time alarm relay: community broker → classify → minimise → sign → durable outbox → upstream brokers."""

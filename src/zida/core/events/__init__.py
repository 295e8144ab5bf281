"""Events: the transactional outbox every mutation writes its events to (delivery comes later)."""

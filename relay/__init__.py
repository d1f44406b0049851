"""relay: a transactional outbox that delivers analytics events to Mixpanel."""

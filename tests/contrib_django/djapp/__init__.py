"""The host application of relay's Django tests: employees, organisations, deliveries."""

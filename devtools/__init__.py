"""Development and test helpers that are not part of the service (never imported by ``backend``)."""

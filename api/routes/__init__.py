"""Routes: one router module per resource, all under ``/api/v1``."""

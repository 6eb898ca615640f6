"""Rules stage — arrives with its own issue (see `issues`)."""

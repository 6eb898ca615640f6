"""Queries: one module per resource, the SQL behind the routes (routes hold none)."""

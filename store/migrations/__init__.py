"""SQL migrations, applied in version order by store.migrate."""

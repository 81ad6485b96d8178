"""PostgreSQL access: pool factory, migrations and query functions."""

"""Schema, migrations and repository functions: SQLite by default, PostgreSQL for servers."""

"""DuckDB schema, migrations and rollup SQL, read with importlib.resources."""

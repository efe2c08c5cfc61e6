"""The DuckDB store: connection (lock wait, macros), migrations, dimensions, month rebuild, transactions, rows."""

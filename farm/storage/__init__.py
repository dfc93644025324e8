"""The store and its readers: the DuckDB file, the coordinator's typed writes, post-mortem recipes, exports, reports
and the live view."""

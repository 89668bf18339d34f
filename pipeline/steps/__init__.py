"""The import's steps as plain functions of their inputs: `stage.run`, `profile.run`,
`load.run` (and what they share: shapefile headers, DuckDB, error classification).

Nothing is imported here, so the ETL service can use `shapefile` without geo_engine.
"""

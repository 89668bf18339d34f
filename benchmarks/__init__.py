"""The benchmark command (`make bench`, `python -m benchmarks.run`): geo_engine and the
import pipeline side by side with pyogrio, pyproj and ogr2ogr on the same files.

Benchmarks measure and report; they never assert a time. Modules: `run` (the command),
`reads`, `transforms`, `imports`, `memory` (one per section), `inputs` (the generated
files), `database` (the throwaway benchmark databases and ogr2ogr), `child` (the work
run in a subprocess of its own), `common` and `report` (timing, tables, facts).
"""

"""The module the worker command loads: `dramatiq pipeline.worker`.

The broker must be set before `pipeline.actors` is imported, because Dramatiq binds
each actor to the global broker when the actor is declared.
"""

from core.settings import get_settings
from pipeline.broker import setup_broker

broker = setup_broker(get_settings())

import pipeline.actors  # noqa: E402  (declares the actors on `broker`)
import pipeline.analysis.actors  # noqa: E402, F401  (raster imports and analyses)
from pipeline import maintenance  # noqa: E402, F401  (compaction after loads)
from pipeline.steps import duck  # noqa: E402

# Paid once when the worker starts, not by the first import it runs.
duck.warm_up()

__all__ = ["broker"]

"""Raster imports and the analyses (interpolate, vectorize, grid): their parameters, their
step functions and (in `pipeline.analysis.actors`, imported by the worker only) their actors.

Each task is one lead step (`pipeline.tasks.LEAD_STEPS`): a raster import or an analysis
writing a raster registers a `raster` source with its COG in the raster store and ends
there; one writing polygons stages them as GeoParquet and goes on through the import's
own profile and load steps.
"""

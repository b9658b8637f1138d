"""The pipeline's handlers, one small module each; :mod:`gateway.pipeline.table` says
which run for which disposition."""

"""Tests of the python3-sci template: data.numpy(), the raster-stats example, the bundle."""

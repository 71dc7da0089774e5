"""asv benchmarks for xprospect; modules mirror the package (``idw`` -> ``xprospect.grid.idw``)."""

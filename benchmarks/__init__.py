"""Benchmarks of rootassets (run `python benchmarks/run.py`); a package so that import-linter sees them."""

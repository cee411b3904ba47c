"""Generators of clearly labelled SYNTHETIC NEON-format data, for tests and benchmarks only."""

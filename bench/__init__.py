"""Benchmarks (not tests): `make bench` or `python -m bench`. Each prints a table of measured figures."""

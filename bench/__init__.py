"""Benchmarks for Tandem: see bench/README.md and bench/run.py."""

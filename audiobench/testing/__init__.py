"""Helpers for tests and benchmarks: real servers on 127.0.0.1, never the internet."""

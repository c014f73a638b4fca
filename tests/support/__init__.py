"""Helpers for the engine tests: a strict CuPy stand-in and input generators."""

"""Discrete Transformer: learn algorithms from examples and read them back out as verified programs."""
__version__ = "0.1.0"

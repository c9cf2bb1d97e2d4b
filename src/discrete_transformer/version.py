"""The package version (``discrete_transformer.__version__``), in a module of its own so that any
module can record it without importing the package's public API. Keep it equal to ``version`` in
pyproject.toml."""

__version__ = "0.1.0"

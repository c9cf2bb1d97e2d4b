"""The model: selector, numerical attention, numerical MLP, transformer."""

from .selector import SelectMode, Selector
from .transformer import DataSpec, DiscreteTransformer

__all__ = ["SelectMode", "Selector", "DataSpec", "DiscreteTransformer"]

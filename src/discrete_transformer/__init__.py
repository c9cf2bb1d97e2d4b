"""Discrete Transformer: learn algorithms from examples and read them back out as verified programs.

Public API::

    from discrete_transformer import train
    result = train("sum_last2", out="runs/sum_last2", seed=0)
    result.test  # {"exact": ..., "nmse": ..., "n": ...}

The pipeline reads like the folder layout: ``tasks`` (data) → ``model`` → ``training``
(search, hardening, polish, restarts) → ``extract`` → ``bench``.
"""

__version__ = "0.1.0"

from .config import ModelConfig, TrainConfig  # noqa: E402
from .api import TrainResult, load_run, train  # noqa: E402

__all__ = ["ModelConfig", "TrainConfig", "TrainResult", "__version__", "load_run", "train"]

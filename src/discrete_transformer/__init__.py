"""Discrete Transformer: learn algorithms from examples and read them back out as verified programs.

Public API::

    import discrete_transformer as dtx
    result = dtx.train("sum_last2", out="runs/sum_last2", seed=0)
    result.test  # {"exact": ..., "nmse": ..., "n": ...}
    program = dtx.extract(result)  # a verified, self-contained Python program
    print(program.source)

The pipeline reads like the folder layout: ``tasks`` (data) → ``model`` → ``training``
(search, hardening, polish, restarts) → ``extract`` → ``bench``.
"""

__version__ = "0.1.0"

from .config import ModelConfig, TrainConfig  # noqa: E402
from .api import TrainResult, load_run, train  # noqa: E402
from . import extract  # noqa: E402  # the subpackage is callable: dtx.extract(result) -> Program

__all__ = ["ModelConfig", "TrainConfig", "TrainResult", "__version__", "extract", "load_run", "train"]

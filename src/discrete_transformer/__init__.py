"""Discrete Transformer: learn algorithms from examples and read them back out as verified programs.

Public API::

    import discrete_transformer as dtx
    result = dtx.train("sum_last2", out="runs/sum_last2", seed=0)
    result.test  # {"exact": ..., "nmse": ..., "n": ...}
    program = dtx.extract(result)  # a verified, self-contained Python program
    print(program.source)

The pipeline reads like the folder layout: ``tasks`` (data) → ``model`` → ``training``
(search, hardening, polish, restarts) → ``extraction`` → ``bench``. The subpackage is
``extraction`` so that ``dtx.extract`` is the API function: importing a subpackage binds its name
in this package's namespace.
"""

from .api import TrainResult, extract, load_run, train
from .config import ModelConfig, TrainConfig
from .version import __version__

__all__ = ["ModelConfig", "TrainConfig", "TrainResult", "__version__", "extract", "load_run", "train"]

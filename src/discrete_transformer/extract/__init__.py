"""Extraction (DESIGN §4): a trained Discrete Transformer -> a verified, readable Python program.

:func:`.pipeline.extract` is the list of stages, one module each:

- :mod:`.config`     ``ExtractConfig`` and ``ExtractionError``
- :mod:`.load`       the run and its data
- :mod:`.graph`      the typed IR (selector argmaxes, nodes with their evidence, dead-code elimination)
- :mod:`.record`     the hardened model run on held-out sequences, every intermediate recorded
- :mod:`.heads`      attention heads by hypothesis testing (:mod:`.hypotheses`)
- :mod:`.mlps`       MLPs by symbolic regression (:mod:`.symbolic`)
- :mod:`.build`      a choice of characterisation per module -> the program IR (names: :mod:`.naming`)
- :mod:`.program`    the IR rendered (:mod:`.codegen`), verified (:mod:`.verify`); the ``Program``
- :mod:`.search`     the repair when the first program fails (refits: :mod:`.refit`)
- :mod:`.simplify`   a verified program made smaller
- :mod:`.trace`      an IR evaluated on data, variable by variable (for the refits and the search)
- :mod:`.pipeline`   all of it: ``extract(result_or_run_dir) -> Program``

Submodules are imported lazily so that ``import discrete_transformer.extract.hypotheses`` stays light.

The package itself is callable: ``discrete_transformer.extract(result)`` is
:func:`discrete_transformer.api.extract` (``import discrete_transformer as dtx;
dtx.extract(result)``). A plain function bound to the same attribute would be replaced by this
package the first time any of its submodules is imported, so the package is the function.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["ExtractConfig", "ExtractionError", "Program", "Verification", "extract"]


def __getattr__(name: str) -> Any:
    if name in ("ExtractConfig", "ExtractionError", "Program", "extract"):
        from . import pipeline

        return getattr(pipeline, name)
    if name == "Verification":
        from .verify import Verification

        return Verification
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _CallablePackage(types.ModuleType):
    def __call__(self, result_or_run_dir: Any, dataset: Any = None, config: Any = None, progress: Any = None) -> Any:
        """extract(result_or_run_dir, dataset=None, config=None, progress=None) -> Program;
        see :func:`discrete_transformer.api.extract`."""
        from ..api import extract as _extract

        return _extract(result_or_run_dir, dataset=dataset, config=config, progress=progress)


sys.modules[__name__].__class__ = _CallablePackage

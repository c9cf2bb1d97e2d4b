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
- :mod:`.simplify`   a verified program made smaller (moves: :mod:`.simplify_stage`, fits and
                     sizes: :mod:`.simplify_fits`, rewrites: :mod:`.simplify_cores`, the
                     acceptance rule and budget: :mod:`.simplify_base`)
- :mod:`.trace`      an IR evaluated on data, variable by variable (for the refits and the search)
- :mod:`.pipeline`   all of it: ``extract(result, dataset=None, config=None, progress=None) -> Program``

The package is ``extraction``, not ``extract``, so that ``discrete_transformer.extract`` is
unambiguously the API function (:func:`discrete_transformer.api.extract`, which also accepts a
run directory and locks it), as ``training`` leaves ``discrete_transformer.train`` to the API.
"""

from .config import ExtractConfig, ExtractionError
from .pipeline import Program, extract
from .verify import Verification

__all__ = ["ExtractConfig", "ExtractionError", "Program", "Verification", "extract"]

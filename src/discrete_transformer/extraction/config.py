"""The extraction's settings (:class:`ExtractConfig`) and its one error (:class:`ExtractionError`).

Every stage module takes the config; none imports :mod:`.pipeline`, which composes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .symbolic import ALL_OPERATORS, SRConfig

__all__ = ["ExtractConfig", "ExtractionError"]


class ExtractionError(ValueError):
    """Extraction cannot start (no data to record or verify on, unusable run directory)."""


@dataclass(frozen=True)
class ExtractConfig:
    threshold: float = 0.995  # hypothesis acceptance: Clopper-Pearson lower bound >= this
    confidence: float = 0.95
    min_queries: int = 5000  # held-out query positions for hypothesis testing (at least)
    max_record: int = 4000  # recorded sequences (at most, memory permitting)
    sr_budget: float = 3.0  # seconds per symbolic regression
    # 10, not 9: c*e + d costs 4 nodes, so an affine copy of a size-6 expression such as
    # sqrt(a**2 + b**2) (Path_Length's inner MLP) needs 10 (docs/design.md, Symbolic regression)
    sr_max_size: int = 10
    # The symbolic-regression grammar (an inductive-bias knob): a subset of symbolic.ALL_OPERATORS.
    sr_operators: tuple[str, ...] = SRConfig().operators
    # The grammar's integer constants; None = derived from each regression's data
    # (symbolic.data_constants: 0, 1, 2 and the ranges of the integer inputs and target).
    sr_int_constants: tuple[int, ...] | None = None
    grid_points: int = 2048  # grid samples per MLP, on top of the seen inputs
    # Nominal seconds of work for the fallback search, from its start (a regression counts the
    # work it did, a candidate check 0.1 s; wall clock is capped at 4x).
    search_budget: float = 60.0
    search_rows: int = 2000  # training sequences the search scores candidates on
    max_alternatives: int = 6  # per module, tried by the search
    # Nominal seconds of work for the simplification stage on a verified program (a regression
    # counts its budget, a candidate check 0.1 s; wall clock is capped at 4x); 0 turns it off.
    simplify_budget: float = 10.0
    python_check: int = 200  # test sequences also run through the standard-library program()
    seed: int = 0

    def __post_init__(self) -> None:
        ops = tuple(self.sr_operators)
        unknown = [o for o in ops if o not in ALL_OPERATORS]
        if unknown:
            raise ValueError(
                f"ExtractConfig.sr_operators: unknown operator(s) {', '.join(unknown)}; "
                f"choose from {', '.join(ALL_OPERATORS)}"
            )
        object.__setattr__(self, "sr_operators", ops)

    def sr_config(self, budget_factor: float = 1.0) -> SRConfig:
        """The symbolic-regression settings of one regression (`budget_factor` × sr_budget)."""
        return SRConfig(
            max_size=self.sr_max_size,
            time_budget=budget_factor * self.sr_budget,
            operators=self.sr_operators,
            int_constants=self.sr_int_constants,
        )

"""Characterising attention heads: the routing hypotheses a head's recorded patterns pass.

A head is tested (:func:`~.hypotheses.test_head`, simplest hypothesis first) when something live
first reads it; the search later asks for its full list of alternatives (the accepted
hypotheses, then the best rejected ones).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .config import ExtractConfig
from .graph import Module
from .hypotheses import TestResult, test_head
from .record import Recording

__all__ = ["HeadAlt", "HeadCharacteriser", "snap"]


@dataclass(frozen=True)
class HeadAlt:
    """One characterisation of a head: a tested routing hypothesis."""

    result: TestResult


def snap(a: np.ndarray) -> np.ndarray:
    """Values within float noise of an integer become that integer (equality tests on keys)."""
    r = np.rint(a)
    return np.where(np.abs(a - r) <= 1e-6 * np.maximum(1.0, np.abs(a)), r, a)


class HeadCharacteriser:
    """Each head's alternatives, tested lazily on the recording and kept."""

    def __init__(self, rec: Recording, cfg: ExtractConfig, log: Callable[[str], None]) -> None:
        self.rec, self.cfg, self.log = rec, cfg, log
        self.alts: dict[str, list[HeadAlt]] = {}
        self.full: set[str] = set()  # heads whose full list of alternatives was made
        self.results: dict[str, list[TestResult]] = {}  # every hypothesis tested, per head

    def test(self, m: Module, exhaustive: bool) -> list[TestResult]:
        q, k, v = m.reads
        resid = self.rec.resid
        _accepted, results = test_head(
            self.rec.pattern[m.key],
            snap(resid[:, :, q]),
            snap(resid[:, :, k]),
            resid[:, :, v],
            self.rec.out[m.key],
            threshold=self.cfg.threshold,
            confidence=self.cfg.confidence,
            exhaustive=exhaustive,
            aggregate=m.aggregate,
        )
        return results

    def alternatives(self, m: Module, full: bool = False) -> list[HeadAlt]:
        """The first accepted hypothesis (or the best rejected one); with `full`, up to
        ``max_alternatives``: all accepted ones, then the best rejected ones."""
        if m.key not in self.alts or (full and m.key not in self.full):
            results = self.test(m, exhaustive=full)
            self.results[m.key] = results
            acc = [r for r in results if r.accepted]
            rej = sorted((r for r in results if not r.accepted), key=lambda r: -r.agreement)
            alts = acc + rej[: max(1, self.cfg.max_alternatives - len(acc))] if full else (acc[:1] or rej[:1])
            self.alts[m.key] = [HeadAlt(r) for r in alts[: self.cfg.max_alternatives if full else 1]]
            if full:
                self.full.add(m.key)
            best = self.alts[m.key][0].result
            self.log(
                f"{m.key}: {best.hypothesis} agreement {best.agreement:.4f} "
                f"(lower bound {best.lower_bound:.4f}){'' if best.accepted else ' NOT accepted'}"
            )
        return self.alts[m.key]

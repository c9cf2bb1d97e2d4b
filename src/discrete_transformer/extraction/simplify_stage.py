"""The simplification stage's moves (:class:`Simplifier`), cheapest first, each kept only when the
program gets cheaper (:func:`~.simplify_fits.program_cost`), stays exact on the training
sequences and still verifies (on the longer sequences and off-range inputs too if it did):

1. :meth:`~Simplifier.front` — per MLP line, the smaller candidates of its Pareto fronts (no
   regression: the fronts are already there);
2. :meth:`~Simplifier.duplicates` — a variable equal to an earlier one (two heads computing the
   same thing) is read in its place, and goes as dead code;
3. :meth:`~Simplifier.cores` — an intermediate MLP replaced by one of its inputs, by its core (the
   simplest expression its output is a monotone function of, :meth:`~.refit.Refits.core`) or by
   the classes of one input (:func:`~.simplify_cores.class_core`), the readout MLPs refitted
   against the targets over what the program then computes;
4. :meth:`~Simplifier.readout_refits` — each readout MLP regressed afresh against the targets,
   over its own inputs, the inputs composed through the MLPs feeding it, its inputs and `pos`,
   and its inputs but one (a head it does not need goes), with a maximum size below the line's
   with the output's gain and trend (which the refit then absorbs);
5. :meth:`~Simplifier.folds` — each line as SymPy simplifies it (constants the regression built
   from the data's integers folded: `abs(40 + (x - 69))` is `abs(x - 29)`);
6. :meth:`~Simplifier.integer` — on a discrete task, an intermediate line with `sqrt` regressed
   afresh against its own outputs without it;
7. :meth:`~Simplifier.compose` — a head routing another head's output as one head on that
   head's input, when the values agree (`shift(shift(x, 3), 1)` is `shift(x, 4)`);
8. :meth:`~Simplifier.sums` — an averaging head whose reader multiplies it back by its count
   written as the summing head it is, the reader refitted (7 and 8 work on the IR: last).

The candidates are judged, and the budget kept, by :class:`~.simplify_base.Session`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np

from ..verdict import Kind
from .config import ExtractionError
from .graph import Module
from .mlps import MLPAlt
from .program import Attempt
from .simplify_base import Session, head_reads
from .simplify_cores import (
    CLASS_SIZE,
    class_core,
    class_rankings,
    composed_heads,
    input_alternative,
    replaced_head,
    summed_program,
    summing,
)
from .simplify_fits import (
    Fit,
    alt_cost,
    fit_config,
    fit_to_outputs,
    folded,
    front_alternatives,
    output_ops,
    program_cost,
    remapped,
    transcendentals,
)
from .trace import trace

__all__ = ["FRONT_TRIES", "MIN_REFIT_SIZE", "Simplifier"]

FRONT_TRIES = 4  # smaller Pareto candidates tried per MLP line, cheapest first
MIN_REFIT_SIZE = 3  # a readout line this small or smaller is not regressed afresh
_GROUP = {"classes": "class of its input", "two groups": "group of its input's classes"}


class Simplifier(Session):
    """The stage's moves on a :class:`~.simplify_base.Session`; :meth:`run` makes them in order."""

    def front(self) -> None:
        """Per MLP line, the cheaper candidates of its regressions' Pareto fronts."""
        env: dict[int, np.ndarray] | None = None
        readouts = {m.key: c for c, m in self.readouts().items()}

        def targets(inputs: tuple[int, ...], c: int | None) -> tuple[np.ndarray, np.ndarray] | None:
            nonlocal env
            if c is None:
                return None
            env = trace(self.best.ir, self.rows.x) if env is None else env
            if any(i not in env for i in inputs):
                return None
            X = np.stack([np.asarray(env[i], dtype=np.float64).reshape(-1) for i in inputs], axis=-1)
            return X, self.rows.y[..., c].reshape(-1)

        for m, _alt in self.live_mlps():
            cur = self.current(m)
            if cur is None:
                continue
            c = readouts.get(m.key)
            cands = front_alternatives(
                self.mlps, m, cur, alt_cost(cur, self.kind), self.kind, self.known, lambda ins, c=c: targets(ins, c)
            )
            for alt in cands[:FRONT_TRIES]:
                why = f"{m.key}: a smaller candidate of its Pareto front, size {cur.size} -> {alt.size} ({alt.sr_key})"
                if self.budget.left() <= 0:
                    return
                if self.offer(self.with_alt(self.best.choice, m, alt), why):
                    env = None
                    break

    def duplicates(self) -> None:
        """A node equal on the training rows to an input, `pos` or an earlier node: the MLPs that
        read it read that variable instead (a head that reads it keeps it)."""
        ir = self.best.ir
        env = trace(ir, self.rows.x)
        npos = ir.inputs[-1].index + 1 if ir.inputs else 0
        earlier = [v.index for v in ir.inputs] + [npos]
        for node in [n for n in ir.nodes if not n.is_alias]:
            b = node.out.index
            same = next((a for a in earlier if a in env and np.array_equal(env[a], env[b])), None)
            earlier.append(b)
            if same is None or head_reads(self.best.ir, b):
                continue
            choice = dict(self.best.choice)
            for m, alt in self.live_mlps():
                if b in alt.inputs and m.out != b:
                    choice = self.with_alt(choice, m, remapped(alt, b, same))
            names = self.graph.variable_names
            self.offer(choice, f"{node.key} equals {names[same]}: its readers read {names[same]}")
            if self.budget.left() <= 0:
                return

    def cores(self) -> None:
        """Each intermediate MLP replaced (:meth:`stand_ins`: one of its inputs as it is, its core,
        the classes of one input; the first that verifies) with the readout MLPs refitted against
        the targets over what the program then computes; when two or more have cores and none
        was kept, all of them at once."""
        readout = set(self.graph.readout)
        cores: list[tuple[Module, MLPAlt]] = []
        for m, _alt in self.live_mlps():
            cur = self.current(m)
            if m.out in readout or cur is None:
                continue
            # A line that is already a core (the repair search put it there) may still be one of
            # its inputs as it is: `x + 0.005·pos` whose readout subtracts the pos term again.
            for cand, why, fits in self.stand_ins(m, cur, inputs_only=cur.fitted_to == "core"):
                if self.fit_budget() <= 0:
                    return
                if cand.fitted_to == "core" and cand.sr_key.endswith("(core)"):
                    cores.append((m, cand))
                if self.core_refit(self.with_alt(self.best.choice, m, cand), why, fits):
                    cores = []
                    break
        if len(cores) > 1 and self.fit_budget() > 0:
            choice = dict(self.best.choice)
            for m, core in cores:
                choice = self.with_alt(choice, m, core)
            self.core_refit(choice, ", ".join(f"{m.key} replaced by its core {c.source}" for m, c in cores))

    def stand_ins(self, m: Module, cur: MLPAlt, inputs_only: bool = False) -> Iterator[tuple[MLPAlt, str, list[Fit]]]:
        """What may replace intermediate MLP `m`, cheapest line first: one of its inputs as it is
        (no line), then (unless `inputs_only`) its core, the classes of one input (lazily: each
        ranking of them costs a regression; :func:`~.simplify_cores.class_rankings`)."""
        uniq = self.mlps.inputs_of(m.reads)
        if not all(self.known(u) for u in uniq):  # an input its expression ignores, never looked at
            return
        names = self.graph.variable_names
        for u in uniq:
            yield input_alternative(self.mlps, m, cur, u), f"{m.key} replaced by its input {names[u]}", []
        if inputs_only:
            return
        core = self.refits.core(m)
        if core is not None and len(uniq) > 1:  # (with one input the core is that input)
            yield core, f"{m.key} replaced by its core {core.source}", []
        for ranking in class_rankings(self.mlps, m):
            budget = self.fit_budget()
            if budget <= 0:
                return
            self.budget.charge(budget)
            self.fits += 1
            conf = fit_config(self.cfg, CLASS_SIZE, budget, Kind.DISCRETE)  # ranks are integers: no sqrt
            fit = class_core(self.mlps, m, cur, ranking, conf, self.cfg.seed)
            if fit is not None:
                yield fit[0], f"{m.key} replaced by {fit[0].source}, one value per {_GROUP[ranking.groups]}", [fit]

    def core_refit(self, choice: dict[str, int], why: str, fits: Sequence[Fit] = ()) -> bool:
        """`choice` with every refittable readout MLP refitted against the targets over what its
        program computes (own inputs, then composed), within what leaves it cheaper than now."""
        try:
            ir = self.builder.build(choice)
        except ExtractionError:
            return False
        readouts = self.readouts()
        live = self.builder.live(choice)
        lines = sum(alt_cost(live[m.out][1], self.kind) for m in readouts.values() if m.out in live)
        lines += sum(output_ops(ir.outputs[c]) for c in readouts)  # a refit absorbs the output's gain and trend
        allowance = self.cost - (program_cost(ir, self.kind) - lines) - 1 - (len(readouts) - 1)
        env = trace(ir, self.rows.x)
        fits = list(fits)
        for c, m in readouts.items():
            fit = None
            for tag, inputs in self.input_sets(m, env, drop_one=False):
                fit = self.fit_targets(env, m, c, inputs, allowance, tag)
                if fit is not None:
                    break
            if fit is None:
                return False
            choice = self.with_alt(choice, m, fit[0])
            fits.append(fit)
        text = "; ".join(
            f"{f[1].split(' ')[0]} fitted to the true targets: {f[0].source}" for f in fits[len(fits) - len(readouts) :]
        )
        return self.offer(choice, f"{why}; {text}", fits)

    def readout_refits(self) -> None:
        """Each readout MLP regressed afresh against the targets, smaller than its line."""
        for c, m in self.readouts().items():
            cur = self.current(m)
            if cur is None:
                continue
            # the line and the output's own gain and trend, which a refit against the targets absorbs
            line = alt_cost(cur, self.kind) + output_ops(self.best.ir.outputs[c])
            if line <= MIN_REFIT_SIZE or (cur.fitted_to == "targets" and line == cur.size):
                continue  # too small to shrink, or a refit already and integer-clean
            env = trace(self.best.ir, self.rows.x)
            for tag, inputs in self.input_sets(m, env, drop_one=True):
                fit = self.fit_targets(env, m, c, inputs, line - (0 if tag.startswith("without") else 1), tag)
                if fit is None:
                    if self.fit_budget() <= 0:
                        return
                    continue
                alt = fit[0]
                why = f"{m.key} simplified: size {cur.size} -> {alt.size} against the true targets ({alt.sr_key})"
                if self.offer(self.with_alt(self.best.choice, m, alt), why, [fit]):
                    break

    def folds(self) -> None:
        """Each MLP line as SymPy simplifies it, when that is smaller (:func:`~.simplify_fits.folded`)."""
        for m, _alt in self.live_mlps():
            cur = self.current(m)
            fold = folded(cur) if cur is not None else None
            if fold is not None and self.budget.left() > 0:
                why = f"{m.key} as SymPy simplifies it: {fold.source} (size {cur.size} -> {fold.size})"
                self.offer(self.with_alt(self.best.choice, m, fold), why)

    def integer(self) -> None:
        """On a discrete task, each intermediate line with a transcendental call regressed afresh
        against its own outputs without one."""
        if self.kind != Kind.DISCRETE:
            return
        readout = set(self.graph.readout)
        for m, alt in self.live_mlps():
            if m.out in readout or alt.fitted_to == "core" or transcendentals(alt.source) == 0:
                continue
            budget = self.fit_budget()
            if budget <= 0:
                return
            self.budget.charge(budget)
            self.fits += 1
            conf = fit_config(self.cfg, min(alt_cost(alt, self.kind) - 1, self.cfg.sr_max_size), budget, self.kind)
            fit = fit_to_outputs(self.mlps, m, alt, conf, self.cfg.seed)
            if fit is not None:
                why = f"{m.key} without sqrt: {fit[0].source} (size {fit[0].size}, was {alt.size})"
                self.offer(self.with_alt(self.best.choice, m, fit[0]), why, [fit])

    def compose(self) -> None:
        """A head that routes another head's output replaced by one head on that head's input
        when it computes the same values on the training rows (:func:`~.simplify_cores.composed_heads`)."""
        for outer in self.best.ir.heads:
            ir = self.best.ir
            if outer not in ir.nodes or outer.is_alias:
                continue
            env = None
            for new in composed_heads(ir, outer):
                cand = replaced_head(ir, outer, new)
                if program_cost(cand, self.kind) >= self.cost or self.budget.left() <= 0:
                    continue
                env = trace(ir, self.rows.x) if env is None else env
                if not np.array_equal(env[outer.out.index], trace(cand, self.rows.x)[outer.out.index]):
                    continue
                if self.offer_ir(cand, self.best.choice, f"{outer.key} on {new.v.name} directly: {new.note}"):
                    break

    def sums(self) -> None:
        """An averaging head read by one readout MLP written as the head summing the same values,
        the reader refitted against the targets (`prefix_mean_x * (pos + 1)` is `prefix_sum_x`).
        Works on the IR, so it comes after the moves that build from choices."""
        readouts = {m.out: (c, m) for c, m in self.readouts().items()}
        for head in self.best.ir.heads:
            ir = self.best.ir
            got = summing(ir, head) if head in ir.nodes else None
            if got is None or self.fit_budget() <= 0:
                continue
            new, nodes = got
            reader = next(n for n in ir.mlps if any(v.index == head.out.index for v in n.reads))
            if reader.out.index not in readouts:
                continue
            c, m = readouts[reader.out.index]
            rest = dataclasses.replace(ir, nodes=tuple(nodes))
            env = trace(rest, self.rows.x)
            inputs = tuple(dict.fromkeys(v.index for v in reader.reads))
            fit = self.fit_targets(env, m, c, inputs, self.cost - program_cost(rest, self.kind) - 1, "summing head")
            if fit is None:
                continue
            cand = summed_program(ir, new, reader, fit[0])
            why = f"{head.key} sums what it averaged ({new.out.name}), {m.key} fitted to the true targets: {fit[0].source}"
            self.offer_ir(cand, self.best.choice, why, [fit])

    def run(self) -> Attempt:
        """All moves in order, while the budget lasts; the cheapest program that stayed right."""
        for move in (
            self.front,
            self.duplicates,
            self.cores,
            self.readout_refits,
            self.folds,
            self.integer,
            self.compose,
            self.sums,
        ):
            if self.budget.left() <= 0:
                break
            move()
        return self.best

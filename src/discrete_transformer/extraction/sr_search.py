"""Symbolic regression's enumeration: bottom-up by size over the grammar, a vectorised block of
candidates at a time on the probe rows; each block is pruned (non-finite, constant, seen
before), stored as operands of larger sizes, scored with its fitted-constant forms, and a
candidate exact on the probe is verified on the subsample and all data (a failure restarts the
search with the counterexample rows added to the probe)."""

from __future__ import annotations

import bisect
import time
from typing import Any

import numpy as np

from .sr_dedup import FingerprintSet, fingerprint_weights, fingerprints
from .sr_fit import apply_form, form_pred, ls_affine
from .sr_linear import LIN_TERM_SIZE, LinearCombinations
from .sr_problem import Problem
from .sr_trees import (
    BINARY_FN,
    BINARY_OPS,
    COMMUTATIVE,
    UNARY_FN,
    UNARY_OPS,
    Tree,
    eval_tree,
    tree_size,
)

_BLOCK_ROWS = 4096  # candidates evaluated per vectorised block
_STORE_CAP = 16_000_000  # max floats kept for operand pools (128 MB)
_MAX_RESTARTS = 4
_COUNTEREXAMPLES = 8


class Stop(Exception):
    """The search ends: the budget is spent, or an exact answer is known and nothing smaller is left."""


class Restart(Exception):
    """Verification failed on rows the probe lacks: search again with them added to the probe."""

    def __init__(self, rows: np.ndarray) -> None:
        super().__init__()
        self.rows = rows


class Search(LinearCombinations):
    """One enumeration over a fixed probe (a restart builds a new one): `run` returns or raises
    `Stop` when it is done, `Restart` with counterexample rows when verification fails."""

    def __init__(self, prob: Problem, probe: np.ndarray, seed: int) -> None:
        self.prob = prob
        cfg = prob.cfg
        self.max_size = cfg.max_size
        self.fit = cfg.fit_constants
        ops = set(cfg.operators)
        self.unary = [o for o in UNARY_OPS if o in ops]
        self.binary = [o for o in BINARY_OPS if o in ops]
        self.use_where = "where" in ops
        self.probe = probe
        self.Xp = prob.X[probe]
        self.tp = prob.t[probe]
        self.P = len(probe)
        self.st = float(self.tp.sum())
        self.stt = float(self.tp @ self.tp)
        self.stt_c = float(((self.tp - self.tp.mean()) ** 2).sum())
        self.thr2 = 0.25 if prob.integer else prob.tol**2
        self.R = fingerprint_weights(self.P, seed)
        self.seen = FingerprintSet()
        self.block_start: list[int] = []
        self.block_info: list[tuple] = []
        self.next_id = 0
        self.levels: dict[int, dict[str, Any]] = {}
        self.pending: list[np.ndarray] = []
        self.pending_stats: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.stored = 0
        self.store_level = False
        self.level = 0
        self.best: dict[int, tuple[float, str, int | None]] = {}  # size -> (sse, form, id)
        self.trees: dict[int, Tree] = {}
        self.linear_trees: list[Tree] = []  # best linear combination per number of terms
        self.linear_done = False

    # ---- bookkeeping ------------------------------------------------------------------------

    def _tick(self, work: int = 0) -> None:
        if self.spent(work, (self.prob.work_limit, self.prob.deadline)):
            raise Stop

    def spent(self, work: float, limit: tuple[float, float]) -> bool:
        """Count `work` candidate values; True once past (work limit, wall-clock cap)."""
        self.prob.work += work
        return self.prob.work > limit[0] or time.perf_counter() > limit[1]

    def node(self, i: int) -> tuple[str, Any, Any, Any]:
        b = bisect.bisect_right(self.block_start, i) - 1
        off = i - self.block_start[b]
        op, a, bb, c = self.block_info[b]

        def pick(v):
            return v if v is None or isinstance(v, int) else int(v[off])

        return op, pick(a), pick(bb), pick(c)

    def tree(self, i: int) -> Tree:
        t = self.trees.get(i)
        if t is None:
            op, a, b, c = self.node(i)
            if op == "var":
                t = ("var", a)
            elif op == "int":
                t = ("int", a)
            elif op == "where":
                t = ("where", self.tree(a), self.tree(b), self.tree(c))
            elif b is None:
                t = (op, self.tree(a))
            else:
                t = (op, self.tree(a), self.tree(b))
            self.trees[i] = t
        return t

    # ---- block processing ---------------------------------------------------------------------

    def _emit(self, size: int, vals: np.ndarray, op: str, a, b=None, c=None, leaf=False, affine=True) -> None:
        """Prune, store and score one block of candidates (rows of ``vals``) built by ``op``."""
        self._tick(vals.size)
        k = vals.shape[0]
        if k == 0:
            return
        with np.errstate(all="ignore"):
            s = vals.sum(axis=1)
        ok = np.isfinite(s)
        if not leaf:
            ok &= (vals != vals[:, :1]).any(axis=1)
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            return
        V = vals[idx] if idx.size < k else vals
        sel_a = self.seen.add_new(fingerprints(V, self.R))  # ascending: each new fingerprint's first row
        if sel_a.size == 0:
            return
        if sel_a.size < V.shape[0]:
            V = V[sel_a]
        rows = idx[sel_a]
        first = self.next_id
        self.next_id += int(sel_a.size)

        def pick(v):
            return v if v is None or isinstance(v, int) else np.asarray(v)[rows]

        self.block_start.append(first)
        self.block_info.append((op, pick(a), pick(b), pick(c)))
        if self.store_level:
            if (self.stored + V.size) <= _STORE_CAP:
                zero, neg = V == 0, V < 0
                self.pending.append(V)
                self.pending_stats.append(
                    (
                        ~zero.any(axis=1),
                        ~neg.any(axis=1),
                        (zero | (V == 1)).all(axis=1) & zero.any(axis=1),  # 0/1-valued, not constant
                    )
                )
                self.stored += V.size
            else:
                self.store_level = False  # pool full: later levels see a prefix of this one
        self._score(size, first, V, s[rows], affine)

    def _score(self, size: int, first: int, V: np.ndarray, sB: np.ndarray, affine: bool) -> None:
        P, tp = self.P, self.tp
        with np.errstate(all="ignore"):
            sBB = np.einsum("ij,ij->i", V, V)
            sBy = V @ tp
            slack = 1e-9 * (sBB + self.stt) + 1e-300
            limit = P * self.thr2 + slack
            sse0 = np.maximum(sBB - 2.0 * sBy + self.stt, 0.0)
            self._consider(size, "e", first, V, sse0, limit, None, None)
            if not affine or not self.fit:
                return
            if size + 2 <= self.max_size:
                c1 = np.where(sBB > 0, sBy / sBB, 0.0)
                sse1 = np.maximum(self.stt - sBy * c1, 0.0)
                self._consider(size + 2, "ce", first, V, sse1, limit, c1, None)
                d2 = (self.st - sB) / P
                sse2 = np.maximum(sse0 - P * d2 * d2, 0.0)
                self._consider(size + 2, "ed", first, V, sse2, limit, None, d2)
            if size + 4 <= self.max_size:
                see = sBB - sB * sB / P
                good = see > 1e-12 * sBB
                see = np.where(good, see, 1.0)
                set_ = sBy - sB * self.st / P
                c3 = np.where(good, set_ / see, 0.0)
                d3 = (self.st - c3 * sB) / P
                sse3 = np.where(good, np.maximum(self.stt_c - set_ * c3, 0.0), np.inf)
                self._consider(size + 4, "ced", first, V, sse3, limit, c3, d3)

    def _consider(self, size, form, first, V, sse, limit, c, d) -> None:
        j = int(np.argmin(sse))
        cur = self.best.get(size)
        if cur is None or sse[j] < cur[0]:
            self.best[size] = (float(sse[j]), form, first + j)
        if size >= self.prob.exact_size:
            return
        rows = np.flatnonzero(sse <= limit)
        if rows.size == 0:
            return
        Vr = V[rows]
        with np.errstate(all="ignore"):
            if c is not None:
                Vr = Vr * c[rows, None]
            if d is not None:
                Vr = Vr + d[rows, None]
        ex = rows[self.prob.is_exact(Vr, self.tp)]
        for j in ex[np.argsort(sse[ex], kind="stable")]:
            if size >= self.prob.exact_size:
                break
            self._escalate(size, form, first + int(j))

    def _escalate(self, size: int, form: str, i: int | None) -> None:
        """A candidate exact on the probe: refit on the subsample, snap, verify on all data."""
        prob = self.prob
        base = self.tree(i) if i is not None else None
        eS = eval_tree(base, prob.XS) if base is not None else None
        cd = prob.fit_snap(form, eS, prob.tS)
        if cd is None:
            c, d = ls_affine(eS if eS is not None else prob.tS, prob.tS, form) if form != "e" else (1.0, 0.0)
            self._counterexample(prob.S, form_pred(form, eS, c, d, len(prob.S)), prob.tS)
            return
        tree = apply_form(form, base, *cd)
        if not prob.full_is_S:
            pred = eval_tree(tree, prob.X)
            if not prob.is_exact(pred, prob.t):
                self._counterexample(np.arange(len(prob.t)), pred, prob.t)
                return
        pred_S = eval_tree(tree, prob.XS)
        with np.errstate(all="ignore"):
            mse = float(np.mean((pred_S - prob.y[prob.S]) ** 2))
        prob.exact = (min(size, tree_size(tree)), mse, tree)

    def _counterexample(self, rows: np.ndarray, pred: np.ndarray, t: np.ndarray) -> None:
        prob = self.prob
        if prob.restarts >= _MAX_RESTARTS:
            return
        err = prob.errors(pred, t)
        order = np.argsort(-err, kind="stable")
        have = set(self.probe.tolist())
        new = [int(rows[j]) for j in order[: 4 * _COUNTEREXAMPLES] if err[j] > 0 and int(rows[j]) not in have]
        if new:
            prob.restarts += 1
            raise Restart(np.asarray(new[:_COUNTEREXAMPLES], dtype=np.int64))

    # ---- levels -------------------------------------------------------------------------------

    def _finish_level(self, size: int) -> None:
        if self.pending:
            V = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
            self.pending = []
            nonzero, nonneg, cond = (np.concatenate(x) for x in zip(*self.pending_stats))
            start = self.level_start
            lv = {
                "V": V,
                "ids": np.arange(start, start + V.shape[0], dtype=np.int64),
                "nonzero": np.flatnonzero(nonzero),
                "nonneg": np.flatnonzero(nonneg),
                "cond": np.flatnonzero(cond),
            }
            if size == 1:
                lv["nvar"] = self.n_var_rows
            self.levels[size] = lv
        self.pending, self.pending_stats = [], []

    def _begin_level(self, size: int) -> None:
        self.level = size
        self.level_start = self.next_id
        self.store_level = size <= self.max_size - 1 and self.stored < _STORE_CAP
        self.pending, self.pending_stats = [], []

    def run(self) -> None:
        prob = self.prob
        m = self.Xp.shape[1]
        # level 1: variables, then integer constants, then a fitted constant
        self._begin_level(1)
        self._emit(1, self.Xp.T.copy(), "var", np.arange(m), leaf=True)
        self.n_var_rows = self.next_id
        consts = list(prob.constants)
        if consts:
            C = np.repeat(np.asarray(consts, dtype=np.float64)[:, None], self.P, axis=1)
            self._emit(1, C, "int", np.asarray(consts), leaf=True, affine=False)
        if self.fit:
            sse = max(self.stt_c, 0.0)
            cur = self.best.get(1)
            if cur is None or sse < cur[0]:
                self.best[1] = (sse, "k", None)
            if sse <= self.P * self.thr2 + 1e-9 * self.stt and 1 < prob.exact_size:
                self._escalate(1, "k", None)
        self._finish_level(1)
        if prob.exact_size <= 1:
            return
        for size in range(2, self.max_size + 1):
            if prob.exact_size <= size:
                return
            self._begin_level(size)
            self._unary_level(size)
            self._binary_level(size)
            if self.use_where:
                self._where_level(size)
            self._finish_level(size)
            if prob.exact_size <= size:
                return
            if size == min(LIN_TERM_SIZE, self.max_size - 1) and prob.exact is None:
                # The term pool is complete: try linear combinations now, while the budget is
                # fresh (the larger levels that follow can take all of it).
                self.linear_combinations((prob.work_limit, prob.deadline))

    def _check_found(self, size: int) -> None:
        if self.prob.exact_size <= size:
            raise Stop

    def _rows(self, lv: dict, which: str | None = None, vars_only: bool = False) -> np.ndarray:
        n = lv["V"].shape[0]
        rows = np.arange(n) if which is None else lv[which]
        if vars_only and "nvar" in lv:
            rows = rows[rows < lv["nvar"]]
        return rows

    def _unary_level(self, size: int) -> None:
        lv = self.levels.get(size - 1)
        if lv is None:
            return
        V, ids = lv["V"], lv["ids"]
        for op in self.unary:
            rows = self._rows(lv, "nonneg" if op == "sqrt" else None, vars_only=True)
            fn = UNARY_FN[op]
            for r0 in range(0, rows.size, _BLOCK_ROWS):
                r = rows[r0 : r0 + _BLOCK_ROWS]
                with np.errstate(all="ignore"):
                    vals = fn(V[r])
                self._emit(size, vals, op, ids[r])
                self._check_found(size)

    def _binary_level(self, size: int) -> None:
        P = self.P
        for op in self.binary:
            fn = BINARY_FN[op]
            comm = op in COMMUTATIVE
            for i in range(1, size - 1):
                j = size - 1 - i
                if comm and i > j:
                    continue
                L, R = self.levels.get(i), self.levels.get(j)
                if L is None or R is None:
                    continue
                lrows = self._rows(L)
                rrows = self._rows(R, "nonzero" if op in ("div", "mod") else None)
                if lrows.size == 0 or rrows.size == 0:
                    continue
                LV, RV, Lids, Rids = L["V"], R["V"], L["ids"], R["ids"]
                tri = comm and i == j
                # vectorise over the larger side: chunks of left rows x chunks of right rows
                nl = max(1, _BLOCK_ROWS // max(1, rrows.size))
                for l0 in range(0, lrows.size, nl):
                    lr = lrows[l0 : l0 + nl]
                    rr_all = rrows[rrows >= lr[0]] if tri else rrows
                    for r0 in range(0, rr_all.size, _BLOCK_ROWS):
                        rr = rr_all[r0 : r0 + _BLOCK_ROWS]
                        with np.errstate(all="ignore"):
                            vals = fn(LV[lr][:, None, :], RV[rr][None, :, :]).reshape(-1, P)
                        a = np.repeat(Lids[lr], rr.size)
                        b = np.tile(Rids[rr], lr.size)
                        self._emit(size, vals, op, a, b)
                        self._check_found(size)

    def _where_level(self, size: int) -> None:
        P = self.P
        for sc in range(1, size - 2):
            for sa in range(1, size - 1 - sc):
                sb = size - 1 - sc - sa
                C, A, B = self.levels.get(sc), self.levels.get(sa), self.levels.get(sb)
                if C is None or A is None or B is None or C["cond"].size == 0:
                    continue
                AV, BV, Aids, Bids = A["V"], B["V"], A["ids"], B["ids"]
                na, nb = AV.shape[0], BV.shape[0]
                chunk = max(1, _BLOCK_ROWS // max(1, nb))
                for cr in C["cond"]:
                    mask = C["V"][cr] != 0
                    cid = int(C["ids"][cr])
                    for a0 in range(0, na, chunk):
                        ar = np.arange(a0, min(na, a0 + chunk))
                        for b0 in range(0, nb, _BLOCK_ROWS):
                            br = np.arange(b0, min(nb, b0 + _BLOCK_ROWS))
                            vals = np.where(mask, AV[ar][:, None, :], BV[br][None, :, :]).reshape(-1, P)
                            self._emit(
                                size, vals, "where", cid, np.repeat(Aids[ar], br.size), np.tile(Bids[br], ar.size)
                            )
                            self._check_found(size)

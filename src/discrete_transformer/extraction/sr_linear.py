"""Symbolic regression's sparse linear combinations: a beam search (forward selection with
orthogonal residuals, as in orthogonal matching pursuit) for ``c1*e1 + ... + ck*ek + d``
(k <= 4) over the smallest enumerated expressions, with its weights rounded to the fewest
digits that keep the fit, and the tree of such a combination."""

from __future__ import annotations

import math

import numpy as np

from .sr_trees import Tree, eval_tree, tree_size

_LIN_TERMS = 4  # max terms of a linear combination c1*e1 + ... + ck*ek + d
_LIN_POOL = 6000  # the smallest enumerated expressions it draws its terms from
_LIN_BEAM = 16  # partial combinations kept per number of terms
LIN_TERM_SIZE = 5  # max size of one term


class LinearCombinations:
    """The linear-combination stage of the enumeration `sr_search.Search` (a mixin): it reads the
    search's ``prob``, ``fit``, ``levels``, ``P``, ``tp``, ``thr2``, ``stt``, ``tree()`` and
    ``spent()``, and sets ``linear_done``, ``linear_trees`` and, when it finds an exact
    combination, ``prob.exact``."""

    def _pool(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Probe values (N, P), ids and sizes of the smallest stored non-constant expressions
        (a level holds the expressions of its size)."""
        Vs, ids, sizes, n = [], [], [], 0
        for size in sorted(self.levels):
            if size > LIN_TERM_SIZE or n >= _LIN_POOL:
                break
            lv = self.levels[size]
            V, level_ids = lv["V"][: _LIN_POOL - n], lv["ids"][: _LIN_POOL - n]
            keep = np.ptp(V, axis=1) > 0
            Vs.append(V[keep])
            ids.append(level_ids[keep])
            sizes.append(np.full(int(keep.sum()), size))
            n += int(keep.sum())
        if not Vs:
            return np.zeros((0, self.P)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(Vs), np.concatenate(ids), np.concatenate(sizes)

    def linear_combinations(self, budget: tuple[float, float]) -> None:
        """Beam search for ``c1*e1 + ... + ck*ek + d`` (see the module docstring): at each k,
        every partial combination is extended by the pool expression that most reduces the
        least-squares residual (all candidates scored at once against the residual orthogonal to
        the chosen terms)."""
        if self.linear_done or not self.fit or not {"add", "mul"} <= set(self.prob.cfg.operators):
            return
        self.linear_done = True
        V, ids, sizes = self._pool()
        if V.shape[0] < 2 or self.spent(0, budget):
            return
        with np.errstate(all="ignore"):
            U = V - V.mean(axis=1, keepdims=True)
            U /= np.sqrt(np.einsum("ij,ij->i", U, U))[:, None]  # (N, P) unit, centred
        # Expressions equal up to scale and offset (u0, u0/3, 2 - u0) are one term: keep the
        # smallest (the pool is in size order).
        lead = U[np.arange(U.shape[0]), np.argmax(np.abs(U) > 1e-6, axis=1)]
        _, first = np.unique(np.round(U * np.sign(lead)[:, None], 9), axis=0, return_index=True)
        first = np.sort(first)
        U, ids, sizes = U[first], ids[first], sizes[first]
        tc = self.tp - self.tp.mean()
        limit = self.P * self.thr2 + 1e-9 * self.stt
        beam: list[tuple[tuple[int, ...], np.ndarray]] = [((), np.zeros((self.P, 0)))]
        for _k in range(1, _LIN_TERMS + 1):
            cands: dict[frozenset, tuple[float, int, tuple[int, ...], np.ndarray]] = {}
            for terms, Q in beam:
                if self.spent(U.size * (1 + Q.shape[1]), budget):
                    return
                R = U - (U @ Q) @ Q.T if Q.shape[1] else U  # candidates orthogonal to the terms
                r = tc - Q @ (Q.T @ tc)
                with np.errstate(all="ignore"):
                    rn2 = np.einsum("ij,ij->i", R, R)
                    gain = np.where(rn2 > 1e-10, (R @ r) ** 2 / rn2, -1.0)
                if terms:
                    gain[list(terms)] = -1.0
                top = np.argsort(-gain, kind="stable")[:_LIN_BEAM]
                for j in top:
                    if gain[j] <= 0:
                        continue
                    key = frozenset(terms + (int(j),))
                    sse = float(r @ r - gain[j])
                    if key not in cands or sse < cands[key][0]:
                        q = R[j] / math.sqrt(rn2[j])
                        cands[key] = (sse, int(sizes[list(key)].sum()), terms + (int(j),), np.column_stack([Q, q]))
            if not cands:
                return
            ranked = sorted(cands.values(), key=lambda c: (c[0], c[1]))
            beam = [(c[2], c[3]) for c in ranked[:_LIN_BEAM]]
            self.linear_trees.append(self._linear_shortest([int(ids[j]) for j in beam[0][0]]))
            hits = sorted((c for c in ranked if c[0] <= limit), key=lambda c: (c[1], c[0]))
            for _sse, _size, terms, _Q in hits[:_LIN_BEAM]:
                if self.spent(self.prob.XS.shape[0] * len(terms), budget):
                    return
                tree = self._linear_exact([int(ids[j]) for j in terms])
                if tree is not None:
                    size = tree_size(tree)
                    if size < self.prob.exact_size:
                        pred = eval_tree(tree, self.prob.XS)
                        with np.errstate(all="ignore"):
                            mse = float(np.mean((pred - self.prob.y[self.prob.S]) ** 2))
                        self.prob.exact = (size, mse, tree)
                    return

    def _linear_fit(self, tids: list[int], X: np.ndarray, t: np.ndarray) -> tuple[list[Tree], np.ndarray, np.ndarray]:
        """The expressions `tids` as trees, their values on X with a column of ones (n, k+1),
        and the least-squares weights and intercept (k+1,) on (X, t)."""
        trees = [self.tree(i) for i in tids]
        E = np.column_stack([eval_tree(tr, X) for tr in trees] + [np.ones(X.shape[0])])
        coef = np.full(E.shape[1], np.nan)
        if np.isfinite(E).all():  # (LAPACK prints "illegal value" to stderr on NaN input)
            try:
                with np.errstate(all="ignore"):
                    coef = np.linalg.lstsq(E, t, rcond=None)[0]
            except (np.linalg.LinAlgError, ValueError):  # SVD did not converge
                pass
        if not np.isfinite(coef).all():  # a poor but valid combination: the constant alone
            coef = np.zeros(E.shape[1])
            coef[-1] = float(np.mean(t)) if np.isfinite(t).all() else 0.0
        return trees, E, coef

    def _linear_exact(self, tids: list[int]) -> Tree | None:
        """The combination refitted on the search subsample with the fewest digits that keep it
        exact there, if it is also exact on all the data; else None."""
        prob = self.prob
        trees, E, coef = self._linear_fit(tids, prob.XS, prob.tS)
        for digits in (0, 1, 2, 3, 4, 6, 8, 11, None):
            c = round_weights(coef, E, prob.tS, digits)
            with np.errstate(all="ignore"):
                if prob.is_exact(E @ c, prob.tS):
                    break
        else:
            return None
        tree = combination(trees, c)
        if not prob.full_is_S and not prob.is_exact(eval_tree(tree, prob.X), prob.t):
            return None
        return tree

    def _linear_shortest(self, tids: list[int]) -> Tree:
        """The least-squares combination on the search subsample, its constants rounded to the
        fewest significant digits that keep the fit (display only, as `shorten`)."""
        t = self.prob.tS
        trees, E, coef = self._linear_fit(tids, self.prob.XS, t)

        def sse(c: np.ndarray) -> float:
            with np.errstate(all="ignore"):
                r = E @ c - t
                v = float(r @ r)
            return v if math.isfinite(v) else math.inf

        limit = sse(coef) * (1 + 1e-6) + 1e-13 * float(t @ t) + 1e-300
        for digits in range(12):
            c = round_weights(coef, E, t, digits)
            if sse(c) <= limit:
                return combination(trees, c)
        return combination(trees, coef)


def round_weights(coef: np.ndarray, E: np.ndarray, t: np.ndarray, digits: int | None) -> np.ndarray:
    """Weights rounded to `digits` significant digits, the intercept (last) refitted to them and
    rounded alike; None: as fitted."""
    if digits is None:
        return coef
    c = np.array([float(f"{w:.{digits}e}") for w in coef])
    with np.errstate(all="ignore"):
        c[-1] = float(f"{float(np.mean(t - E[:, :-1] @ c[:-1])):.{digits}e}")
    return c


def combination(trees: list[Tree], coef: np.ndarray) -> Tree:
    """``c1*e1 + ... + ck*ek + d`` as a tree (signs folded into - , unit weights dropped)."""
    body: Tree | None = None
    for c, tr in zip(coef[:-1], trees):
        c = float(c)
        if c == 0.0:
            continue
        mag = abs(c)
        term = tr if mag == 1.0 else ("mul", ("num", mag), tr)
        if body is None:
            body = ("neg", term) if c < 0 else term
        else:
            body = ("sub" if c < 0 else "add", body, term)
    d = float(coef[-1])
    if body is None:
        return ("num", d)
    if d != 0.0:
        body = ("sub", body, ("num", -d)) if d < 0 else ("add", body, ("num", d))
    return body

"""Numerical Attention: heads that only route values between positions.

Each head picks a query `q`, key `k` and value `v` variable with selectors. Scores use a small,
interpretable family on RMS-normalised q̂, k̂ (DESIGN §3):

    s[i, j] = w_qk·q̂_i·k̂_j + w_k·k̂_j + w_kk·k̂_j²

which covers "k equals q" (match), "k = q − c" (shifts, with q = k = pos), argmax/argmin of k and
uniform averaging (k constant). The mask is causal (j ≤ i) and the BOS slot j = 0 is always
visible. Weights are `softmax(s / tau_attn)`; exactly tied scores share weight equally, which is
RASP's select/aggregate averaging. The output `Σ_j a[i, j]·v_j` is a convex combination of
existing values: no new arithmetic value is ever produced here — except, when the optional
summing heads are on (`ModelConfig.attention_sum`; docs/design.md, Summing heads), the sum over the
selected keys (the mean × selector width), chosen per head by a second selector.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import TIE_RULES, shift_offset
from .functional import cached, softmax, straight_through_pattern
from .head import hard_head, learned_head
from .selector import SelectMode, Selector

# Initial logit of "mean" over "sum" in a head's aggregate selector (ModelConfig.attention_sum).
AGGREGATE_MEAN_PRIOR = 2.0

# Fixed routing patterns a head may choose instead of its learned scores
# (ModelConfig.attention_patterns): RASP's positional selectors, exact by construction.
#   shift{c}: position i attends to i - c (to BOS, which reads 0, when i < c), any c >= 1
#   shifts:   every shift the sequence length allows, shift1 .. shift{T-1} (expand_patterns)
#   prefix:   position i attends uniformly to positions 0..i (BOS excluded): the prefix mean
FIXED_PATTERNS = ("shift1", "shift2", "shift3", "prefix")  # examples; `shifts` expands to shift1..


def expand_patterns(names: tuple[str, ...], T: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the named patterns, the shift group) of a configured list at sequence length `T`: each
    named pattern is its own choice of a head; "shifts" adds every other shift the length allows
    (shift1 .. shift{T-1} not named) as one group, whose offset is a second choice."""
    named = tuple(dict.fromkeys(n for n in names if n != "shifts"))
    group = tuple(f"shift{c}" for c in range(1, T) if f"shift{c}" not in named) if "shifts" in names else ()
    return named, group


def fixed_pattern(name: str, T1: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(T1, T1) attention weights of a fixed pattern over the BOS slot (row/column 0) and the
    sequence positions 1..T1-1 (causal; the BOS row attends to BOS)."""
    a = torch.zeros(T1, T1, dtype=dtype)
    rows = torch.arange(T1)
    c = shift_offset(name)
    if c is not None:
        a[rows, (rows - c).clamp_min(0)] = 1.0
    elif name == "prefix":
        a = torch.ones(T1, T1, dtype=dtype).tril()
        a[1:, 0] = 0.0
        a = a / a.sum(-1, keepdim=True)
    else:
        raise ValueError(f"unknown fixed attention pattern {name!r}; choose from shift<c> (c >= 1), prefix")
    a[0] = 0.0
    a[0, 0] = 1.0
    return a


class AttentionLayer(nn.Module):
    """All `H` heads of one layer, for a population of `P` models."""

    def __init__(
        self,
        population: int,
        n_heads: int,
        n_avail: int,
        generator: torch.Generator,
        allowed: torch.Tensor | None = None,
        averaging: bool = True,
        summing: bool = False,
        bos_bias: bool = False,
        ties: tuple[str, ...] = ("average",),
        patterns: tuple[str, ...] = (),
        shift_group: tuple[str, ...] = (),
        lag_prior: tuple[float, ...] = (),
    ) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.n_avail = n_avail
        # False: every pattern attends to one key (see hard_pattern); in the search too, as a
        # straight-through estimator, so that the search cannot rely on averaging.
        self.averaging = averaging
        # The tie rules a learned-score head may use (hard_pattern); with more than one, a
        # selector per head chooses. Without averaging, a head takes the latest key of its ties.
        self.ties = tuple(ties) if averaging else ("latest",)
        for tie in self.ties:
            if tie not in TIE_RULES:
                raise ValueError(f"unknown tie rule {tie!r}; choose from {', '.join(TIE_RULES)}")
        self.tie_choice = Selector(population, (n_heads,), len(self.ties)) if len(self.ties) > 1 else None
        self.selector = Selector(population, (n_heads, 3), n_avail, allowed)
        # Optional second discrete choice per head: aggregate the selected values by their mean
        # (option 0, RASP's aggregate) or by their sum (option 1: mean × selector width).
        self.aggregate = None
        if summing:
            self.aggregate = Selector(population, (n_heads,), 2)
            with torch.no_grad():  # the search starts from the mean (DESIGN's head), sum an option
                self.aggregate.theta[..., 0] = AGGREGATE_MEAN_PRIOR
        # w_score[..., 0] = w_qk, [..., 1] = w_k, [..., 2] = w_kk
        self.w_score = nn.Parameter(torch.randn(population, n_heads, 3, generator=generator) * 0.5)
        # Optional learned score offset of the BOS slot (ModelConfig.attention_bos_bias): BOS stays
        # visible, but a head can push it out (an argmax over signed values, where BOS's 0 would
        # otherwise win whenever every key is negative) or prefer it. 0 at init = the plain family.
        self.w_bos = nn.Parameter(torch.zeros(population, n_heads)) if bos_bias else None
        # Optional choice per head (ModelConfig.attention_patterns): option 0 = the learned scores
        # above (q and k read), then the shift group if there is one (its offset a second choice,
        # `shift_choice`, so a long sequence's many lags do not crowd out the other options), then
        # each named pattern. Without averaging (attention_averaging=False) only one-key patterns.
        self.others = tuple(p for p in patterns if averaging or p.startswith("shift"))
        self.shifts = tuple(shift_group)
        for name in self.shifts + self.others:
            fixed_pattern(name, 2)  # an unknown name fails here, not at the first forward pass
        self.groups = (("shift",) if self.shifts else ()) + self.others
        self.patterns = self.shifts + self.others  # flat order: pattern index f = shifts, then others
        self.pattern_choice = Selector(population, (n_heads,), 1 + len(self.groups)) if self.patterns else None
        self.shift_choice = Selector(population, (n_heads,), len(self.shifts)) if len(self.shifts) > 1 else None
        if any(lag_prior):
            self._start_from_lag_prior(lag_prior)
        self._consts: dict[tuple, torch.Tensor] = {}  # constant tensors per length and dtype (`cached`)
        # True: a forward that records no intermediates takes :mod:`.head`'s form when it can
        # (`_fused`); False: always the composed form, the reference the tests and
        # experiments/step_time.py compare it with.
        self.fused = True

    @torch.no_grad()
    def _start_from_lag_prior(self, prior: tuple[float, ...]) -> None:
        """Initial logits from a prior over lags (`prior[c - 1]` for shift c; ModelConfig.shift_prior):
        each offset of the shift group starts at its lag's prior, the group among a head's patterns
        at its best offset's, and each named shift pattern at its own."""

        def at(name: str) -> float:
            c = shift_offset(name)
            return prior[c - 1] if c is not None and c <= len(prior) else 0.0

        if self.shift_choice is not None:
            self.shift_choice.theta += torch.tensor([at(n) for n in self.shifts], dtype=self.shift_choice.theta.dtype)
        if self.pattern_choice is not None:
            first = max((at(n) for n in self.shifts), default=0.0)
            options = [0.0, *([first] if self.shifts else []), *(at(n) for n in self.others)]
            self.pattern_choice.theta += torch.tensor(options, dtype=self.pattern_choice.theta.dtype)

    def fixed_patterns(self, T1: int, dtype: torch.dtype) -> torch.Tensor:
        """(F, T1, T1) the named fixed patterns (`others`; the shift group is built by
        :meth:`shift_mixture`), cached per length."""
        return cached(
            self._consts,
            ("fixed", T1, dtype),
            lambda: torch.stack([fixed_pattern(n, T1, dtype) for n in self.others]),
        )

    def forward(
        self,
        stream: torch.Tensor,
        stream_n: torch.Tensor,
        mode: SelectMode,
        tau_attn: float | torch.Tensor,
        cache: dict[str, torch.Tensor] | None = None,
        prefix: str = "",
    ) -> torch.Tensor:
        """stream, stream_n: (P, B, T1, V) raw and RMS-normalised. Returns (P, B, T1, H)."""
        P, B, T1, _ = stream.shape
        w = self.selector.weights(mode)  # (P, H, 3, n) or (P, B, H, 3, n)
        qk = select(stream_n[..., : self.n_avail], w[..., :2, :], mode.batched)
        v = select(stream[..., : self.n_avail], w[..., 2, :], mode.batched)
        q = qk[..., 0].transpose(2, 3).contiguous()  # (P, B, H, T1)
        k = qk[..., 1].transpose(2, 3).contiguous()
        if isinstance(tau_attn, torch.Tensor):  # (P,): one temperature per member
            tau_attn = tau_attn.view(P, 1, 1, 1, 1)
        ws = self.w_score.view(P, 1, self.n_heads, 1, 3) / tau_attn
        if cache is None and self._fused(mode):
            return self._fused_forward(q, k, v, ws, tau_attn, mode, T1)
        # s[i, j] = k_j·(w_qk·q_i + w_k) + w_kk·k_j², built as one fused outer product; the causal
        # mask added last (the same values as adding it to the column term first, one pass fewer).
        row = (ws[..., 0] * q + ws[..., 1]).unsqueeze(-1)  # (P, B, H, T1, 1)
        causal = cached(self._consts, ("causal", T1, k.dtype), lambda: causal_bias(T1, k.dtype))
        col = (ws[..., 2] * k * k).unsqueeze(-2)  # (P, B, H, 1, T1)
        if self.w_bos is not None:  # s[i, BOS] += w_bos (P, H), at the current temperature
            at_bos = 1.0 - self._bos(T1, k.dtype)  # (T1,): 1 at the BOS key only
            col = col + (self.w_bos.view(P, 1, self.n_heads, 1, 1) / tau_attn) * at_bos
        scores = torch.addcmul(col, row, k.unsqueeze(-2)).add_(causal)  # (P, B, H, T1, T1)
        pattern = self._tie_mixture([self._learned_pattern(scores, tie, tau_attn, mode) for tie in self.ties], mode)
        if self.pattern_choice is not None:
            wp = self._flat_pattern_weights(mode)  # (P, B or 1, H, 1+F)
            if not self.averaging:  # one pattern forward (a mix would average), soft gradient
                wp = nn.functional.one_hot(wp.argmax(-1), wp.shape[-1]).to(wp.dtype) + wp - wp.detach()
            S = len(self.shifts)
            fixed = self.shift_mixture(wp[..., 1 : 1 + S], T1) if S else 0.0
            if len(self.others):
                # (P, B or 1, H, F) @ (F, T1·T1): one plain matrix product (einsum chose a slower bmm)
                other = self.fixed_patterns(T1, pattern.dtype).reshape(-1, T1 * T1)
                fixed = fixed + torch.matmul(wp[..., 1 + S :], other).view(*wp.shape[:-1], T1, T1)
            pattern = wp[..., :1].unsqueeze(-1) * pattern + fixed
        # (P, B, H, T1, T1) · (P, B, H, 1, T1) summed over keys j; a broadcast multiply beats
        # thousands of tiny batched mat-vecs on CPU.
        out = (pattern * v.transpose(2, 3).contiguous().unsqueeze(-2)).sum(-1).transpose(2, 3)  # (P, B, T1, H)
        if self.aggregate is not None:
            # selector width: 1 / the row's largest weight = the number of tied keys of a hard row
            width = pattern.amax(-1).clamp_min(1.0 / T1).reciprocal().transpose(2, 3)  # (P, B, T1, H)
            wa = self.aggregate.weights(mode)  # (P, H, 2) or (P, B, H, 2)
            wa = wa.view(P, 1, 1, self.n_heads, 2) if wa.dim() == 3 else wa.view(P, B, 1, self.n_heads, 2)
            out = out * (wa[..., 0] + wa[..., 1] * width)
        out = out * self._bos(T1, out.dtype).view(1, 1, T1, 1)
        if cache is not None:
            for h in range(self.n_heads):
                name = f"{prefix}H{h}"
                cache[f"{name}.q"] = qk[..., h, 0]
                cache[f"{name}.k"] = qk[..., h, 1]
                cache[f"{name}.v"] = v[..., h]
                cache[f"{name}.pattern"] = pattern[:, :, h]
                cache[f"{name}.out"] = out[..., h]
        return out

    def _fused(self, mode: SelectMode) -> bool:
        """Whether this forward can take :mod:`.head`'s form: one attention mode for the whole
        population, and no summing head unless every choice is one-hot (hard attention). A summing
        head multiplies by the width of the *mixed* pattern; the mixture of each pattern's sum
        instead, measured, lost Evens_Counter on 4 of 8 seeds against 0 of 8
        (docs/journal/2026-12-07-fused-attention-head.md). No recorded intermediates: the caller
        checks."""
        if not self.fused:
            return False
        if self.aggregate is not None and not mode.hard_attention:
            return False
        st = mode.attention_st
        return mode.hard_attention or st is None or bool((st > 0).all()) or not bool((st > 0).any())

    def _fused_forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        ws: torch.Tensor,
        tau_attn: float | torch.Tensor,
        mode: SelectMode,
        T1: int,
    ) -> torch.Tensor:
        """The layer's output (P, B, T1, H) as the mixture of each pattern's output: the learned
        scores' (:mod:`.head`), the shift group's (a causal convolution of v by the offset
        weights) and the named fixed patterns' (matrix products), linear in the pattern and so
        the composed form's value. A summing head comes here only with one pattern chosen
        (`_fused`), whose sum is its mean times its own width."""
        P, B, H, _ = q.shape
        row = ws[..., 0] * q + ws[..., 1]  # (P, B, H, T1)
        col = ws[..., 2] * k * k
        if self.w_bos is not None:  # s[i, BOS] += w_bos (P, H), at the current temperature
            at_bos = 1.0 - self._bos(T1, k.dtype)  # (T1,): 1 at the BOS key only
            tau = tau_attn.view(P, 1, 1, 1) if isinstance(tau_attn, torch.Tensor) else tau_attn
            col = col + (self.w_bos.view(P, 1, self.n_heads, 1) / tau) * at_bos
        causal = cached(self._consts, ("causal", T1, k.dtype), lambda: causal_bias(T1, k.dtype))
        visible = self._visible(T1, k.dtype)
        vt = v.transpose(2, 3).contiguous()  # (P, B, H, T1)
        if mode.hard_attention:
            margin = TIE_MARGIN / _hard_tau_ratio(tau_attn, mode)
            means, widths = hard_head(row, k, col, vt, causal, margin, self.ties)
            totals = [m * w for m, w in zip(means, widths, strict=True)]  # the sums over the selected keys
        else:  # no summing head here (`_fused`)
            st = mode.attention_st is not None and bool((mode.attention_st > 0).any())
            # the tie set: at the final temperature once straight-through attention is on, else
            # (one-key rules only) at the current one, as the composed patterns take it
            on = mode.attention_st is not None
            margin = TIE_MARGIN / _hard_tau_ratio(tau_attn, mode) if on else TIE_MARGIN
            means = totals = list(learned_head(row, k, col, vt, causal, visible, margin, st, self.ties))
        if self.tie_choice is None:
            mean, total = means[0], totals[0]
        else:  # drawn before the pattern choice, as the composed form draws them
            wt = self.tie_choice.weights(mode)  # (P, H, R) or (P, B, H, R)
            wt = (wt.unsqueeze(1) if wt.dim() == 3 else wt).unsqueeze(-1)  # (P, B or 1, H, R, 1)
            mean = sum(wt[..., r, :] * m for r, m in enumerate(means))
            total = sum(wt[..., r, :] * t for r, t in enumerate(totals))
        if self.pattern_choice is not None:
            wp = self._flat_pattern_weights(mode)  # (P, B or 1, H, 1+S+F)
            if not self.averaging:  # one pattern forward (a mix would average), soft gradient
                wp = nn.functional.one_hot(wp.argmax(-1), wp.shape[-1]).to(wp.dtype) + wp - wp.detach()
            w0 = wp[..., :1]
            mean, total = w0 * mean, w0 * total
            S = len(self.shifts)
            if S:  # one key per row: the sum is the mean
                shifted = self._shifted(vt, wp[..., 1 : 1 + S], T1)
                mean, total = mean + shifted, total + shifted
            if self.others:
                fixed_t, widths = self._fixed_operators(T1, vt.dtype)  # (T1, F·T1), (F, T1)
                outs = torch.matmul(vt, fixed_t).view(P, B, H, len(self.others), T1)  # each pattern's mean
                wf = wp[..., 1 + S :].unsqueeze(-1)  # (P, B or 1, H, F, 1)
                mean = mean + (wf * outs).sum(-2)
                if self.aggregate is not None:  # the sums only a summing head reads
                    total = total + (wf * outs * widths).sum(-2)
        if self.aggregate is not None:
            wa = self.aggregate.weights(mode)  # (P, H, 2) or (P, B, H, 2)
            wa = wa.view(P, 1, self.n_heads, 1, 2) if wa.dim() == 3 else wa.view(P, B, self.n_heads, 1, 2)
            out = wa[..., 0] * mean + wa[..., 1] * total
        else:
            out = mean
        return out.transpose(2, 3) * self._bos(T1, out.dtype).view(1, 1, T1, 1)  # (P, B, T1, H)

    def _shifted(self, v: torch.Tensor, w: torch.Tensor, T1: int) -> torch.Tensor:
        """(P, B, H, T1) Σ_s w[..., s]·v[i - c_s] (v at BOS when i <= c_s) for v (P, B, H, T1) and
        the shift group's weights w (P, B or 1, H, S): a causal convolution of the positions
        1..T with the kernel K[c_s] = w_s, and the BOS column for the shifts that reach past the
        start (the value :meth:`shift_mixture`'s pattern gives)."""
        P, B, H, _ = v.shape
        T = T1 - 1
        spread, tail = cached(self._consts, ("shiftconv", T1, v.dtype), lambda: self._shift_kernels(T1, v.dtype))
        kernel = torch.matmul(w, spread).expand(P, B, H, T)  # (P, B, H, T): K[d], d = 0..T-1
        x = nn.functional.pad(v[..., 1:].reshape(1, P * B * H, T), (T - 1, 0))
        conv = nn.functional.conv1d(x, kernel.flip(-1).reshape(P * B * H, 1, T), groups=P * B * H)
        inner = torch.cat([torch.zeros_like(v[..., :1]), conv.view(P, B, H, T)], dim=-1)
        return inner + torch.matmul(w, tail) * v[..., :1]  # tail: (S, T1) rows that read BOS

    def _shift_kernels(self, T1: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(S, T1 - 1) one-hot of each shift's offset, and the (S, T1) table of the rows each
        shift reads BOS in (:meth:`_shift_tables`)."""
        spread = torch.zeros(len(self.shifts), T1 - 1, dtype=dtype)
        for s, n in enumerate(self.shifts):
            c = shift_offset(n)
            if c < T1 - 1:  # an offset the length does not reach only ever reads BOS
                spread[s, c] = 1.0
        return spread, self._shift_tables(T1, dtype)[1]

    def _fixed_operators(self, T1: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """The named fixed patterns as one (T1, F·T1) matrix (v @ it = every pattern's output,
        position-major per pattern) and their selector widths (F, T1): 1 / each row's largest
        weight."""

        def build() -> tuple[torch.Tensor, torch.Tensor]:
            fixed = self.fixed_patterns(T1, dtype)  # (F, T1 i, T1 j)
            widths = fixed.amax(-1).clamp_min(1.0 / T1).reciprocal()
            return fixed.permute(2, 0, 1).reshape(T1, -1).contiguous(), widths

        return cached(self._consts, ("fixedops", T1, dtype), build)

    def _learned_pattern(
        self, scores: torch.Tensor, tie: str, tau_attn: float | torch.Tensor, mode: SelectMode
    ) -> torch.Tensor:
        """(P, B, H, T1, T1) the learned scores' pattern under one tie rule."""
        if mode.hard_attention:
            return hard_pattern(_at_hard_tau(scores, tau_attn, mode), tie)
        P = scores.shape[0]
        if tie == "average":
            if mode.attention_st is None:
                return softmax(scores)
            # value: the hard pattern (rounded at the final temperature, as evaluation rounds it)
            # for members flagged in attention_st; gradient: the soft pattern's
            ratio = _hard_tau_ratio(tau_attn, mode)  # scores·ratio are at the hard temperature
            use_hard = mode.attention_st.view(P, 1, 1, 1, 1) > 0
            visible = self._visible(scores.shape[-1], scores.dtype)
            return straight_through_pattern(scores, use_hard, TIE_MARGIN / ratio, visible)
        # one key: forward attends to the latest (earliest) key of the tie set, backward is soft;
        # once straight-through attention is on, the tie set is the one evaluation will round to
        soft = softmax(scores)
        at = scores.detach() if mode.attention_st is None else scores.detach() * _hard_tau_ratio(tau_attn, mode)
        return hard_pattern(at, tie) + soft - soft.detach()

    def _tie_mixture(self, patterns: list[torch.Tensor], mode: SelectMode) -> torch.Tensor:
        """The patterns of each tie rule (P, B, H, T1, T1) mixed by the head's tie choice."""
        if self.tie_choice is None:
            return patterns[0]
        wt = self.tie_choice.weights(mode)  # (P, H, R) or (P, B, H, R)
        wt = wt.unsqueeze(1) if wt.dim() == 3 else wt
        wt = wt.unsqueeze(-1).unsqueeze(-1)  # (P, B or 1, H, R, 1, 1)
        return sum(wt[..., r, :, :] * p for r, p in enumerate(patterns))

    def _flat_pattern_weights(self, mode: SelectMode) -> torch.Tensor:
        """(P, B or 1, H, 1+F) weight of the learned scores and of each fixed pattern: a group's
        weight times, for the shifts, the offset choice's weight."""
        wg = self.pattern_choice.weights(mode)  # (P, H, 1+G) or (P, B, H, 1+G)
        wg = wg.unsqueeze(1) if wg.dim() == 3 else wg
        if not self.shifts:
            return wg
        if self.shift_choice is None:
            wo = torch.ones_like(wg[..., 1:2])
        else:
            wo = self.shift_choice.weights(mode)  # (P, H, S) or (P, B, H, S)
            wo = wo.unsqueeze(1) if wo.dim() == 3 else wo
        return torch.cat([wg[..., :1], wg[..., 1:2] * wo, wg[..., 2:]], dim=-1)

    def shift_mixture(self, w: torch.Tensor, T1: int) -> torch.Tensor:
        """(..., T1, T1) = sum_s w[..., s] * fixed_pattern(shifts[s]) for w (..., S), built by a
        gather (a Toeplitz matrix plus the BOS column) instead of S dense (T1, T1) patterns."""
        index, tail = cached(self._consts, ("shiftmix", T1, w.dtype), lambda: self._shift_tables(T1, w.dtype))
        w_ext = torch.cat([w, torch.zeros_like(w[..., :1])], dim=-1)  # (..., S+1): slot S reads 0
        out = w_ext[..., index.view(-1)].view(*w.shape[:-1], T1, T1)
        bos_col = torch.matmul(w, tail)  # (..., T1): shifts that reach past the start read BOS
        out[..., :, 0] = bos_col
        return out

    def _shift_tables(self, T1: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        S = len(self.shifts)
        slot = {shift_offset(n): s for s, n in enumerate(self.shifts)}
        index = torch.full((T1, T1), S, dtype=torch.long)
        for i in range(1, T1):
            for j in range(1, i + 1):
                index[i, j] = slot.get(i - j, S)
        tail = torch.zeros(S, T1, dtype=dtype)  # tail[s, i] = 1: row i of shift s reads BOS
        for s, n in enumerate(self.shifts):
            tail[s, : min(shift_offset(n), T1 - 1) + 1] = 1.0  # i <= c, and the BOS row itself
        return index, tail

    def pattern_name(self, group: int, offset: int) -> str | None:
        """The fixed pattern of a head whose group choice is `group` (0 = learned scores: None)
        and whose shift choice is `offset`."""
        if group == 0:
            return None
        if self.shifts and group == 1:
            return self.shifts[offset]
        return self.others[group - 1 - (1 if self.shifts else 0)]

    def _visible(self, T1: int, dtype: torch.dtype) -> torch.Tensor:
        """(T1, T1) 1 where a query sees the key (j <= i), else 0: where `causal_bias` is 0."""
        return cached(self._consts, ("visible", T1, dtype), lambda: torch.ones(T1, T1, dtype=dtype).tril())

    def _bos(self, T1: int, dtype: torch.dtype) -> torch.Tensor:
        return cached(self._consts, ("bos", T1, dtype), lambda: bos_mask(T1, dtype))


TIE_MARGIN = math.log(2.0)


def _hard_tau_ratio(tau_attn: float | torch.Tensor, mode: SelectMode) -> float | torch.Tensor:
    """tau_attn / the temperature evaluation rounds at (1 when the mode names none)."""
    hard_tau = mode.attention_hard_tau
    return 1.0 if hard_tau is None else tau_attn / hard_tau


def _at_hard_tau(scores: torch.Tensor, tau_attn: float | torch.Tensor, mode: SelectMode) -> torch.Tensor:
    """Scores (already divided by `tau_attn`) rescaled to `mode.attention_hard_tau`, the
    temperature at which evaluation rounds a pattern, so every hard pattern ties the same keys."""
    hard_tau = mode.attention_hard_tau
    return scores if hard_tau is None else scores * (tau_attn / hard_tau)


def hard_pattern(scores: torch.Tensor, tie: str = "average") -> torch.Tensor:
    """The soft pattern rounded to a select/aggregate pattern: the row's tie set is every key
    whose softmax weight is at least half the largest one. `scores` are already divided by the
    final attention temperature, so this is the row's set of (near-)ties as the search left it;
    exact ties (keys with equal values) are always included. This is what a hardened head
    computes and what extraction reads.

    `tie` (TIE_RULES) is what the row attends to within its tie set: "average" = uniformly to all
    (RASP's aggregate), "latest" = the most recent key (largest j), "earliest" = the first one
    (smallest j; BOS when it is tied)."""
    top = scores.amax(-1, keepdim=True)
    sel = (scores >= top - TIE_MARGIN).to(scores.dtype)
    if tie == "average":
        return sel / sel.sum(-1, keepdim=True)
    if tie == "latest":
        j = (scores.shape[-1] - 1) - sel.flip(-1).argmax(-1, keepdim=True)  # last key in the tie set
    elif tie == "earliest":
        j = sel.argmax(-1, keepdim=True)  # first key in the tie set
    else:
        raise ValueError(f"unknown tie rule {tie!r}; choose from {', '.join(TIE_RULES)}")
    return torch.zeros_like(scores).scatter_(-1, j, 1.0)


def causal_bias(T1: int, dtype: torch.dtype) -> torch.Tensor:
    """(T1, T1) additive mask: 0 where j <= i, -inf above the diagonal."""
    return torch.full((T1, T1), float("-inf"), dtype=dtype).triu(1)


def bos_mask(T1: int, dtype: torch.dtype) -> torch.Tensor:
    """1 at sequence positions, 0 at the BOS slot: every derived variable reads 0 at BOS."""
    m = torch.ones(T1, dtype=dtype)
    m[0] = 0.0
    return m


def select(stream: torch.Tensor, w: torch.Tensor, per_example: bool) -> torch.Tensor:
    """Read `stream` (P, B, T1, n) through weights w: (P, *roles, n), or (P, B, *roles, n) when
    `per_example`. Returns (P, B, T1, *roles)."""
    P, B, T1, n = stream.shape
    # Batched matmuls written out: einsum's planning cost more than the product on these sizes.
    if per_example:
        roles = w.shape[2:-1]
        out = torch.matmul(stream, w.reshape(P, B, -1, n).transpose(-1, -2))  # (P, B, T1, R)
    else:
        roles = w.shape[1:-1]
        out = torch.matmul(stream.reshape(P, B * T1, n), w.reshape(P, -1, n).transpose(-1, -2))  # (P, B·T1, R)
    return out.reshape(P, B, T1, *roles)

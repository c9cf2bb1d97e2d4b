"""Numerical MLP: element-wise arithmetic on a few selected variables.

Each MLP picks `arity` input variables with selectors and maps them, at every position
independently, to one new variable. Inputs are read RMS-normalised (per-variable running
statistics kept by the transformer). The function is a small network with two kinds of hidden
unit, summed by a linear read-out:

    f(u) = c_r·relu(W u + b) + c_b·((A u + a)⊙(B u + β)) + d·u + e
           [+ Σ_a Σ_ω c_p·(cos ω r_a, sin ω r_a)]      (only with `periods` ≥ 2)
    out  = exp(rho) · f(u)

ReLU units give piecewise-linear functions (abs, max, comparisons, clipping); the bilinear units
represent products and squares exactly (a·b, a², v·dt); `d·u` makes sums and differences
trivially reachable. `exp(rho)` is the learnable output scale, in log space so that Adam can
move it by orders of magnitude quickly. (Deviation from DESIGN §3's plain hidden-ReLU MLP,
recorded in docs/design.md, Product units in MLPs: without product units an MLP cannot reach
1e-6 normalised MSE on `mean × (pos + 1)`, which every prefix-sum task needs.)

Optional *periodic* units (``ModelConfig.mlp_periods`` = K ≥ 2) read the **raw** (un-normalised)
inputs `r` at the fixed frequencies ω = 2πj/k, 2 ≤ k ≤ K, j ≤ k/2: on integers, every function
of period k ≤ K is a linear combination of them, so `s mod 3` or "x is even" become exactly
representable, which a ReLU network can only approximate tooth by tooth. Frequencies are fixed
(a bank, not learned: gradient descent on a frequency is hopelessly non-convex); their read-out
weights start at 0, so they change nothing until the loss asks for them. While a selector is
soft, the periodic units read the cos/sin of the mixed value, which is noise until the choice is
sharp; with `periodic_mix="features"` they give instead the selector's mixture of their output on
every candidate, so that the right candidate carries the signal in proportion to its weight
(the default while the selector temperature is at least 0.2: docs/design.md, Periodic MLP units).
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch
from torch import nn

from .attention import bos_mask, select
from .functional import cached, row_dot
from .selector import SelectMode, Selector

# The periodic read-out is c_p·PERIODIC_GAIN: Adam moves a weight by ~lr per step whatever its
# gradient's size, so without a gain the oscillating units enter every MLP within a few steps.
PERIODIC_GAIN = 0.1


class MLPLayer(nn.Module):
    """All `M` MLPs of one layer, for a population of `P` models."""

    def __init__(
        self,
        population: int,
        n_mlps: int,
        arity: int,
        n_avail: int,
        hidden: int,
        bilinear: int,
        out_scale: float,
        generator: torch.Generator,
        allowed: torch.Tensor | None = None,
        periods: int = 0,
        periodic_skip: tuple[int, ...] = (),
        periodic_mix: str = "value",
        periodic_mix_tau: float = 0.0,
    ) -> None:
        super().__init__()
        P, M, a = population, n_mlps, arity
        self.n_mlps, self.arity, self.n_avail = M, a, n_avail
        if periodic_mix not in ("features", "value"):
            raise ValueError(f"periodic_mix must be 'features' or 'value', got {periodic_mix!r}")
        self.periodic_mix, self.periodic_mix_tau = periodic_mix, float(periodic_mix_tau)

        def rnd(*shape: int, std: float) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape, generator=generator) * std)

        self.selector = Selector(P, (M, a), n_avail, allowed)
        self.W = rnd(P, M, a, hidden, std=1.0 / math.sqrt(a))
        self.b = nn.Parameter((torch.rand(P, M, hidden, generator=generator) * 2 - 1) * 1.5)
        self.c_r = rnd(P, M, hidden, std=0.3 / math.sqrt(max(hidden, 1)))
        self.A = rnd(P, M, a, bilinear, std=1.0 / math.sqrt(a))
        self.a0 = rnd(P, M, bilinear, std=0.5)
        self.B = rnd(P, M, a, bilinear, std=1.0 / math.sqrt(a))
        self.b0 = rnd(P, M, bilinear, std=0.5)
        self.c_b = rnd(P, M, bilinear, std=0.3 / math.sqrt(max(bilinear, 1)))
        self.d = rnd(P, M, a, std=0.5)
        self.e = nn.Parameter(torch.zeros(P, M))
        self.rho = nn.Parameter(torch.full((P, M), math.log(out_scale)))
        omegas = periodic_frequencies(periods)
        self.omegas = tuple(omegas)  # kept in Python floats: float32 frequencies dephase by ~1e-6·s
        # Variables the periodic units see as 0 (`pos`, `one`): periodicity in the position is
        # routing's job; given to MLPs it let models encode position ripples that no program
        # line explains (measured: Majority_0_1).
        keep = torch.ones(n_avail, dtype=torch.float64)
        keep[list(periodic_skip)] = 0.0
        self.register_buffer("periodic_keep", keep, persistent=False)  # (n_avail,) 0 where skipped
        self._consts: dict[tuple, torch.Tensor] = {}  # constant tensors per length and dtype (`cached`)
        if omegas:  # only then: checkpoints of models without periodic units keep their keys
            self.c_p = nn.Parameter(torch.zeros(P, M, a, len(omegas), 2))

    @property
    def periodic(self) -> bool:
        return bool(self.omegas)

    @property
    def omega(self) -> torch.Tensor:
        return torch.tensor(self.omegas, dtype=torch.float64)

    def function(
        self, u: torch.Tensor, raw: torch.Tensor | None = None, periodic_out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The element-wise map. u: (P, N, M, arity) normalised inputs, raw: the same inputs
        un-normalised (needed only by periodic units) -> (P, N, M). `periodic_out`: the periodic
        units' contribution already computed, (P·M, N) (`_periodic_mixture`; then `raw` is unused)."""
        P, N, M, a = u.shape
        K, nb = self.W.shape[-1], self.A.shape[-1]
        # Both stages over the P·M networks in a contiguous (P·M, N, ·) layout (one batched matmul
        # in, one row_dot out): the einsum/broadcast form on strided (P, N, M, hidden) views ran
        # ~10x slower on CPU and dominated the training step.
        um = u.permute(0, 2, 1, 3).reshape(P * M, N, a)
        w_in = torch.cat([self.W, self.A, self.B], dim=-1).reshape(P * M, a, K + 2 * nb)
        b_in = torch.cat([self.b, self.a0, self.b0], dim=-1).reshape(P * M, 1, K + 2 * nb)
        z = torch.baddbmm(b_in, um, w_in)  # (P·M, N, K + 2·nb)
        pre, left, right = z.split([K, nb, nb], dim=-1)  # split's backward is one cat, not 3 zero-fills
        h = torch.relu(pre)
        prod = left * right
        parts, coefs = [h, prod, um], [self.c_r, self.c_b, self.d]
        if self.periodic and periodic_out is None:
            if raw is None:
                raise ValueError("an MLP with periodic units needs the raw (un-normalised) inputs")
            omega = cached(self._consts, ("omega", raw.dtype), lambda: self.omega.to(raw.dtype))
            rm = raw.permute(0, 2, 1, 3).reshape(P * M, N, a)
            phase = (rm.unsqueeze(-1) * omega).reshape(P * M, N, -1)  # (P·M, N, a·F), a-major
            parts += [phase.cos(), phase.sin()]
            coefs.append(PERIODIC_GAIN * self.c_p.movedim(-1, 2).reshape(P, M, -1))  # (P, M, 2·a·F): cos, then sin
        feats = torch.cat(parts, dim=-1)  # (P·M, N, K + nb + a [+ 2·a·F])
        coef = torch.cat(coefs, dim=-1).reshape(P * M, 1, -1)
        f = row_dot(feats, coef) + self.e.reshape(P * M, 1)  # (P·M, N); not baddbmm: see row_dot
        if periodic_out is not None:
            f = f + periodic_out
        return (f.view(P, M, N) * self.rho.exp().unsqueeze(-1)).transpose(1, 2)  # (P, N, M)

    def _mixes(self, mode: SelectMode) -> bool:
        """Whether this pass feeds the periodic units by `_periodic_mixture`. Not with one-hot
        weights (hard mode, or every choice frozen: hardening, polish), where the cheaper value path
        gives the same values, nor once every member's selector temperature is under
        `periodic_mix_tau` (the soft selections are then near one-hot)."""
        if self.periodic_mix == "value" or mode.hard or bool(self.selector.frozen.all()):
            return False
        tau = float(mode.tau.max()) if isinstance(mode.tau, torch.Tensor) else float(mode.tau)
        return tau >= self.periodic_mix_tau

    def _periodic_mixture(self, stream: torch.Tensor, w: torch.Tensor, batched: bool) -> torch.Tensor:
        """The periodic units under a soft selector: the selector's weighted mixture of what the
        units give on every candidate, sum_v w_v·c_p·(cos ω v, sin ω v), not their value on the
        mixture. stream: (P, B, T1, V) raw, w: (P, M, a, V) or (P, B, M, a, V) -> (P·M, B·T1),
        the term `function` adds. Linear in w, so the per-candidate outputs are taken first: one
        (B·T1·V', 2F) @ (2F, M·a) product per member over the V' candidates the units see, then a
        weighted sum; a skipped candidate (`pos`, `one`: seen as 0) gives the constant sum_f c_cos."""
        P, B, T1, V = stream.shape
        M, a = self.n_mlps, self.arity
        omega = cached(self._consts, ("omega", stream.dtype), lambda: self.omega.to(stream.dtype))
        seen = cached(self._consts, ("seen", V), lambda: self.periodic_keep.nonzero().view(-1))
        skipped = cached(self._consts, ("skipped", V), lambda: (self.periodic_keep == 0).nonzero().view(-1))
        F, Vs = omega.numel(), seen.numel()
        phase = stream.index_select(-1, seen).unsqueeze(-1) * omega  # (P, B, T1, V', F)
        cs = torch.cat([phase.cos(), phase.sin()], dim=-1).reshape(P, B * T1 * Vs, 2 * F)  # cos, then sin
        c = PERIODIC_GAIN * self.c_p  # (P, M, a, F, 2)
        coef = c.permute(0, 4, 3, 1, 2).reshape(P, 2 * F, M * a)  # (P, 2F, M·a)
        g = torch.bmm(cs, coef).view(P, B, T1, Vs, M * a)  # every seen candidate's periodic output
        wm = w.reshape(P, B if batched else 1, M * a, V)
        wv = wm.index_select(-1, seen).transpose(-1, -2).unsqueeze(2)  # (P, B|1, 1, V', M·a)
        out = (g * wv).sum(dim=3)  # (P, B, T1, M·a)
        if skipped.numel():  # the skipped candidates: their weight times the units' output at 0
            w_skip = wm.index_select(-1, skipped).sum(-1)  # (P, B|1, M·a)
            out = out + (w_skip * c[..., 0].sum(-1).reshape(P, 1, M * a)).unsqueeze(2)
        out = out.view(P, B * T1, M, a).sum(dim=-1)  # (P, N, M)
        return out.transpose(1, 2).reshape(P * M, B * T1)

    def forward(
        self,
        stream_n: torch.Tensor,
        mode: SelectMode,
        cache: dict[str, torch.Tensor] | None = None,
        prefix: str = "",
        stream: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """stream_n: (P, B, T1, V) normalised stream (`stream`: the raw one, for periodic
        units). Returns (P, B, T1, M)."""
        P, B, T1, _ = stream_n.shape
        w = self.selector.weights(mode)  # (P, M, a, n) or (P, B, M, a, n)
        u = select(stream_n[..., : self.n_avail], w, mode.batched)  # (P, B, T1, M, a)
        raw = periodic_out = None
        if self.periodic:
            if stream is None:
                raise ValueError("an MLP with periodic units needs the raw stream")
            if self._mixes(mode):
                periodic_out = self._periodic_mixture(stream[..., : self.n_avail], w, mode.batched)
            else:
                keep = cached(self._consts, ("keep", stream.dtype), lambda: self.periodic_keep.to(stream.dtype))
                seen = stream[..., : self.n_avail] * keep
                raw = select(seen, w, mode.batched).reshape(P, B * T1, self.n_mlps, self.arity)
        out = self.function(u.reshape(P, B * T1, self.n_mlps, self.arity), raw, periodic_out).reshape(
            P, B, T1, self.n_mlps
        )
        out = out * cached(self._consts, ("bos", T1, out.dtype), lambda: bos_mask(T1, out.dtype)).view(1, 1, T1, 1)
        if cache is not None:
            for m in range(self.n_mlps):
                cache[f"{prefix}M{m}.in"] = u[..., m, :]
                cache[f"{prefix}M{m}.out"] = out[..., m]
        return out


def periodic_frequencies(periods: int) -> list[float]:
    """ω = 2πj/k for 2 ≤ k ≤ `periods`, 1 ≤ j ≤ k/2, each distinct ratio j/k once: with cos and
    sin of these (and the constant) every integer function of period k ≤ `periods` is linear."""
    ratios = sorted({Fraction(j, k) for k in range(2, periods + 1) for j in range(1, k // 2 + 1)})
    return [2 * math.pi * float(r) for r in ratios]

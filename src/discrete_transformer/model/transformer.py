"""The Discrete Transformer: a residual stream of named scalar variables.

Stream `R`: (P, B, T+1, V). Position 0 is the BOS slot, positions 1..T the sequence. The
initial variables are the input channels (0 at BOS), `pos` (−1 at BOS, then 0..T−1) and `one`
(1 at every sequence position, 0 at BOS, so that a head keyed on `one` can exclude BOS and
average exactly over the prefix). Each head and MLP appends one variable, 0 at BOS; nothing is
overwritten. The prediction for output channel c is one variable, chosen by a readout selector.

`P` is the population axis: P independent models (own parameters, own Gumbel noise) that see the
same batches. Training them in one vectorised pass costs little more than training one on a CPU,
which is where discrete-search restarts become cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import ModelConfig
from .attention import AttentionLayer, expand_patterns, select
from .bias import MaskBuilder
from .mlp import MLPLayer
from .selector import SelectMode, Selector

STATS_MOMENTUM = 0.1


@dataclass(frozen=True)
class DataSpec:
    """What the model needs to know about the data: channel names and scales."""

    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    input_rms: tuple[float, ...]
    target_rms: float
    T: int
    # Distinct values of an all-integer target (0 for real-valued targets): the largest period an
    # integer rule's output can show, which sets the periodic units' bank (ModelConfig.mlp_periods_from_data).
    target_levels: int = 0
    # Per output channel, the least-squares trend (a, b) of the training targets along the
    # sequence, y ≈ a + b·pos, and the RMS of what is left (ModelConfig.readout_trend); () = not fitted.
    trend: tuple[tuple[float, float], ...] = ()
    trend_residual_rms: float = 0.0
    # Per lag c = 1 .. T-1 (index c - 1), how far the pair (x[i], x[i - c]) of some input channel
    # determines some output, 0 .. 1 (training/lag_screen.py); () = not screened.
    lag_scores: tuple[float, ...] = ()

    @property
    def n_in(self) -> int:
        return len(self.input_names)

    @property
    def n_out(self) -> int:
        return len(self.output_names)


def periods_for(config: ModelConfig, data: DataSpec) -> int:
    """The periodic units' largest period K: `mlp_periods`, or with `mlp_periods_from_data` the
    number of distinct target values clamped to [2, mlp_periods] (0 for real-valued targets), since
    an integer rule of period k has at least k output values (s mod k, parity)."""
    if not config.mlp_periods_from_data or config.mlp_periods == 0:
        return config.mlp_periods
    return 0 if data.target_levels < 2 else min(config.mlp_periods, data.target_levels)


class DiscreteTransformer(nn.Module):
    def __init__(self, config: ModelConfig, data: DataSpec, population: int = 1, seed: int = 0) -> None:
        super().__init__()
        self.config, self.data, self.population = config, data, population
        # ModelConfig.readout_trend: the modules explain what is left after the data's trend, at
        # that remainder's scale; the trend itself is a fixed term of every output.
        self.output_scale = data.target_rms
        trend = None
        if config.readout_trend:
            if len(data.trend) != data.n_out:
                raise ValueError("ModelConfig.readout_trend needs the data's trend (DataSpec.trend)")
            trend = torch.tensor(data.trend, dtype=torch.float32).T.contiguous()  # (2, C_out): a, b
            self.output_scale = max(data.trend_residual_rms, 1e-3 * data.target_rms)  # a numerical floor
        # derived from the spec, so not saved; a buffer so that a float64 copy holds it in float64
        self.register_buffer("trend", trend, persistent=False)
        gen = torch.Generator().manual_seed(seed)
        self.n_base = data.n_in + 2
        names = [*data.input_names, "pos", "one"]
        masks = MaskBuilder(config)
        layers: list[nn.ModuleDict] = []
        named_patterns, shift_group = expand_patterns(config.attention_patterns, data.T)
        for layer in range(config.n_layers):
            n_avail = len(names)
            attn = AttentionLayer(
                population,
                config.n_heads,
                n_avail,
                gen,
                allowed=masks.attention(layer, config.n_heads, names),
                averaging=config.attention_averaging,
                summing=config.attention_sum,
                bos_bias=config.attention_bos_bias,
                ties=config.attention_ties,
                patterns=named_patterns,
                shift_group=shift_group,
                lag_prior=tuple(config.shift_prior * v for v in data.lag_scores),
            )
            names += [f"L{layer}.H{h}" for h in range(config.n_heads)]
            mlp = MLPLayer(
                population,
                config.n_mlps,
                config.mlp_arity,
                len(names),
                config.mlp_hidden,
                config.mlp_bilinear,
                max(self.output_scale, 1e-3),
                gen,
                allowed=masks.mlp(layer, config.n_mlps, config.mlp_arity, names),
                periods=periods_for(config, data),
                periodic_skip=(data.n_in, data.n_in + 1),  # pos, one
                periodic_mix=config.mlp_periodic_mix,
                periodic_mix_tau=config.mlp_periodic_mix_tau,
            )
            names += [f"L{layer}.M{m}" for m in range(config.n_mlps)]
            layers.append(nn.ModuleDict({"attn": attn, "mlp": mlp}))
        self.layers = nn.ModuleList(layers)
        self.variable_names: tuple[str, ...] = tuple(names)
        self.readout = Selector(population, (data.n_out,), len(names), allowed=masks.readout(data.output_names, names))
        masks.check_all_used()
        # Optional readout gain (ModelConfig.readout_gain): log-factor per output and variable.
        self.readout_gamma = (
            nn.Parameter(torch.zeros(population, data.n_out, len(names))) if config.readout_gain else None
        )
        # Running mean square of every variable over sequence positions, per population member.
        ms = torch.ones(population, len(names))
        pos_ms = sum(t * t for t in range(data.T)) / data.T
        ms[:, : data.n_in] = torch.tensor([max(r, 1e-6) ** 2 for r in data.input_rms])
        ms[:, data.n_in] = pos_ms
        self.register_buffer("ms", ms)
        self.register_buffer("ms_seen", torch.zeros(len(names), dtype=torch.bool))
        self.ms_seen[: self.n_base] = True
        self.register_buffer("stats_frozen", torch.zeros((), dtype=torch.bool))

    # ------------------------------------------------------------------ helpers
    @property
    def n_vars(self) -> int:
        return len(self.variable_names)

    def selectors(self) -> dict[str, Selector]:
        out: dict[str, Selector] = {}
        for li, layer in enumerate(self.layers):
            out[f"L{li}.attn"] = layer["attn"].selector
            if layer["attn"].aggregate is not None:
                out[f"L{li}.agg"] = layer["attn"].aggregate
            if layer["attn"].pattern_choice is not None:
                out[f"L{li}.pat"] = layer["attn"].pattern_choice
            if layer["attn"].shift_choice is not None:
                out[f"L{li}.off"] = layer["attn"].shift_choice
            if layer["attn"].tie_choice is not None:
                out[f"L{li}.tie"] = layer["attn"].tie_choice
            out[f"L{li}.mlp"] = layer["mlp"].selector
        out["readout"] = self.readout
        return out

    def selector_parameters(self) -> list[nn.Parameter]:
        return [s.theta for s in self.selectors().values()]

    def weight_parameters(self) -> list[nn.Parameter]:
        ids = {id(p) for p in self.selector_parameters()}
        return [p for p in self.parameters() if id(p) not in ids]

    def freeze_selectors(self) -> None:
        for s in self.selectors().values():
            s.freeze()

    def base_stream(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C_in) -> (B, T+1, n_base) with BOS row."""
        B, T, C = x.shape
        bos = torch.zeros(B, 1, C, dtype=x.dtype)
        xs = torch.cat([bos, x], dim=1)
        pos = torch.arange(-1, T, dtype=x.dtype).view(1, T + 1, 1).expand(B, T + 1, 1)
        one = torch.ones(B, T + 1, 1, dtype=x.dtype)
        one[:, 0] = 0.0
        return torch.cat([xs, pos, one], dim=-1)

    def _normalise(self, new: torch.Tensor, start: int) -> torch.Tensor:
        """Update running stats of variables [start, start+k) from `new` (P, B, T1, k) when
        training, then return new / rms."""
        k = new.shape[-1]
        if self.training and not bool(self.stats_frozen):
            with torch.no_grad():
                batch_ms = new[:, :, 1:].pow(2).mean(dim=(1, 2))  # (P, k)
                seen = self.ms_seen[start : start + k]
                old = self.ms[:, start : start + k]
                upd = torch.where(seen, (1 - STATS_MOMENTUM) * old + STATS_MOMENTUM * batch_ms, batch_ms)
                self.ms[:, start : start + k] = upd
                self.ms_seen[start : start + k] = True
        rms = (self.ms[:, start : start + k] + 1e-12).sqrt()
        return new / rms.view(rms.shape[0], 1, 1, k)

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        x: torch.Tensor,
        mode: SelectMode,
        tau_attn: float | torch.Tensor,
        cache: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """x: (B, T, C_in). Returns predictions (P, B, T, C_out).

        With `cache` (a dict), every intermediate is recorded TransformerLens-style:
        `resid` (P, B, T1, V) raw stream, `L{li}.H{h}.pattern` (P, B, T1, T1), `.q/.k/.v/.out`,
        `L{li}.M{m}.in` (P, B, T1, arity) normalised inputs, `.out`, and `readout.w`.
        """
        P = self.population
        base = self.base_stream(x)
        B, T1, _ = base.shape
        stream = base.unsqueeze(0).expand(P, B, T1, self.n_base)
        stream_n = stream / (self.ms[:, : self.n_base] + 1e-12).sqrt().view(P, 1, 1, self.n_base)
        for li, layer in enumerate(self.layers):
            heads = layer["attn"](stream, stream_n, mode, tau_attn, cache, prefix=f"L{li}.")
            start = stream.shape[-1]
            stream = torch.cat([stream, heads], dim=-1)
            stream_n = torch.cat([stream_n, self._normalise(heads, start)], dim=-1)
            mlps = layer["mlp"](stream_n, mode, cache, prefix=f"L{li}.", stream=stream)
            start = stream.shape[-1]
            stream = torch.cat([stream, mlps], dim=-1)
            stream_n = torch.cat([stream_n, self._normalise(mlps, start)], dim=-1)
        w = self.readout.weights(mode)  # (P, C_out, V) or (P, B, C_out, V)
        if self.readout_gamma is not None:
            w = w * self.readout_gains().view(P, *([1] * (w.dim() - 3)), *self.readout_gamma.shape[1:])
        y = select(stream, w, mode.batched)  # (P, B, T1, C_out)
        if self.trend is not None:  # + a + b·pos, fixed (ModelConfig.readout_trend)
            y = y + self.trend[0] + self.trend[1] * base[..., self.data.n_in : self.data.n_in + 1]
        if cache is not None:
            cache["resid"] = stream
            cache["readout.w"] = w
        return y[:, :, 1:]

    def readout_gains(self) -> torch.Tensor:
        """(P, C_out, V) the factor the readout applies to each variable it may read
        (ModelConfig.readout_gain): target_rms / rms(v) · exp(gamma), so that every candidate
        starts at the target's scale."""
        if self.readout_gamma is None:
            return torch.ones(self.population, self.data.n_out, self.n_vars)
        rms = (self.ms + 1e-12).sqrt()  # (P, V)
        return (self.output_scale / rms).unsqueeze(1) * self.readout_gamma.exp()

    @torch.no_grad()
    def choices(self) -> dict[str, torch.Tensor]:
        """Every selector's argmax: name -> (P, *roles) long. What extraction reads."""
        return {name: s.argmax() for name, s in self.selectors().items()}

    def selector_entropy(self) -> torch.Tensor:
        """Mean normalised selector entropy per population member: (P,)."""
        parts = [s.entropy().reshape(self.population, -1) for s in self.selectors().values()]
        return torch.cat(parts, dim=1).mean(dim=1)

    @torch.no_grad()
    def describe(self, member: int = 0) -> str:
        """One line per module of population member `member`: what each selector reads."""
        names = self.variable_names
        ch = self.choices()
        lines = []
        for li, layer in enumerate(self.layers):
            attn = ch[f"L{li}.attn"][member]  # (H, 3)
            ws = layer["attn"].w_score[member]
            agg = ch.get(f"L{li}.agg")
            pat = ch.get(f"L{li}.pat")
            off = ch.get(f"L{li}.off")
            tie = ch.get(f"L{li}.tie")
            for h in range(attn.shape[0]):
                q, k, v = (names[int(i)] for i in attn[h])
                w = ", ".join(f"{x:+.2f}" for x in ws[h].tolist())
                if layer["attn"].w_bos is not None:
                    w += f"; w_bos={float(layer['attn'].w_bos[member, h]):+.2f}"
                how = "" if agg is None else (", sum" if int(agg[member, h]) == 1 else ", mean")
                fixed = (
                    None
                    if pat is None
                    else layer["attn"].pattern_name(int(pat[member, h]), 0 if off is None else int(off[member, h]))
                )
                if fixed:
                    lines.append(f"L{li}.H{h} = attend({fixed}, v={v}{how})")
                else:
                    ties = layer["attn"].ties
                    rule = ties[0 if tie is None else int(tie[member, h])]
                    how += "" if rule == "average" else f", {rule}"
                    lines.append(f"L{li}.H{h} = attend(q={q}, k={k}, v={v}{how})  w_qk,w_k,w_kk=({w})")
            mlp = ch[f"L{li}.mlp"][member]  # (M, arity)
            for m in range(mlp.shape[0]):
                args = ", ".join(names[int(i)] for i in mlp[m])
                lines.append(f"L{li}.M{m} = mlp({args})")
        outs = ", ".join(names[int(i)] for i in ch["readout"][member])
        lines.append(f"readout -> {outs}")
        return "\n".join(lines)

"""Frozen configuration dataclasses, one per concern.

A run is fully reproduced by (ModelConfig, TrainConfig, seed, data source). Each config
round-trips through JSON so it can be stored next to the safetensors checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeVar

C = TypeVar("C")

# What an attention head may attend to within its tie set (ModelConfig.attention_ties): all the
# tied keys, averaged; the most recent one; the first one.
TIE_RULES = ("average", "latest", "earliest")


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


def shift_offset(name: str) -> int | None:
    """c of a fixed pattern named shift{c} (c >= 1), else None."""
    digits = name.removeprefix("shift")
    return int(digits) if name.startswith("shift") and digits.isdigit() and int(digits) >= 1 else None


def is_pattern_name(name: str) -> bool:
    """A fixed routing pattern's name (ModelConfig.attention_patterns): shift{c} (c >= 1),
    shifts, prefix. The one definition: the model's ``fixed_pattern`` / ``expand_patterns``
    (model/attention.py) understand exactly these."""
    return name in ("shifts", "prefix") or shift_offset(name) is not None


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the Discrete Transformer (DESIGN §3).

    The residual stream starts with the input channels, `pos` and `one`; every head and MLP
    appends exactly one variable. Layer l has `n_heads` attention heads, then `n_mlps` MLPs
    that also see this layer's heads.
    """

    n_layers: int = 2
    n_heads: int = 2
    n_mlps: int = 2
    mlp_arity: int = 2
    mlp_hidden: int = 24  # ReLU units per MLP
    mlp_bilinear: int = 4  # multiplicative units (u·a)(u·b) per MLP: exact products/squares
    # Periodic units: cos/sin of each raw input at the frequencies 2πj/k, k ≤ mlp_periods (0 = none),
    # so that integer functions of period ≤ K (mod K, parity) are exactly representable.
    mlp_periods: int = 0
    # True: the bank's largest period is the number of distinct values of an integer target,
    # at most mlp_periods (none for real-valued targets); False: mlp_periods itself.
    mlp_periods_from_data: bool = False
    # How a soft (searching) MLP selector feeds its periodic units: "value" = cos/sin of the mixed
    # input value; "features" = the selector's mixture of what the units give on each candidate
    # input. Identical once selectors are one-hot, so only the search differs. "value" is what
    # configs stored before the field load as (docs/design.md, Periodic MLP units).
    mlp_periodic_mix: Literal["value", "features"] = "features"
    # With "features": the mixture is used only while the selector temperature is at least this
    # (0 = the whole search); below it the cheaper "value" path runs.
    mlp_periodic_mix_tau: float = 0.2
    # Inductive-bias knobs (docs/inductive_bias.md); the defaults are the unrestricted model.
    # "content": q and k may read any variable; "positional": q and k read only `pos` / `one`.
    attention_routing: Literal["content", "positional"] = "content"
    # False: no averaging. A hardened head attends to exactly one key (near-ties go to the most
    # recent key), so prefix means and tie averages are unavailable to the program.
    attention_averaging: bool = True
    # What a learned-score head attends to within its set of tied keys: "average" (all of them,
    # RASP's aggregate), "latest" (the most recent one), "earliest" (the first one). With more
    # than one rule, each head chooses its own by one more selector.
    attention_ties: tuple[str, ...] = ("average",)
    # True: each head also chooses (a selector over {mean, sum}) whether it aggregates the values
    # of its selected keys by their mean or by their sum (mean × selector width), so a prefix
    # sum is one head instead of prefix mean → MLP × (pos + 1). docs/design.md, Summing heads.
    attention_sum: bool = False
    # True: each head has a learned score offset for the BOS slot (0 at init), so it can exclude BOS
    # (an argmax of signed values, an argmin of non-negative ones) or prefer it, or rank it between
    # key values (a default until the key first exceeds it). docs/design.md, BOS values.
    attention_bos_bias: bool = True
    # True: the readout multiplies the variable it reads by a learned gain, target_rms / rms(v) ·
    # exp(gamma_v) (gamma 0 at init), so that while it is soft every candidate enters the mixture
    # at the target's scale; kept after hardening (y = g·v). docs/design.md, Readout gain.
    readout_gain: bool = False
    # True: every output adds the data's least-squares trend along the sequence, a + b·pos (fitted
    # on the training targets, DataSpec.trend), fixed, and the modules and the readout gain work at
    # the scale of what is left; so a target that grows with the position (a prefix sum, a count)
    # is not first explained by reading `pos`. docs/journal/2026-12-07-pos-trap.md, §5-6.
    readout_trend: bool = False
    # Fixed routing patterns each head may choose, by one more selector, instead of its learned
    # scores: shift<c> (attend to i - c), "prefix" (uniform over 0..i), each its own option;
    # "shifts" adds every other shift the data's length T allows (1..T-1) as one more option, whose
    # offset a second selector picks; () = none (DESIGN's head, and what configs stored before the
    # field load as). docs/design.md, Fixed routing patterns.
    attention_patterns: tuple[str, ...] = ("shift1", "shift2", "shift3", "prefix")
    # Initial logit of lag c among a head's shift options (the shift group's offsets and the named
    # shift patterns): shift_prior times the data's screen score of c (DataSpec.lag_scores, 1 when
    # the current input and the one c steps back determine the target); 0 = every lag starts
    # equal. docs/journal/2026-12-07-pos-trap.md, §7.
    shift_prior: float = 0.0
    # (module pattern, variable pattern) pairs, fnmatch-style: the module may not read the
    # variable. Modules are `L{l}.H{h}` (roles `.q .k .v`), `L{l}.M{m}` (roles `.in0 ...`) and
    # `readout` (roles `.<output name>`); variables are input names, `pos`, `one`, `L{l}.H{h}` ...
    forbid_reads: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for name in ("n_layers", "n_heads", "n_mlps", "mlp_arity"):
            _check(getattr(self, name) >= 1, f"ModelConfig.{name} must be >= 1")
        _check(self.mlp_hidden >= 0 and self.mlp_bilinear >= 0, "MLP widths must be >= 0")
        _check(self.mlp_hidden + self.mlp_bilinear >= 1, "an MLP needs at least one hidden unit")
        _check(
            self.mlp_periods == 0 or 2 <= self.mlp_periods <= 32,
            f"ModelConfig.mlp_periods must be 0 (off) or in 2..32, got {self.mlp_periods}",
        )
        _check(isinstance(self.mlp_periods_from_data, bool), "ModelConfig.mlp_periods_from_data must be a bool")
        _check(
            self.mlp_periodic_mix in ("features", "value"),
            f"ModelConfig.mlp_periodic_mix must be 'features' or 'value', got {self.mlp_periodic_mix!r}",
        )
        _check(
            self.mlp_periodic_mix_tau >= 0.0,
            f"ModelConfig.mlp_periodic_mix_tau must be >= 0, got {self.mlp_periodic_mix_tau}",
        )
        _check(
            self.attention_routing in ("content", "positional"),
            f"ModelConfig.attention_routing must be 'content' or 'positional', got {self.attention_routing!r}",
        )
        _check(isinstance(self.attention_averaging, bool), "ModelConfig.attention_averaging must be a bool")
        ties = (self.attention_ties,) if isinstance(self.attention_ties, str) else tuple(self.attention_ties)
        _check(
            len(ties) >= 1 and all(t in TIE_RULES for t in ties) and len(set(ties)) == len(ties),
            f"ModelConfig.attention_ties must be distinct names among {', '.join(TIE_RULES)}; got {self.attention_ties!r}",
        )
        object.__setattr__(self, "attention_ties", ties)
        _check(isinstance(self.attention_sum, bool), "ModelConfig.attention_sum must be a bool")
        _check(isinstance(self.attention_bos_bias, bool), "ModelConfig.attention_bos_bias must be a bool")
        _check(isinstance(self.readout_gain, bool), "ModelConfig.readout_gain must be a bool")
        _check(isinstance(self.readout_trend, bool), "ModelConfig.readout_trend must be a bool")
        _check(self.shift_prior >= 0.0, f"ModelConfig.shift_prior must be >= 0, got {self.shift_prior}")
        pats = (
            (self.attention_patterns,) if isinstance(self.attention_patterns, str) else tuple(self.attention_patterns)
        )
        _check(
            all(isinstance(p, str) and is_pattern_name(p) for p in pats) and len(set(pats)) == len(pats),
            "ModelConfig.attention_patterns must be distinct names among shift<c> (c >= 1), shifts "
            f"(every shift the sequence length allows), prefix; got {self.attention_patterns!r}",
        )
        object.__setattr__(self, "attention_patterns", pats)
        # JSON round-trips tuples as lists: normalise, then validate the shape.
        pairs = tuple(tuple(p) for p in self.forbid_reads)
        for p in pairs:
            _check(
                len(p) == 2 and all(isinstance(s, str) and s for s in p),
                f"ModelConfig.forbid_reads entries must be (module, variable) string pairs, got {p!r}",
            )
        object.__setattr__(self, "forbid_reads", pairs)


@dataclass(frozen=True)
class TrainConfig:
    """How the discrete search and the hardening phase are run (DESIGN §3, Annealing)."""

    steps: int = 2000  # total steps per restart: search + hardening (times steps_scale)
    # A search variant's multiplier of `steps`; kept apart from `steps` so that `--steps N` still
    # sets every restart's length and a variant applied twice changes nothing.
    steps_scale: float = 1.0
    harden_fraction: float = 0.35  # last fraction of steps: selectors frozen at argmax
    population: int = 16  # independent models trained in lockstep (vectorised) per restart
    # Independent seeds (seed, seed + 1, ...), run in parallel processes; restart i runs
    # portfolio[i % len(portfolio)]. With a `budget`, a restart starts only when it can end in time.
    restarts: int = 4
    batch_size: int = 16  # per population member, during the search
    lr: float = 1e-2  # continuous weights (Adam)
    lr_selector: float = 3e-2  # selector logits (Adam)
    tau_start: float = 2.0  # selector Gumbel-softmax temperature, exponential anneal
    tau_end: float = 0.05
    tau_attn_start: float = 1.0  # attention softmax temperature
    tau_attn_end: float = 0.02
    sample_per_example: bool = True  # a Gumbel sample per sequence (lower-variance gradients)
    # How selector gradients are estimated in the search: Gumbel-softmax relaxation, or the
    # score-function estimator (docs/design.md, REINFORCE estimator).
    estimator: Literal["gumbel", "reinforce"] = "gumbel"
    # REINFORCE (estimator="reinforce", training/reinforce.py): one-hot choices sampled from
    # softmax(theta / tau), one sample per sequence when sample_per_example (else per member);
    # selector logits follow the score-function gradient, continuous weights ordinary backprop.
    reinforce_baseline_decay: float = 0.9  # moving-average baseline of each member's loss
    reinforce_entropy_bonus: float = 0.0  # weight of the mean normalised selector entropy bonus
    harden_top: int = 4  # members kept (best discretised validation) when the search ends
    harden_batch_size: int = 64  # per population member, during hardening
    # Search fraction from which every member's forward pass uses the hard attention pattern (the
    # soft pattern's gradient backward); 1.0 = never. docs/design.md, Straight-through hard attention.
    attention_st_from: float = 0.5
    polish_iters: int = 300  # float64 L-BFGS iterations of the final polish (0 = off)
    # Trial polish during the search: at an evaluation where the best member's discretised model
    # is within this validation nMSE (0 = off), a copy of it is polished (as in phase 3); if the
    # copy solves the task the restart ends there. At most `trial_polish_max` trials per restart,
    # each at an nMSE at most half the previous trial's. docs/design.md, Trial polish.
    trial_polish_nmse: float = 1e-3
    trial_polish_max: int = 3
    trial_polish_iters: int = 100  # L-BFGS iterations of one trial polish
    polish_size: int = 512  # training sequences in the full-batch polish (trial and final)
    eval_every: int = 100  # steps between validation evaluations (one metrics row each)
    val_size: int = 1000  # validation sequences carved from the training split
    time_limit: float | None = None  # seconds per restart; None = no limit
    # Wall seconds from the start of the restarts within which they all end (None = no limit): a
    # restart starts only if one as long as the longest finished so far would end in time (a
    # search cut short never lets its temperatures fall), and runs under what is left. `dtx bench`
    # applies the same rule with its own per-task budget (--budget); this one is for `dtx
    # train`/`run`. docs/design.md, Fallback restarts within the budget.
    budget: float | None = None
    stop_on_exact: bool = True  # end a restart as soon as a member solves the validation split
    # Search variants the restarts cycle through (restart i runs portfolio[i % len]); names are
    # keys of SEARCH_VARIANTS. Every task gets the same portfolio: one configuration whose
    # restarts search differently, not a per-task choice. docs/design.md, Restart portfolio.
    portfolio: tuple[str, ...] = ("arithmetic_trend", "lags", "arithmetic", "plain")

    def __post_init__(self) -> None:
        _check(self.steps >= 1, f"steps must be a positive integer, got {self.steps}")
        _check(self.steps_scale > 0, f"steps_scale must be > 0, got {self.steps_scale}")
        _check(0.0 <= self.harden_fraction < 1.0, "harden_fraction must be in [0, 1)")
        _check(self.population >= 1, "population must be >= 1")
        _check(self.restarts >= 1, f"restarts must be >= 1, got {self.restarts}")
        _check(self.batch_size >= 1, "batch_size must be >= 1")
        _check(self.tau_start > 0 and self.tau_end > 0, "temperatures must be > 0")
        _check(self.tau_attn_start > 0 and self.tau_attn_end > 0, "temperatures must be > 0")
        _check(0.0 <= self.attention_st_from <= 1.0, "attention_st_from must be in [0, 1]")
        _check(self.harden_top >= 1, "harden_top must be >= 1")
        _check(self.budget is None or self.budget > 0, f"budget must be > 0 seconds or None, got {self.budget}")
        _check(
            self.time_limit is None or self.time_limit > 0,
            f"time_limit must be > 0 seconds or None, got {self.time_limit}",
        )
        _check(self.polish_iters >= 0 and self.polish_size >= 1, "polish_iters >= 0, polish_size >= 1")
        _check(
            self.trial_polish_nmse >= 0.0 and self.trial_polish_max >= 0 and self.trial_polish_iters >= 1,
            "trial_polish_nmse and trial_polish_max must be >= 0, trial_polish_iters >= 1",
        )
        _check(self.estimator in ("gumbel", "reinforce"), "estimator must be gumbel|reinforce")
        _check(0.0 <= self.reinforce_baseline_decay < 1.0, "reinforce_baseline_decay must be in [0, 1)")
        _check(self.reinforce_entropy_bonus >= 0.0, "reinforce_entropy_bonus must be >= 0")
        names = tuple(self.portfolio) if not isinstance(self.portfolio, str) else (self.portfolio,)
        _check(
            len(names) >= 1 and all(isinstance(n, str) and n in SEARCH_VARIANTS for n in names),
            f"portfolio entries must be among {', '.join(SEARCH_VARIANTS)}; got {self.portfolio!r}",
        )
        object.__setattr__(self, "portfolio", names)

    @property
    def total_steps(self) -> int:
        """Steps this restart runs: `steps` times the variant's `steps_scale`."""
        return max(1, int(round(self.steps * self.steps_scale)))

    @property
    def search_steps(self) -> int:
        return max(1, int(round(self.total_steps * (1.0 - self.harden_fraction))))


# Search variants a restart may run (TrainConfig.portfolio): overrides of the model and training
# configs, "section.field" -> value. "plain" is DESIGN's search as the defaults describe it.
# "arithmetic" lets heads sum, scales the readout, runs hard attention forward from 20 % of the
# search, gives MLPs periodic units (so a prefix sum then mod k is two modules) and routes by
# content or by the fixed patterns only: queries and keys never read `pos`, positional routing
# being the plain search's job. `forbid_reads` entries add to the configured ones; under
# attention_routing="positional" (q and k read only `pos` and `one`) the q/k `pos` entries are
# dropped, else the user's positional heads could only route uniformly. docs/design.md, Restart
# portfolio.
_ARITHMETIC: dict[str, Any] = {
    "model.readout_gain": True,
    "model.attention_sum": True,
    "train.attention_st_from": 0.2,
    "model.mlp_periods": 6,
    "model.forbid_reads": (("L*.H*.q", "pos"), ("L*.H*.k", "pos")),
}
SEARCH_VARIANTS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "plain": MappingProxyType({}),
        "arithmetic": MappingProxyType(_ARITHMETIC),
        # The arithmetic search whose periodic bank comes from the data (periods up to the integer
        # target's number of distinct values, <= 16) instead of the fixed periods <= 6.
        "arithmetic_data": MappingProxyType(
            {**_ARITHMETIC, "model.mlp_periods": 16, "model.mlp_periods_from_data": True}
        ),
        # The arithmetic search with twice the steps, so its temperatures fall twice as slowly.
        "arithmetic_long": MappingProxyType({**_ARITHMETIC, "train.steps_scale": 2.0}),
        # The arithmetic search whose outputs carry the data's trend along the sequence
        # (ModelConfig.readout_trend), so the modules explain what the position does not.
        "arithmetic_trend": MappingProxyType({**_ARITHMETIC, "model.readout_trend": True}),
        # The plain search in which every lag the sequence length allows is reachable (the
        # configured patterns plus the shift group, ModelConfig.attention_patterns "shifts"), its
        # shift options starting from the data's lag screen: a lag whose pair (x[i], x[i - c])
        # determines the target starts 3 logits ahead (ModelConfig.shift_prior).
        "lags": MappingProxyType({"model.attention_patterns": ("shifts",), "model.shift_prior": 3.0}),
    }
)


def restart_configs(model: ModelConfig, train: TrainConfig, index: int) -> tuple[ModelConfig, TrainConfig, str]:
    """The configs restart number `index` (0-based) runs with, and its variant's name."""
    name = train.portfolio[index % len(train.portfolio)]
    changes: dict[str, dict[str, Any]] = {"model": {}, "train": {}}
    for key, value in SEARCH_VARIANTS[name].items():
        section, field_name = key.split(".", 1)
        if field_name == "attention_patterns":  # added to the configured patterns
            value = tuple(dict.fromkeys((*model.attention_patterns, *value)))
        if field_name == "forbid_reads":  # added to the configured masks, not in their place
            if model.attention_routing == "positional":  # the user's routing wins: q/k keep `pos`
                value = tuple(r for r in value if not (r[0].endswith((".q", ".k")) and r[1] == "pos"))
            value = tuple(dict.fromkeys((*model.forbid_reads, *value)))
        changes[section][field_name] = value
    return dataclasses.replace(model, **changes["model"]), dataclasses.replace(train, **changes["train"]), name


# Fields whose default changed after runs were saved without them: a stored config that lacks
# one gets the value those runs had, not today's default.
_LEGACY: dict[str, dict[str, Any]] = {
    "TrainConfig": {"portfolio": ("plain",), "trial_polish_nmse": 0.0},
    "ModelConfig": {
        "attention_patterns": (),
        "mlp_periodic_mix": "value",
        "mlp_periodic_mix_tau": 0.0,
        "attention_bos_bias": False,
    },
}

# Options that no longer exist (docs/design.md, Retired options), with the value the code now
# always behaves as: a stored config holding one at that value loads (it ran as today's code
# runs), any other value is refused. None: any value, an option that only qualified a retired one.
RETIRED: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "ModelConfig": MappingProxyType({"target_scale": "rms"}),
        "TrainConfig": MappingProxyType(
            {
                "straight_through": False,
                "readout_loss": "mixture",
                "rebirth_every": 0,
                "rebirth_fraction": None,
                "rebirth_until": None,
                "harden_attention_grad": False,
                "attention_st_spread": 0.0,
                "attention_st_share": 1.0,
            }
        ),
    }
)


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Build a stored config from a dict, rejecting unknown keys (a typo must not be silently
    ignored). A field missing from an older file takes its default, so a new field's default
    must be the behaviour runs had before it existed (tests/test_checkpoint.py checks this). A
    retired option (RETIRED) is dropped when it holds the value today's code behaves as."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    retired = RETIRED.get(cls.__name__, {})
    for key in sorted(set(data) & set(retired)):
        _check(
            retired[key] is None or data[key] == retired[key],
            f"{cls.__name__}.{key}={data[key]!r}: a retired option (only {retired[key]!r} can still be "
            "loaded; docs/design.md, Retired options)",
        )
    data = {k: v for k, v in data.items() if k not in retired}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
    legacy = {k: v for k, v in _LEGACY.get(cls.__name__, {}).items() if k not in data}
    return cls(**{**legacy, **data})


def dumps(**configs: Any) -> str:
    return json.dumps({k: to_dict(v) for k, v in configs.items()}, indent=2, sort_keys=True)


__all__ = [
    "ModelConfig",
    "TrainConfig",
    "RETIRED",
    "SEARCH_VARIANTS",
    "restart_configs",
    "to_dict",
    "from_dict",
    "dumps",
    "field",
    "is_pattern_name",
    "shift_offset",
]

"""The generated task suite ("unseen tasks"): a fixed, seeded sample of tasks drawn from task
families, a yardstick of generalisation beyond the 47 public tasks everything was tuned on.

A task is named ``gen{seed}_{index:03d}_{family}``; :func:`~.registry.get_task` resolves such a
name by regenerating the sample of that seed (cached), so a generated task is as reproducible as
a public one: same name, same rule, same :func:`~.registry.make_dataset` arrays. The families
(:mod:`.families`, :mod:`.families_new`) draw parameters well beyond the public tasks: moduli
2-16, lags and windows up to T-1, T in 8-40, values from bits to ±1000, real constants of any
sign and size.
"""

from __future__ import annotations

import functools
import math
import re

import numpy as np

from .families import PUBLIC
from .families_new import NEW
from .family_kit import Family, Params
from .public import TASKS
from .spec import ENUMERATION_LIMIT, TaskSpec, UnknownTaskError

FAMILIES: tuple[Family, ...] = (*PUBLIC, *NEW)
SUITE_SIZE = 80  # two tasks per family
MAX_INDEX = 1_000  # a name's index from here on is a typo, not a request for a huge sample
CHECK_N = 64  # sequences drawn to reject a degenerate task
# Inputs and targets stay far inside the data files' 1e9 limit, also at 2×T: the check that fixed
# the suite's draws (verification's longer sequences, now 4×T, are not re-checked: the draws stay).
MAX_ABS = 1e7
MAX_ATTEMPTS = 200
NAME_RE = re.compile(r"gen(\d+)_(\d+)_(\w*)", re.IGNORECASE | re.ASCII)
SUITE_NAMES = ("all", "mips", "continuous", "generated", "generated:SEED")


def family(name: str) -> Family:
    """The family called ``name``."""
    for f in FAMILIES:
        if f.name == name:
            return f
    raise KeyError(f"unknown task family {name!r}; known: {', '.join(f.name for f in FAMILIES)}")


# ----------------------------------------------------------------------------- bands


def _band_T(T: int) -> str:
    return "8-15" if T <= 15 else "16-24" if T <= 24 else "25-40"


def _band_values(p: Params, kind: str) -> str:
    if kind == "continuous":
        return "real"
    top = max(max(abs(lo), abs(hi)) for key in ("x", "a", "b", "c") if key in p for lo, hi in [p[key]])
    return "bits" if top <= 1 else "<=16" if top <= 16 else "<=100" if top <= 100 else ">100"


def _band(key: str, v: object) -> str | None:
    """The band of parameter ``key``; None when the parameter is off (a modulus of 0)."""
    if key == "shift":
        return "1" if v == 1 else "2-4" if v <= 4 else "5-8" if v <= 8 else "9+"  # type: ignore[operator]
    if key == "m":
        return None if v == 0 else "2-4" if v <= 4 else "5-8" if v <= 8 else "9-16"  # type: ignore[operator]
    if isinstance(v, float):
        a = abs(v)
        return "<0.1" if a < 0.1 else "0.1-1" if a < 1 else "1-10" if a <= 10 else ">10"
    return str(v)


def bands_of(fam: Family, p: Params) -> tuple[tuple[str, str], ...]:
    """Parameter bands for the per-family report: T, value range, the family's key parameters."""
    out = [("T", _band_T(int(p["T"]))), ("values", _band_values(p, fam.kind))]
    for key in fam.keys:
        band = _band(key, p[key])
        if band is not None:
            out.append((key, band))
    return tuple(out)


# ----------------------------------------------------------------------------- tasks


def make_spec(fam: Family, p: Params, name: str) -> TaskSpec:
    """The TaskSpec of one parameter draw; the dataset comes from the unchanged ``make_dataset``."""
    b = fam.build(p)
    T, n_in = int(p["T"]), len(b.program.inputs)
    enumerable = None
    if b.domain is not None and n_in * T * math.log(len(b.domain)) <= math.log(ENUMERATION_LIMIT) + 1e-9:
        enumerable = len(b.domain) ** (n_in * T)
    return TaskSpec(
        name=name,
        family="generated",
        kind=fam.kind,
        input_names=b.program.inputs,
        output_names=b.program.outputs,
        T=T,
        train_fraction=0.9,
        sample=b.sample,
        rule=b.rule,
        enumerable=enumerable,
        domain=b.domain,
        description=b.description,
        generator=fam.name,
        generalises=fam.generalises,
        params=tuple((k, v) for k, v in p.items() if k != "T"),
        bands=bands_of(fam, p),
        reference=b.program.source,
        reference_ops=b.program.ops,
        sample_wider=b.sample_wider,
    )


def degenerate(spec: TaskSpec, rng: np.random.Generator) -> str | None:
    """Why a drawn task is unusable (None when it is fine): constant targets or fewer than two
    target values, too few distinct inputs to split, non-finite or huge values (at T and 2×T),
    non-integer targets of a discrete task."""
    for T in (spec.T, 2 * spec.T):
        x = spec.sample(rng, CHECK_N, T)
        y = spec.rule(x)
        if y.shape != (CHECK_N, T, spec.n_out) or x.shape != (CHECK_N, T, spec.n_in):
            return f"shapes {x.shape} -> {y.shape}"
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            return "non-finite values"
        if max(np.abs(x).max(), np.abs(y).max()) > MAX_ABS:
            return f"values beyond {MAX_ABS:g} at T={T}"
        if spec.kind == "discrete" and not np.array_equal(y, np.round(y)):
            return "non-integer targets"
        if T == spec.T:
            if any(np.unique(y[:, :, c]).size < 2 for c in range(spec.n_out)):
                return "fewer than two target values"
            if np.unique(x.reshape(CHECK_N, -1), axis=0).shape[0] < CHECK_N // 2:
                return "input space too small to split"
    return None


def _draw_task(fam: Family, rng: np.random.Generator, seed: int, index: int) -> TaskSpec:
    name = f"gen{seed}_{index:03d}_{fam.name}"
    for attempt in range(MAX_ATTEMPTS):
        spec = make_spec(fam, fam.draw(rng), name)
        if degenerate(spec, np.random.default_rng([seed, index, attempt])) is None:
            return spec
    raise RuntimeError(f"family {fam.name}: {MAX_ATTEMPTS} degenerate draws in a row")  # pragma: no cover


def generated_suite(seed: int = 0, n: int = SUITE_SIZE) -> tuple[TaskSpec, ...]:
    """A fixed sample of ``n`` tasks for ``seed``: the families in a seeded random order, again
    and again, each time with fresh parameters (degenerate draws are redrawn). Prefix-stable: the
    first k tasks do not depend on ``n``, so a name resolves whatever sample size listed it.
    Cached: the same (seed, n) gives the same tuple object."""
    seed, n = int(seed), int(n)
    if seed < 0:
        raise ValueError(f"generated suite seed must be a non-negative integer, got {seed}")
    if n < 1:
        raise ValueError(f"generated suite size must be positive, got {n}")
    return _suite(seed, n)


@functools.lru_cache(maxsize=8)
def _suite(seed: int, n: int) -> tuple[TaskSpec, ...]:
    rng = np.random.default_rng(seed)
    specs: list[TaskSpec] = []
    order: list[int] = []
    while len(specs) < n:
        if not order:
            order = [int(i) for i in rng.permutation(len(FAMILIES))]
        specs.append(_draw_task(FAMILIES[order.pop(0)], rng, seed, len(specs)))
    return tuple(specs)


def generated_task(name: str) -> TaskSpec:
    """Resolve ``gen{seed}_{index}_{family}`` (any case; the index need not be zero-padded).

    Raises :class:`UnknownTaskError` when the name is malformed or its family is not the one the
    sample of that seed has at that index (the message names the task that is there)."""
    text = str(name).strip()
    m = NAME_RE.fullmatch(text)
    if m is None:
        raise UnknownTaskError(
            f"unknown task {text!r}; generated task names look like gen0_017_add_mod (gen{{seed}}_{{index}}_{{family}})"
        )
    seed, index, fam = int(m[1]), int(m[2]), m[3].lower()
    if fam not in {f.name for f in FAMILIES}:  # fail before drawing a sample
        raise UnknownTaskError(
            f"unknown task {text!r}: no generated task family {fam!r}; see `dtx tasks --suite generated:{seed}`"
        )
    if index >= MAX_INDEX:
        raise UnknownTaskError(f"unknown task {text!r}: generated task index {index} is beyond {MAX_INDEX - 1}")
    spec = generated_suite(seed, max(SUITE_SIZE, index + 1))[index]
    if spec.generator != fam:
        raise UnknownTaskError(
            f"unknown task {text!r}: task {index:03d} of the generated suite of seed {seed} "
            f"is {spec.name} (family {spec.generator})"
        )
    return spec


# ----------------------------------------------------------------------------- suites


def parse_generated_suite(text: str) -> int | None:
    """The seed of ``generated`` (0) or ``generated:SEED``; None for any other text.

    Raises ``ValueError`` for ``generated:`` followed by anything but a non-negative integer."""
    low = str(text).strip().lower()
    if low == "generated":
        return 0
    if not low.startswith("generated:"):
        return None
    raw = low.split(":", 1)[1].strip()
    if not re.fullmatch(r"\d+", raw, re.ASCII):
        raise ValueError(
            f"invalid suite {str(text).strip()!r}: the seed after 'generated:' must be a "
            "non-negative integer, e.g. generated:3"
        )
    return int(raw)


def suite_specs(text: str) -> tuple[TaskSpec, ...] | None:
    """The tasks of a suite name (``all`` = the 47 public tasks, ``mips``, ``continuous``,
    ``generated``, ``generated:SEED``); None when ``text`` is not a suite name."""
    low = str(text).strip().lower()
    if low == "all":
        return TASKS
    if low in ("mips", "continuous"):
        return tuple(t for t in TASKS if t.family == low)
    seed = parse_generated_suite(text)
    return None if seed is None else generated_suite(seed)


__all__ = [
    "FAMILIES",
    "SUITE_NAMES",
    "SUITE_SIZE",
    "bands_of",
    "degenerate",
    "family",
    "generated_suite",
    "generated_task",
    "make_spec",
    "parse_generated_suite",
    "suite_specs",
]

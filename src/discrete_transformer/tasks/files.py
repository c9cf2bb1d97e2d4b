"""Load user data files (``.npz``, ``.csv``, ``.jsonl``) into a validated :class:`Dataset`.

Unseen tasks arrive as files, so this is the system's front door: every problem is reported as one
line ``"{path}: {field}: {problem}"`` before any training starts, and nothing in a file is ever
executed, evaluated or unpickled. The formats are specified in ``docs/data_formats.md``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dataset import KINDS, Dataset, infer_kind

ARRAY_KEYS: tuple[str, ...] = ("x_train", "y_train", "x_test", "y_test")
DATA_EXTENSIONS: tuple[str, ...] = (".npz", ".csv", ".jsonl")
SPLITS: tuple[str, ...] = ("train", "test")
MAX_ABS_VALUE = 1e9  # beyond this, float32 training and symbolic regression lose all precision
MIN_T = 2

PathLike = str | os.PathLike


class DataFileError(ValueError):
    """A data file that cannot be used; the message is one line: ``path: field: problem``."""


def _err(path: str, field: str, problem: str) -> DataFileError:
    one_line = re.sub(r"[\r\n]+", " ", f"{path}: {field}: {problem}")
    return DataFileError(one_line)


def _default_names(prefix: str, n: int) -> tuple[str, ...]:
    """``("x",)`` for one channel, ``("x0", "x1", ...)`` for several (DESIGN.md section 3)."""
    return (prefix,) if n == 1 else tuple(f"{prefix}{i}" for i in range(n))


def _idx(flat: int, shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat, shape)) + "]"


# ----------------------------------------------------------------------------- validation


def _check_number(path: str, field: str, v: float) -> float:
    """Per-value checks shared by the text formats, so errors can cite a line number."""
    if math.isnan(v):
        raise _err(path, field, "value is NaN")
    if math.isinf(v):
        raise _err(path, field, f"value is infinite ({v})")
    if abs(v) > MAX_ABS_VALUE:
        raise _err(path, field, f"value {v:g} exceeds the magnitude limit {MAX_ABS_VALUE:g}; rescale the data")
    return float(v)


def _validate_array(path: str, key: str, a: np.ndarray) -> np.ndarray:
    """Dtype, rank, size and finiteness of one array; returns it as float64 (n, T, C)."""
    if a.dtype.kind == "c":
        raise _err(path, key, f"complex dtype {a.dtype} is not supported; store real numbers")
    if a.dtype.kind not in "biuf":
        raise _err(path, key, f"non-numeric dtype {a.dtype}; expected integers or floats")
    if a.ndim not in (2, 3):
        raise _err(path, key, f"expected 2 or 3 dimensions, got {a.ndim} (shape {a.shape}); use (n, T) or (n, T, C)")
    if a.ndim == 2:
        a = a[:, :, None]
    n, T, C = a.shape
    if n == 0:
        raise _err(path, key, f"empty array (shape {a.shape}); need at least 1 sequence")
    if T == 0 or C == 0:
        raise _err(path, key, f"empty array (shape {a.shape}); need T >= {MIN_T} and C >= 1")
    if T < MIN_T:
        raise _err(path, key, f"need at least {MIN_T} positions per sequence, got T = {T}")
    f = a.astype(np.float64)  # exact for the magnitudes accepted below, even from int64
    nan = np.isnan(f)
    if nan.any():
        raise _err(path, key, f"contains NaN (first at index {_idx(int(np.argmax(nan.ravel())), f.shape)})")
    inf = np.isinf(f)
    if inf.any():
        raise _err(
            path, key, f"contains an infinite value (first at index {_idx(int(np.argmax(inf.ravel())), f.shape)})"
        )
    big = np.abs(f) > MAX_ABS_VALUE
    if big.any():
        i = int(np.argmax(big.ravel()))
        raise _err(
            path,
            key,
            f"value {f.ravel()[i]:g} at {_idx(i, f.shape)} exceeds the "
            f"magnitude limit {MAX_ABS_VALUE:g}; rescale the data",
        )
    return f


def _validate_arrays(path: str, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-array checks, then agreement of n, T and channel counts across the four arrays."""
    arr = {k: _validate_array(path, k, raw[k]) for k in ARRAY_KEYS}
    for split in SPLITS:
        nx, ny = arr[f"x_{split}"].shape[0], arr[f"y_{split}"].shape[0]
        if nx != ny:
            raise _err(path, f"y_{split}", f"has {ny} sequences but x_{split} has {nx}")
    T0 = arr["x_train"].shape[1]
    for k in ARRAY_KEYS[1:]:
        if arr[k].shape[1] != T0:
            raise _err(path, k, f"has T = {arr[k].shape[1]} positions but x_train has T = {T0}")
    for side in ("x", "y"):
        ctr, cte = arr[f"{side}_train"].shape[2], arr[f"{side}_test"].shape[2]
        if ctr != cte:
            raise _err(path, f"{side}_test", f"has {cte} channels but {side}_train has {ctr}")
    return arr


def _check_names(path: str, field: str, names: Sequence[object], n: int) -> tuple[str, ...]:
    if len(names) != n:
        raise _err(path, field, f"{len(names)} names for {n} channel{'s' * (n != 1)}")
    out: list[str] = []
    for s in names:
        if not isinstance(s, str) or not s.strip():
            raise _err(path, field, f"channel names must be non-empty strings, got {s!r}")
        if s in out:
            raise _err(path, field, f"duplicate channel name {s!r}")
        out.append(s)
    return tuple(out)


def _first_non_integral(a: np.ndarray) -> str | None:
    bad = a != np.round(a)
    if not bad.any():
        return None
    i = int(np.argmax(bad.ravel()))
    return f"{float(a.ravel()[i])!r} at index {_idx(i, a.shape)}"


# ----------------------------------------------------------------------------- .npz


def _read_npz(p: Path, path: str) -> tuple[dict[str, np.ndarray], list[str] | None, list[str] | None]:
    try:
        obj = np.load(p, allow_pickle=False)
    except Exception as e:  # garbage bytes, truncated zip, pickle, permissions ...
        if isinstance(e, ValueError) and "pickle" in str(e).lower():
            # numpy's text suggests allow_pickle=True; never relay that advice for untrusted data.
            detail = "no zip archive signature (pickled or arbitrary data is never loaded)"
        else:
            detail = f"{type(e).__name__}: {e}"
        raise _err(path, "file", f"cannot read as .npz (corrupt or not written by numpy.savez): {detail}") from e
    if isinstance(obj, np.ndarray):
        raise _err(
            path,
            "file",
            "holds a single .npy array; expected an .npz archive with keys x_train, y_train, x_test, y_test",
        )
    raw: dict[str, np.ndarray] = {}
    names: dict[str, list[str] | None] = {"x_names": None, "y_names": None}
    with obj as z:
        present = set(z.files)
        for key in ARRAY_KEYS:
            if key not in present:
                found = ", ".join(sorted(present)) or "none"
                raise _err(path, key, f"missing key (need x_train, y_train, x_test, y_test; found: {found})")
        for key in (*ARRAY_KEYS, *names):
            if key not in present:
                continue
            try:
                a = z[key]
            except ValueError as e:
                if "pickle" in str(e).lower():
                    raise _err(
                        path, key, "object array (would need pickle to load, which is never done); store numeric arrays"
                    ) from e
                raise _err(path, key, f"cannot read array: {e}") from e
            except Exception as e:  # corrupt member: bad zlib stream, CRC error, bad header
                raise _err(path, key, f"cannot read array (corrupt file): {type(e).__name__}: {e}") from e
            if key in names:
                if a.ndim != 1 or a.dtype.kind not in "U":
                    raise _err(path, key, "expected a 1-D array of strings")
                names[key] = [str(s) for s in a]
            else:
                raw[key] = a
    return raw, names["x_names"], names["y_names"]


# ----------------------------------------------------------------------------- .csv


@dataclass(frozen=True)
class _CsvLayout:
    """Where each field lives in a CSV row, read from the header."""

    split: int
    seq: int
    t: int
    x_cols: tuple[int, ...]
    x_names: tuple[str, ...]
    y_cols: tuple[int, ...]
    y_names: tuple[str, ...]


def _csv_layout(path: str, header: list[str]) -> _CsvLayout:
    """Validate the header: reserved columns, then ``x``/``x:<name>`` and ``y``/``y:<name>``."""
    for r in ("split", "seq", "t"):
        if r not in header:
            raise _err(
                path, "header", f"missing required column {r!r} (the first row must be a header: split,seq,t,x...,y...)"
            )
    channels: dict[str, list[tuple[int, str, bool]]] = {"x": [], "y": []}  # (column, name, bare)
    for j, h in enumerate(header):
        if h in header[:j]:
            raise _err(path, "header", f"duplicated column {h!r}")
        if h in ("split", "seq", "t"):
            continue
        side, sep, name = h.partition(":")
        if side not in channels:
            raise _err(path, "header", f"unknown column {h!r}; expected split, seq, t, x or x:<name>, y or y:<name>")
        if sep and not name.strip():
            raise _err(path, "header", f"empty channel name in column {h!r}; use '{side}:<name>'")
        channels[side].append((j, name if sep else side, not sep))
    for side, what in (("x", "input"), ("y", "output")):
        cols = channels[side]
        if not cols:
            raise _err(path, "header", f"no {what} column (expected {side!r} or '{side}:<name>')")
        if len(cols) > 1 and any(bare for _, _, bare in cols):
            raise _err(
                path,
                "header",
                f"a bare {side!r} column cannot be combined with other "
                f"'{side}' columns; name every channel '{side}:<name>'",
            )
    return _CsvLayout(
        split=header.index("split"),
        seq=header.index("seq"),
        t=header.index("t"),
        x_cols=tuple(j for j, _, _ in channels["x"]),
        x_names=tuple(n for _, n, _ in channels["x"]),
        y_cols=tuple(j for j, _, _ in channels["y"]),
        y_names=tuple(n for _, n, _ in channels["y"]),
    )


def _parse_int(path: str, field: str, cell: str) -> int:
    try:
        return int(cell)
    except ValueError:
        raise _err(path, field, f"not an integer: {cell!r}") from None


def _parse_float(path: str, field: str, cell: str) -> float:
    try:
        v = float(cell)
    except ValueError:
        raise _err(path, field, f"non-numeric value {cell!r}") from None
    return _check_number(path, field, v)


def _missing_positions(ts: list[int], T: int, limit: int = 5) -> list[int]:
    """First few of 0..T-1 absent from the sorted list ``ts``, in O(len(ts) + limit)."""
    out: list[int] = []
    expected = 0
    for t in ts:
        while expected < t and len(out) < limit:
            out.append(expected)
            expected += 1
        expected = max(expected, t + 1)
    while expected < T and len(out) < limit:
        out.append(expected)
        expected += 1
    return out


def _csv_lines(reader: Iterator[list[str]], line_num: Callable[[], int]) -> Iterator[tuple[int, list[str]]]:
    """Non-blank rows with the source line number they end on."""
    for row in reader:
        if any(c.strip() for c in row):
            yield line_num(), row


def _read_csv(p: Path, path: str) -> tuple[dict[str, np.ndarray], tuple[str, ...], tuple[str, ...]]:
    # rows[split][seq][t] = (x values, y values, line number for duplicate reports)
    rows: dict[str, dict[int, dict[int, tuple[list[float], list[float], int]]]] = {s: {} for s in SPLITS}
    header: list[str] | None = None
    with open(p, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        lines = _csv_lines(reader, lambda: reader.line_num)
        try:
            for _, first in lines:
                header = [c.strip() for c in first]
                break
            if header is None:
                raise _err(path, "header", "empty file; expected a header row split,seq,t,x...,y...")
            lay = _csv_layout(path, header)
            for line, raw in lines:
                at = f"line {line}"
                if len(raw) != len(header):
                    raise _err(path, at, f"expected {len(header)} cells as in the header, got {len(raw)}")
                cells = [c.strip() for c in raw]
                split = cells[lay.split]
                if split not in SPLITS:
                    raise _err(path, f"{at}, column 'split'", f"bad split value {split!r}; expected 'train' or 'test'")
                seq = _parse_int(path, f"{at}, column 'seq'", cells[lay.seq])
                t = _parse_int(path, f"{at}, column 't'", cells[lay.t])
                if t < 0:
                    raise _err(path, f"{at}, column 't'", f"position must be >= 0, got {t}")
                xs = [_parse_float(path, f"{at}, column {header[j]!r}", cells[j]) for j in lay.x_cols]
                ys = [_parse_float(path, f"{at}, column {header[j]!r}", cells[j]) for j in lay.y_cols]
                seq_rows = rows[split].setdefault(seq, {})
                if t in seq_rows:
                    raise _err(
                        path,
                        at,
                        f"duplicated position t={t} in {split} sequence seq={seq} (first on line {seq_rows[t][2]})",
                    )
                seq_rows[t] = (xs, ys, line)
        except csv.Error as e:
            raise _err(path, f"line {reader.line_num}", f"malformed CSV: {e}") from e
    for split in SPLITS:
        if not rows[split]:
            raise _err(path, "split", f"no {split!r} rows; need both train and test sequences")
    T = 1 + max(max(ts) for split in SPLITS for ts in rows[split].values())
    arrays: dict[str, np.ndarray] = {}
    for split in SPLITS:
        seqs = sorted(rows[split])
        for seq in seqs:
            ts = sorted(rows[split][seq])
            if len(ts) != T:
                missing = _missing_positions(ts, T)
                rest = T - len(ts) - len(missing)
                more = f" and {rest} more" if rest > 0 else ""
                raise _err(
                    path,
                    f"{split} sequence seq={seq}",
                    f"missing positions {missing}{more}; every sequence needs t = 0..{T - 1}"
                    f" (T = {T}, the longest sequence in the file)",
                )
        x = np.empty((len(seqs), T, len(lay.x_cols)))
        y = np.empty((len(seqs), T, len(lay.y_cols)))
        for i, seq in enumerate(seqs):
            for t, (xs, ys, _) in rows[split][seq].items():
                x[i, t] = xs
                y[i, t] = ys
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    return arrays, lay.x_names, lay.y_names


# ----------------------------------------------------------------------------- .jsonl


def _json_seq(path: str, field: str, v: object) -> list[list[float]]:
    """A JSON sequence (T numbers, or T lists of C numbers) as a (T, C) nested list."""

    def num(u: object, where: str) -> float:
        if isinstance(u, bool) or not isinstance(u, (int, float)):
            raise _err(path, field, f"non-numeric value {u!r}{where}")
        if isinstance(u, int) and abs(u) > MAX_ABS_VALUE:
            shown_u = f"{float(u):g}" if u.bit_length() < 1000 else "(a huge integer)"
            raise _err(
                path, field, f"value {shown_u}{where} exceeds the magnitude limit {MAX_ABS_VALUE:g}; rescale the data"
            )
        return _check_number(path, field, float(u))

    if not isinstance(v, list) or not v:
        raise _err(
            path,
            field,
            f"expected a non-empty list of positions, got {type(v).__name__}"
            if not isinstance(v, list)
            else "expected a non-empty list of positions",
        )
    if all(not isinstance(u, list) for u in v):
        return [[num(u, f" at position {t}")] for t, u in enumerate(v)]
    if not all(isinstance(u, list) for u in v):
        raise _err(path, field, "mixes numbers and lists; use T numbers or T lists of C numbers")
    C = len(v[0])
    out: list[list[float]] = []
    for t, u in enumerate(v):
        if len(u) != C or C == 0:
            raise _err(
                path,
                field,
                f"ragged: position {t} has {len(u)} channels, position 0 has {C}"
                if C
                else "position 0 has no channels",
            )
        out.append([num(w, f" at position {t}") for w in u])
    return out


def _read_jsonl(p: Path, path: str) -> tuple[dict[str, np.ndarray], list[str] | None, list[str] | None]:
    recs: dict[str, list[tuple[list[list[float]], list[list[float]]]]] = {s: [] for s in SPLITS}
    names: dict[str, list[str] | None] = {"x_names": None, "y_names": None}
    shape_ref: tuple[int, int, int, int] | None = None  # (line, T, Cx, Cy)
    first = True
    with open(p, encoding="utf-8-sig") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise _err(path, f"line {line_no}", f"invalid JSON: {e.msg} (column {e.colno})") from None
            except ValueError as e:  # e.g. an integer literal beyond Python's digit limit
                raise _err(path, f"line {line_no}", f"invalid JSON: {e}") from None
            where = f"line {line_no}"
            if not isinstance(obj, dict):
                raise _err(path, where, f"expected a JSON object, got {type(obj).__name__}")
            if "split" not in obj:
                if first and ({"x_names", "y_names"} & obj.keys()):
                    for k in ("x_names", "y_names"):
                        if k in obj:
                            ns = obj[k]
                            if not isinstance(ns, list):
                                raise _err(path, f"{where}, key {k!r}", "expected a list of names")
                            names[k] = ns
                    first = False
                    continue
                raise _err(path, where, "missing key 'split' (only the first line may be a names header without it)")
            first = False
            split = obj["split"]
            if split not in SPLITS:
                raise _err(path, f"{where}, key 'split'", f"bad split value {split!r}; expected 'train' or 'test'")
            for k in ("x", "y"):
                if k not in obj:
                    raise _err(path, where, f"missing key {k!r}")
            x = _json_seq(path, f"{where}, key 'x'", obj["x"])
            y = _json_seq(path, f"{where}, key 'y'", obj["y"])
            if len(x) != len(y):
                raise _err(path, where, f"x has {len(x)} positions but y has {len(y)}")
            shape = (len(x), len(x[0]), len(y[0]))
            if shape_ref is None:
                shape_ref = (line_no, *shape)
            elif shape != shape_ref[1:]:
                ref_line, *ref = shape_ref
                what = ["positions", "input channels", "output channels"]
                k = next(i for i in range(3) if shape[i] != ref[i])
                raise _err(
                    path,
                    where,
                    f"ragged: {shape[k]} {what[k]}, but line {ref_line} has "
                    f"{ref[k]}; all sequences need the same T and channels",
                )
            recs[split].append((x, y))
    if shape_ref is None:
        raise _err(path, "file", "no sequences (expected one JSON object per line)")
    for split in SPLITS:
        if not recs[split]:
            raise _err(path, "split", f"no {split!r} lines; need both train and test sequences")
    arrays: dict[str, np.ndarray] = {}
    for split in SPLITS:
        arrays[f"x_{split}"] = np.array([r[0] for r in recs[split]], dtype=np.float64)
        arrays[f"y_{split}"] = np.array([r[1] for r in recs[split]], dtype=np.float64)
    return arrays, names["x_names"], names["y_names"]


# ----------------------------------------------------------------------------- public API

_READERS = {".npz": _read_npz, ".csv": _read_csv, ".jsonl": _read_jsonl}


def load_file(path: PathLike, kind: str | None = None) -> Dataset:
    """Read and validate a data file; ``kind`` overrides the inferred task kind.

    Raises :class:`DataFileError` (one line: ``path: field: problem``) for anything unusable, so
    a bad file fails before training instead of as a confusing error deep inside it.
    """
    shown = os.fspath(path)
    if kind is not None and kind not in KINDS:
        raise _err(shown, "kind", f"invalid kind {kind!r}; expected 'discrete' or 'continuous'")
    p = Path(shown)
    if not p.exists():
        raise _err(shown, "file", "not found")
    if p.is_dir():
        raise _err(shown, "file", "is a directory, expected a data file (.npz, .csv or .jsonl)")
    ext = p.suffix.lower()
    if ext not in _READERS:
        raise _err(shown, "extension", f"unknown extension {ext or '(none)'!r}; expected {', '.join(DATA_EXTENSIONS)}")
    try:
        raw, x_names, y_names = _READERS[ext](p, shown)
    except UnicodeDecodeError as e:
        raise _err(shown, "file", f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise _err(shown, "file", f"cannot read: {e.strerror or e}") from None
    arr = _validate_arrays(shown, raw)
    n_in, n_out = arr["x_train"].shape[2], arr["y_train"].shape[2]
    in_names = _check_names(shown, "x_names", x_names, n_in) if x_names is not None else _default_names("x", n_in)
    out_names = _check_names(shown, "y_names", y_names, n_out) if y_names is not None else _default_names("y", n_out)
    if kind is None:
        discrete = all(infer_kind(arr[k]) == "discrete" for k in ("y_train", "y_test"))
        kind = "discrete" if discrete else "continuous"
    elif kind == "discrete":
        for k in ("y_train", "y_test"):
            bad = _first_non_integral(arr[k])
            if bad is not None:
                raise _err(shown, k, f"kind 'discrete' needs integer targets, found {bad}")
    return Dataset(
        name=p.stem,
        kind=kind,  # type: ignore[arg-type]
        x_train=arr["x_train"],
        y_train=arr["y_train"],
        x_test=arr["x_test"],
        y_test=arr["y_test"],
        input_names=in_names,
        output_names=out_names,
        source=shown,
    )


def save_npz(dataset: Dataset, path: PathLike) -> None:
    """Write the four arrays (and the channel names as string arrays) to an ``.npz`` file."""
    with open(os.fspath(path), "wb") as fh:
        np.savez(
            fh,
            x_train=dataset.x_train,
            y_train=dataset.y_train,
            x_test=dataset.x_test,
            y_test=dataset.y_test,
            x_names=np.array(dataset.input_names, dtype=str),
            y_names=np.array(dataset.output_names, dtype=str),
        )


def _fmt(v: float) -> str:
    """Shortest text that reads back as exactly the same float (integers without '.0')."""
    if v.is_integer() and abs(v) < 2**53:
        return str(int(v))
    return repr(v)


def _channel_columns(prefix: str, names: tuple[str, ...]) -> list[str]:
    if names == (prefix,):
        return [prefix]
    return [f"{prefix}:{s}" for s in names]


def _csv_rows(dataset: Dataset) -> Iterator[list[str]]:
    yield [
        "split",
        "seq",
        "t",
        *_channel_columns("x", dataset.input_names),
        *_channel_columns("y", dataset.output_names),
    ]
    for split in SPLITS:
        x, y = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
        for i in range(x.shape[0]):
            for t in range(x.shape[1]):
                yield [split, str(i), str(t), *(_fmt(float(v)) for v in x[i, t]), *(_fmt(float(v)) for v in y[i, t])]


def save_csv(dataset: Dataset, path: PathLike) -> None:
    """Write the long-form CSV (one row per position) that :func:`load_file` reads back exactly."""
    with open(os.fspath(path), "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(_csv_rows(dataset))


def save_jsonl(dataset: Dataset, path: PathLike) -> None:
    """Write the JSONL form: a names header line, then one object per sequence."""

    def seq(a: np.ndarray) -> list:
        if a.shape[1] == 1:
            return [float(v) for v in a[:, 0]]
        return [[float(v) for v in row] for row in a]

    with open(os.fspath(path), "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"x_names": list(dataset.input_names), "y_names": list(dataset.output_names)}) + "\n")
        for split in SPLITS:
            x, y = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
            for i in range(x.shape[0]):
                fh.write(json.dumps({"split": split, "x": seq(x[i]), "y": seq(y[i])}) + "\n")

"""The three data-file formats read into raw arrays and channel names (``.npz``, ``.csv``,
``.jsonl``; docs/data_formats.md). Each reader reports a problem as one :class:`DataFileError`;
:func:`.files.load_file` then validates the arrays the same way for every format."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .file_checks import ARRAY_KEYS, MAX_ABS_VALUE, SPLITS, check_number, file_error

# ----------------------------------------------------------------------------- .npz


def read_npz(p: Path, path: str) -> tuple[dict[str, np.ndarray], list[str] | None, list[str] | None]:
    """(arrays, x names, y names) of an .npz archive, loaded without pickle."""
    try:
        obj = np.load(p, allow_pickle=False)
    except Exception as e:  # garbage bytes, truncated zip, pickle, permissions ...
        if isinstance(e, ValueError) and "pickle" in str(e).lower():
            # numpy's text suggests allow_pickle=True; never relay that advice for untrusted data.
            detail = "no zip archive signature (pickled or arbitrary data is never loaded)"
        else:
            detail = f"{type(e).__name__}: {e}"
        raise file_error(path, "file", f"cannot read as .npz (corrupt or not written by numpy.savez): {detail}") from e
    if isinstance(obj, np.ndarray):
        raise file_error(
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
                raise file_error(path, key, f"missing key (need x_train, y_train, x_test, y_test; found: {found})")
        for key in (*ARRAY_KEYS, *names):
            if key not in present:
                continue
            try:
                a = z[key]
            except ValueError as e:
                if "pickle" in str(e).lower():
                    raise file_error(
                        path, key, "object array (would need pickle to load, which is never done); store numeric arrays"
                    ) from e
                raise file_error(path, key, f"cannot read array: {e}") from e
            except Exception as e:  # corrupt member: bad zlib stream, CRC error, bad header
                raise file_error(path, key, f"cannot read array (corrupt file): {type(e).__name__}: {e}") from e
            if key in names:
                if a.ndim != 1 or a.dtype.kind not in "U":
                    raise file_error(path, key, "expected a 1-D array of strings")
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
            raise file_error(
                path, "header", f"missing required column {r!r} (the first row must be a header: split,seq,t,x...,y...)"
            )
    channels: dict[str, list[tuple[int, str, bool]]] = {"x": [], "y": []}  # (column, name, bare)
    for j, h in enumerate(header):
        if h in header[:j]:
            raise file_error(path, "header", f"duplicated column {h!r}")
        if h in ("split", "seq", "t"):
            continue
        side, sep, name = h.partition(":")
        if side not in channels:
            raise file_error(
                path, "header", f"unknown column {h!r}; expected split, seq, t, x or x:<name>, y or y:<name>"
            )
        if sep and not name.strip():
            raise file_error(path, "header", f"empty channel name in column {h!r}; use '{side}:<name>'")
        channels[side].append((j, name if sep else side, not sep))
    for side, what in (("x", "input"), ("y", "output")):
        cols = channels[side]
        if not cols:
            raise file_error(path, "header", f"no {what} column (expected {side!r} or '{side}:<name>')")
        if len(cols) > 1 and any(bare for _, _, bare in cols):
            raise file_error(
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
        raise file_error(path, field, f"not an integer: {cell!r}") from None


def _parse_float(path: str, field: str, cell: str) -> float:
    try:
        v = float(cell)
    except ValueError:
        raise file_error(path, field, f"non-numeric value {cell!r}") from None
    return check_number(path, field, v)


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


def read_csv(p: Path, path: str) -> tuple[dict[str, np.ndarray], tuple[str, ...], tuple[str, ...]]:
    """(arrays, x names, y names) of a long-form CSV: one row per (split, sequence, position)."""
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
                raise file_error(path, "header", "empty file; expected a header row split,seq,t,x...,y...")
            lay = _csv_layout(path, header)
            for line, raw in lines:
                at = f"line {line}"
                if len(raw) != len(header):
                    raise file_error(path, at, f"expected {len(header)} cells as in the header, got {len(raw)}")
                cells = [c.strip() for c in raw]
                split = cells[lay.split]
                if split not in SPLITS:
                    raise file_error(
                        path, f"{at}, column 'split'", f"bad split value {split!r}; expected 'train' or 'test'"
                    )
                seq = _parse_int(path, f"{at}, column 'seq'", cells[lay.seq])
                t = _parse_int(path, f"{at}, column 't'", cells[lay.t])
                if t < 0:
                    raise file_error(path, f"{at}, column 't'", f"position must be >= 0, got {t}")
                xs = [_parse_float(path, f"{at}, column {header[j]!r}", cells[j]) for j in lay.x_cols]
                ys = [_parse_float(path, f"{at}, column {header[j]!r}", cells[j]) for j in lay.y_cols]
                seq_rows = rows[split].setdefault(seq, {})
                if t in seq_rows:
                    raise file_error(
                        path,
                        at,
                        f"duplicated position t={t} in {split} sequence seq={seq} (first on line {seq_rows[t][2]})",
                    )
                seq_rows[t] = (xs, ys, line)
        except csv.Error as e:
            raise file_error(path, f"line {reader.line_num}", f"malformed CSV: {e}") from e
    for split in SPLITS:
        if not rows[split]:
            raise file_error(path, "split", f"no {split!r} rows; need both train and test sequences")
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
                raise file_error(
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
            raise file_error(path, field, f"non-numeric value {u!r}{where}")
        if isinstance(u, int) and abs(u) > MAX_ABS_VALUE:
            shown_u = f"{float(u):g}" if u.bit_length() < 1000 else "(a huge integer)"
            raise file_error(
                path, field, f"value {shown_u}{where} exceeds the magnitude limit {MAX_ABS_VALUE:g}; rescale the data"
            )
        return check_number(path, field, float(u))

    if not isinstance(v, list) or not v:
        raise file_error(
            path,
            field,
            f"expected a non-empty list of positions, got {type(v).__name__}"
            if not isinstance(v, list)
            else "expected a non-empty list of positions",
        )
    if all(not isinstance(u, list) for u in v):
        return [[num(u, f" at position {t}")] for t, u in enumerate(v)]
    if not all(isinstance(u, list) for u in v):
        raise file_error(path, field, "mixes numbers and lists; use T numbers or T lists of C numbers")
    C = len(v[0])
    out: list[list[float]] = []
    for t, u in enumerate(v):
        if len(u) != C or C == 0:
            raise file_error(
                path,
                field,
                f"ragged: position {t} has {len(u)} channels, position 0 has {C}"
                if C
                else "position 0 has no channels",
            )
        out.append([num(w, f" at position {t}") for w in u])
    return out


def read_jsonl(p: Path, path: str) -> tuple[dict[str, np.ndarray], list[str] | None, list[str] | None]:
    """(arrays, x names, y names) of a JSONL file: an optional names line, then one sequence per line."""
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
                raise file_error(path, f"line {line_no}", f"invalid JSON: {e.msg} (column {e.colno})") from None
            except ValueError as e:  # e.g. an integer literal beyond Python's digit limit
                raise file_error(path, f"line {line_no}", f"invalid JSON: {e}") from None
            where = f"line {line_no}"
            if not isinstance(obj, dict):
                raise file_error(path, where, f"expected a JSON object, got {type(obj).__name__}")
            if "split" not in obj:
                if first and ({"x_names", "y_names"} & obj.keys()):
                    for k in ("x_names", "y_names"):
                        if k in obj:
                            ns = obj[k]
                            if not isinstance(ns, list):
                                raise file_error(path, f"{where}, key {k!r}", "expected a list of names")
                            names[k] = ns
                    first = False
                    continue
                raise file_error(
                    path, where, "missing key 'split' (only the first line may be a names header without it)"
                )
            first = False
            split = obj["split"]
            if split not in SPLITS:
                raise file_error(
                    path, f"{where}, key 'split'", f"bad split value {split!r}; expected 'train' or 'test'"
                )
            for k in ("x", "y"):
                if k not in obj:
                    raise file_error(path, where, f"missing key {k!r}")
            x = _json_seq(path, f"{where}, key 'x'", obj["x"])
            y = _json_seq(path, f"{where}, key 'y'", obj["y"])
            if len(x) != len(y):
                raise file_error(path, where, f"x has {len(x)} positions but y has {len(y)}")
            shape = (len(x), len(x[0]), len(y[0]))
            if shape_ref is None:
                shape_ref = (line_no, *shape)
            elif shape != shape_ref[1:]:
                ref_line, *ref = shape_ref
                what = ["positions", "input channels", "output channels"]
                k = next(i for i in range(3) if shape[i] != ref[i])
                raise file_error(
                    path,
                    where,
                    f"ragged: {shape[k]} {what[k]}, but line {ref_line} has "
                    f"{ref[k]}; all sequences need the same T and channels",
                )
            recs[split].append((x, y))
    if shape_ref is None:
        raise file_error(path, "file", "no sequences (expected one JSON object per line)")
    for split in SPLITS:
        if not recs[split]:
            raise file_error(path, "split", f"no {split!r} lines; need both train and test sequences")
    arrays: dict[str, np.ndarray] = {}
    for split in SPLITS:
        arrays[f"x_{split}"] = np.array([r[0] for r in recs[split]], dtype=np.float64)
        arrays[f"y_{split}"] = np.array([r[1] for r in recs[split]], dtype=np.float64)
    return arrays, names["x_names"], names["y_names"]

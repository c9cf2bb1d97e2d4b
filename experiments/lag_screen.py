"""Which lag of the input explains the target: a screen computed from the data alone.

    python experiments/lag_screen.py TASK [TASK ...] [--rows 2000]

For every lag c = 1 .. T-1 and every input channel, the conditional entropy (bits)
H(y[i] | x[i], x[i - c]) over the first ``--rows`` training sequences, with x read as 0 before
the start (as the model's BOS slot reads). Values are taken as they are, so this suits inputs
with few distinct values (bits, digits, small integers). Printed per task and output: the three
lags with the lowest entropy and the median over all lags. A lag whose entropy is 0 determines
the target together with the current input. Measured to see whether a data-derived prior for
the shift group's offset choice could find the "needle" lags that the search misses
(docs/journal/2026-12-07-pos-trap.md, §7).

Research code: it uses the package's public API and the package never imports it.
"""

from __future__ import annotations

import argparse

import numpy as np

from discrete_transformer.tasks import load_source
from discrete_transformer.training.lag_screen import conditional_entropy


def codes(rows: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes of the distinct rows of `rows` (m, k), and how many there are: values as
    they are, unlike the package's screen, which quantises."""
    values, inverse = np.unique(rows, axis=0, return_inverse=True)
    return inverse.ravel(), values.shape[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tasks", nargs="+")
    ap.add_argument("--rows", type=int, default=2000)
    args = ap.parse_args()
    for name in args.tasks:
        ds = load_source(name)
        x, y = ds.x_train[: args.rows], ds.y_train[: args.rows]  # (n, T, C_in), (n, T, C_out)
        n, T, C = x.shape
        for o, out_name in enumerate(ds.output_names):
            yq, n_y = codes(y[:, :, o].reshape(-1, 1))
            scores = []  # (entropy, lag, channel)
            for ch in range(C):
                cur = x[:, :, ch]
                for c in range(1, T):
                    lag = np.concatenate([np.zeros((n, c)), cur[:, :-c]], axis=1)
                    key, n_key = codes(np.stack([cur, lag], axis=-1).reshape(-1, 2))
                    scores.append((conditional_entropy(key, yq, n_key, n_y), c, ds.input_names[ch]))
            scores.sort()
            best = ", ".join(f"{ch}[i-{c}] {h:.3f}" for h, c, ch in scores[:3])
            median = float(np.median([h for h, _, _ in scores]))
            print(f"{name} -> {out_name}: T={T}; lowest H(y | x[i], lag): {best}; median {median:.3f}")


if __name__ == "__main__":
    main()

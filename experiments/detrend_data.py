"""Write tasks' data with the target's linear trend along the sequence taken out.

    python experiments/detrend_data.py OUT_DIR TASK [TASK ...]

For each task (a built-in name or a data file), the trend ``a + b·pos`` of every output channel
is fitted by least squares over the training split (``pos`` = 0 .. T-1) and subtracted from the
training and the test targets; the result is written to ``OUT_DIR/TASK.npz`` as a data file
(its targets are no longer integers, so it loads as a continuous task). Printed per task: the
share of the targets' variance the trend held, and ``a``, ``b``. Training on such a file tells
whether a search fails because of the trend (docs/journal/2026-12-07-pos-trap.md, §6).

Research code: it uses the package's public API and the package never imports it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from discrete_transformer.tasks import load_source
from discrete_transformer.training.evaluation import sequence_trend


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("tasks", nargs="+")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.tasks:
        ds = load_source(name)
        coef = np.array(sequence_trend(np.asarray(ds.y_train, dtype=np.float64))[0]).T  # (2, C): a, b
        T = ds.y_train.shape[1]
        trend = (np.stack([np.ones(T), np.arange(T, dtype=float)], axis=1) @ coef)[None]  # (1, T, C)
        y_train, y_test = ds.y_train - trend, ds.y_test - trend
        share = 1.0 - float(y_train.var() / ds.y_train.var())
        np.savez(
            args.out / f"{Path(name).stem}.npz",
            x_train=ds.x_train,
            y_train=y_train,
            x_test=ds.x_test,
            y_test=y_test,
            x_names=np.array(ds.input_names, dtype=str),
            y_names=np.array(ds.output_names, dtype=str),
        )
        a, b = coef[0].round(4).tolist(), coef[1].round(4).tolist()
        print(f"{name}: T={T}, trend share of the variance {share:.3f}, a={a}, b={b}")


if __name__ == "__main__":
    main()

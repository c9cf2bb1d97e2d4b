"""Worker-process plumbing for restarts run side by side (and for the bench's local workers).

- A restart's data travels to a ``spawn`` worker as plain NumPy arrays and its model state back
  the same way (no torch shared-memory handles to leak or outlive the pool).
- Workers ignore SIGINT (Ctrl-C is the parent's: the children print no tracebacks), use one torch
  thread each (two processes with one thread each beat one process with two threads on these
  small models), and exit when the parent dies instead of training on, unseen.
- Stopping: the parent cancels what has not started, sets the shared stop event (running restarts
  poll it at each evaluation), waits a short grace period, then terminates what still runs.
"""

from __future__ import annotations

import os
import queue as queue_mod
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, wait
from typing import Any

import numpy as np
import torch

from .evaluation import Split
from .loop import RestartResult

INTERRUPT_GRACE_SECONDS = 3.0


def split_to_numpy(split: Split) -> dict[str, Any]:
    """Plain arrays for the trip to a worker (no torch shared-memory handles)."""
    return {
        "x_train": split.x_train.numpy(),
        "y_train": split.y_train.numpy(),
        "x_val": split.x_val.numpy(),
        "y_val": split.y_val.numpy(),
        "kind": split.kind,
        "var_y": split.var_y.numpy(),
    }


def split_from_numpy(d: dict[str, Any]) -> Split:
    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in d.items() if k != "kind"}
    return Split(kind=d["kind"], **t)


def state_to_numpy(result: RestartResult) -> RestartResult:
    result.state = {k: v.detach().cpu().numpy() for k, v in result.state.items()}
    return result


def state_to_torch(result: RestartResult) -> RestartResult:
    result.state = {
        k: torch.from_numpy(np.array(v)) if isinstance(v, np.ndarray) else v for k, v in result.state.items()
    }
    return result


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def term_as_interrupt() -> Any:
    """Treat SIGTERM like Ctrl-C while restarts run (workers are stopped, logs merged); returns
    the previous handler, or None when not in the main thread (handlers cannot be set there)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


def _exit_when_orphaned(parent: int) -> None:
    """Daemon thread body: a worker whose parent died (killed, not interrupted) exits at once
    instead of training on, unseen, to the end of its restart."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def worker_init() -> None:
    """Initialiser of a worker process (restarts here, bench jobs too): Ctrl-C is the parent's,
    one torch thread, and exit when the parent dies."""
    ignore_sigint()
    torch.set_num_threads(1)
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()


def drain(rows: Any, on_row: Callable[[int, dict], None]) -> None:
    """Pass the progress rows the workers queued so far to ``on_row(seed, row)``."""
    while True:
        try:
            msg = rows.get_nowait()
        except queue_mod.Empty:
            return
        except (EOFError, OSError, BrokenPipeError):
            return
        if msg[0] == "row":
            on_row(msg[1], msg[2])


def stop_pool(executor: ProcessPoolExecutor | None, futures: dict[Future, int], stop_event: Any) -> None:
    """Cancel what has not started, ask running restarts to stop (they ignore SIGINT and poll the
    event at each evaluation), wait a short grace period, then terminate what is still running."""
    try:
        for f in futures:
            f.cancel()
        grace = 0.0
        if stop_event is not None:
            stop_event.set()
            grace = INTERRUPT_GRACE_SECONDS
        running = [f for f in futures if not f.done()]
        if running and grace > 0:
            wait(running, timeout=grace)
    except BaseException:  # a second Ctrl-C, or the Manager already gone: terminate at once
        pass
    if executor is None:
        return
    for p in terminate_pool(executor):
        try:
            p.join(timeout=2)
        except Exception:
            pass


def terminate_pool(executor: ProcessPoolExecutor) -> list[Any]:
    """SIGTERM every live worker process of `executor`; the processes, for the caller to join."""
    procs = list((getattr(executor, "_processes", None) or {}).values())
    for p in procs:
        try:
            if p.is_alive():
                p.terminate()
        except Exception:
            pass
    return procs


__all__ = [
    "INTERRUPT_GRACE_SECONDS",
    "terminate_pool",
    "drain",
    "ignore_sigint",
    "split_from_numpy",
    "split_to_numpy",
    "state_to_numpy",
    "state_to_torch",
    "stop_pool",
    "term_as_interrupt",
    "worker_init",
]

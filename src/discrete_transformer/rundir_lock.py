"""A run directory belongs to one ``dtx`` process at a time: an advisory ``flock`` on ``DIR/.dtx.lock``.

Why: a second ``dtx train --out D --force`` emptying D under a running first one, or two commands
started at once with the same new ``--out``, would otherwise both "succeed" while one user's
results are silently lost. Every command that writes a run (or bench) directory — train, run,
``train --resume``, extract, report, analyze, bench, and the API's ``train`` / ``resume`` /
``extract`` — holds the lock for its whole duration, and repeats its check-then-write decisions
(is ``--out`` empty, is the run unfinished, ...) once it holds it.

- The lock is the kernel's ``flock`` on an open file, so it is released when its holder exits
  *or crashes* (even on SIGKILL): it never goes stale. A ``.dtx.lock`` file left behind by a
  killed holder means nothing; it is not content (:func:`contents` skips it) and the next command
  simply locks it.
- The holder writes its pid, command and start time into the file, for the refusal message.
- Released normally, the file is removed (a finished run directory holds no lock file). So that
  removing it is safe, a lock only counts once the path still names the very file that was
  locked; otherwise the attempt is repeated.
- Per process and re-entrant: a nested :func:`hold` of a directory this process already holds
  (``dtx extract`` calling :func:`~.api.extract`) is a no-op. Child processes of the holder
  (parallel restarts, bench workers) write only on its behalf and never take it.
- Advisory: only ``dtx`` honours it. Where ``fcntl`` does not exist (Windows) there is no lock,
  and a directory where the lock file cannot be created (read-only, or missing) is not locked
  either: nothing can be written there through this process anyway.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locking (see the module doc)
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".dtx.lock"
_ATTEMPTS = 20  # re-locks when the holder removed the file between our open() and flock()
# No lock file can be made: a read-only directory (nothing can be written there through this
# process anyway) or a missing one (the command's own check reports it).
_NOT_LOCKABLE = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.ENOTDIR)


class RunDirError(ValueError):
    """An output directory that cannot be used (or a run directory that cannot be read).

    Defined here, below :mod:`.rundir` and :mod:`.api` (which re-export it), because locking
    raises it too."""


def contents(directory: str | os.PathLike) -> Iterator[Path]:
    """The entries of `directory` that are content: everything but the lock file."""
    return (p for p in Path(directory).iterdir() if p.name != LOCK_FILE)


@contextmanager
def hold(directory: str | os.PathLike, what: str, noun: str = "run directory") -> Iterator[None]:
    """Own `directory` until the block ends.

    `what` names the command for the message another process gets; `noun` names the directory
    in it. Raises :class:`RunDirError` when another process holds the directory."""
    fd = _acquire(Path(directory), what, noun) if fcntl is not None else None
    try:
        yield
    finally:
        if fd is not None:
            _release(Path(directory) / LOCK_FILE, fd)


def _acquire(directory: Path, what: str, noun: str) -> int | None:
    """The locked file's descriptor; None when there is nothing to lock or we already hold it."""
    path = directory / LOCK_FILE
    for _ in range(_ATTEMPTS):
        try:  # never through a symlink: the holder's details overwrite the file
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        except OSError as e:
            if e.errno in _NOT_LOCKABLE:
                return None
            if e.errno == errno.ELOOP:
                _not_a_lock_file(path)
            raise
        try:
            _check_own_file(fd, path)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            if holder.get("pid") == os.getpid():
                return None  # this process holds it already (a nested hold)
            raise RunDirError(
                f"{directory}: {noun} is in use by another dtx process ({_describe(holder)}); "
                "wait for it to finish or use another directory"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        if _is_file_at(fd, path):
            _write_holder(fd, what)
            return fd
        os.close(fd)  # the previous holder removed (or replaced) the file we opened: start again
    raise RunDirError(f"{directory}: cannot lock the {noun} ({path} keeps being replaced)")


def _check_own_file(fd: int, path: Path) -> None:
    """A lock file is a plain file of its own: a symlink, FIFO, device or hard link (say, in a
    run directory from elsewhere) is refused rather than truncated. (No link at all is fine: a
    holder just removed it, and the attempt is repeated.)"""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
        _not_a_lock_file(path)


def _not_a_lock_file(path: Path) -> NoReturn:
    raise RunDirError(f"{path}: not a plain lock file written by dtx; remove it")


def _release(path: Path, fd: int) -> None:
    """Remove the lock file while still holding it (a waiting opener then sees it gone), unlock."""
    try:
        if _is_file_at(fd, path):
            os.unlink(path)
    except OSError:
        pass  # the directory went away or became read-only: the lock is released below anyway
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _is_file_at(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _write_holder(fd: int, what: str) -> None:
    doc = {"pid": os.getpid(), "command": what, "since": time.time()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(doc) + "\n").encode("utf-8"), 0)


HOLDER_WAIT_SECONDS = 0.5  # how long a refused opener waits for a just-started holder's details


def _read_holder(fd: int) -> dict[str, Any]:
    """The holder's details; a holder that has just taken the lock writes them a moment later,
    so an empty file is re-read for up to HOLDER_WAIT_SECONDS before the message says "unknown"."""
    deadline = time.monotonic() + HOLDER_WAIT_SECONDS
    while True:
        try:
            doc = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
            return doc if isinstance(doc, dict) else {}
        except (OSError, ValueError):
            if time.monotonic() >= deadline:
                return {}  # a foreign file, or a holder that never wrote its details
            time.sleep(0.02)


def _describe(holder: dict[str, Any]) -> str:
    """``pid 1234, dtx train sum_last2, since 02:31:05`` (the parts that are known)."""
    parts = [f"pid {holder['pid']}" if isinstance(holder.get("pid"), int) else "pid unknown"]
    command = " ".join(str(holder.get("command") or "").split())
    if command:
        parts.append(command if len(command) <= 100 else command[:97] + "...")
    since = holder.get("since")
    if isinstance(since, (int, float)):
        t = time.localtime(since)
        same_day = time.strftime("%Y%m%d", t) == time.strftime("%Y%m%d")
        parts.append("since " + time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S", t))
    return ", ".join(parts)


__all__ = ["LOCK_FILE", "RunDirError", "contents", "hold"]

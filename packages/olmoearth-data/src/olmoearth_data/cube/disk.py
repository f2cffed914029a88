"""A full disk, said in one line: the errors that mean "no space" and the message a build prints."""

from __future__ import annotations

import errno
import os

#: ``errno`` values of a write that ran out of room: no space, quota exceeded, file-size limit.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class DiskFullError(RuntimeError):
    """A write ran out of space; the message says where, and that a rerun resumes."""


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it wraps) is an :class:`OSError` with a disk-full ``errno``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DiskFullError) or (
            isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def disk_full_message(*, path: os.PathLike | str, doing: str, exc: BaseException) -> str:
    """``no space left on device while <doing> <path> (<strerror>); free space and rerun: …``."""
    inner = next(
        (e for e in (exc, exc.__cause__, exc.__context__) if isinstance(e, OSError) and e.strerror),
        None,
    )
    why = inner.strerror if inner is not None else "no space left"
    return (
        f"no space left on device while {doing} {os.fspath(path)} ({why}); free space and rerun the same "
        "command: the build resumes where it stopped"
    )

"""Writing files so that nothing is lost: a file appears under its name only when complete."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from colorlab.errors import first_line


@contextlib.contextmanager
def written_atomically(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` to write to; renamed over ``target`` when the
    block completes, deleted when it fails (whatever the exception).

    The temporary file is hidden (``.name.partial.ext``), keeps ``target``'s extension (so
    that writers pick the same format) and lives in the same folder (so that the rename is
    atomic, even where the temporary folder is on another file system).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.stem}.partial{target.suffix}")
    try:
        yield temporary
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def write_failure(error: BaseException, folder: Path) -> str:
    """Why a write into ``folder`` failed, in words: the OS's reason (``No space left on
    device``) or, for a library that wraps it (torch: ``RuntimeError: … unexpected pos``),
    its message and the space left on that disk."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    try:
        free = f"{shutil.disk_usage(folder).free / 2**20:.1f} MiB free there"
    except OSError:
        free = "free space unknown"
    first = first_line(error)
    return f"the write failed ({first}; {free})"

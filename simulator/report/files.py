"""A report file written whole or not at all.

A disk that fills up mid-write (``ENOSPC``) or a write cut short would otherwise leave half an
HTML page or CSV under the name asked for, which opens as if it were the whole report.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_whole"]


def write_whole(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path``, its folders created: into a temporary file beside it,
    then renamed over ``path``, so ``path`` holds the old file or the whole new one; return ``path``.
    A symbolic link keeps pointing where it did (its file is replaced); a device or a pipe is
    written in place, as it cannot be replaced.

    Raises ``OSError`` (the temporary file removed) when the folder or the file cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    target = path.resolve() if path.is_symlink() else path  # the link stays, its file is replaced
    if target.exists() and not target.is_file():
        # A device or a pipe (/dev/stdout): written in place; renaming over it would replace the
        # device itself with a regular file.
        with target.open("w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        return path
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path

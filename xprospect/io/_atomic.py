"""Atomic writes: every output is written under a temporary name and renamed on success.

A writer interrupted by a full disk, a read-only target or any error must not leave a
half-written file that later opens as a valid (all-NaN) map, nor block the re-run with
``overwrite=False``. :func:`atomic_path` yields a temporary path in the target's folder (same
file system, so the final :func:`os.replace` is atomic) with the target's suffix (so that
writers choosing a format by extension, such as matplotlib and VTK, still do); the temporary
file is removed whatever happens, and an ``OSError`` is turned into a :class:`DataError` that
says why (disk full, read-only file system, permission denied).
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from xprospect.exceptions import DataError, XProspectError

__all__ = ["atomic_path", "write_error"]

_REASONS = {
    errno.ENOSPC: "the disk is full (no space left on device)",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the target is on a read-only file system",
    errno.EACCES: "permission denied (the target folder is not writable)",
    errno.EPERM: "operation not permitted on the target",
}
# third-party writers (GDAL, VTK) report OS failures as text, without an errno
_TEXT_REASONS = (
    ("no space left", errno.ENOSPC),
    ("disk full", errno.ENOSPC),
    ("read-only file system", errno.EROFS),
    ("permission denied", errno.EACCES),
)


def _reason(err: BaseException) -> str:
    code = getattr(err, "errno", None)
    if code in _REASONS:
        return _REASONS[code]
    text = str(err).lower()
    for needle, code in _TEXT_REASONS:
        if needle in text:
            return _REASONS[code]
    return f"{type(err).__name__}: {err}"


def write_error(target: str | os.PathLike, err: BaseException) -> DataError:
    """Build the :class:`DataError` that says why writing ``target`` failed.

    Parameters
    ----------
    target : path
        The file that was being written.
    err : BaseException
        What the writer raised.

    Returns
    -------
    DataError
        ``"cannot write <target>: <reason>; nothing was written"``.
    """
    return DataError(f"cannot write {target}: {_reason(err)}; nothing was written")


def _remove(path: Path) -> None:
    # best effort (gone already, or not removable): the original error is the one to report
    with contextlib.suppress(OSError):
        path.unlink()


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it to ``target`` when the block succeeds.

    Parameters
    ----------
    target : path
        The final file. Its folder must exist.

    Yields
    ------
    pathlib.Path
        A fresh, empty file in the same folder with the same suffix; write to it (or replace
        it) inside the block.

    Raises
    ------
    DataError
        When the temporary file cannot be created, the block raises an ``OSError`` or any
        other non-xprospect exception, or the final rename fails; the message names
        ``target`` and the reason (disk full, read-only target, ...). The temporary file is
        removed and ``target`` is left as it was. An :class:`XProspectError` raised inside
        the block propagates unchanged (after the clean-up).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('done', ['a.txt'])
    """
    target = Path(target)
    tmp = target.with_name(f".{target.stem}.{uuid.uuid4().hex[:12]}.tmp{target.suffix}")
    try:
        # created here (with the umask's permissions) so that an unwritable target fails
        # before any work is done, with the errno that says why
        open(tmp, "xb").close()
    except OSError as err:
        _remove(tmp)
        raise write_error(target, err) from err
    try:
        yield tmp
        os.replace(tmp, target)
    except XProspectError:
        _remove(tmp)
        raise
    except Exception as err:
        _remove(tmp)
        raise write_error(target, err) from err
    except BaseException:
        _remove(tmp)
        raise

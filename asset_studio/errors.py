"""The one exception type that carries a sentence meant for the user, and the sentences for
the operating system's refusals (disk full, read-only, no permission, name too long)."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path


class UserError(Exception):
    """Bad input the user can fix. Its message is one clear sentence, shown as-is.

    The CLI prints it on stderr and exits 2; the GUI shows it in a dialog. Anything else
    that escapes is a bug.
    """


# The hidden temporary names core/outputs.py writes beside a target: never shown to the user.
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.\d+-[0-9a-f]+\.tmp$")

_KNOWN = {
    errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG,
    errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EFBIG, errno.EEXIST,
}


def user_path(path: str | os.PathLike | None) -> Path | None:
    """PATH as the user knows it: a temporary file of ours is shown as the file it becomes."""
    if path is None:
        return None
    path = Path(os.fsdecode(path))
    m = _TEMP_NAME.match(path.name)
    return path.with_name(m.group("name")) if m else path


def is_environment_error(exc: OSError) -> bool:
    """An OSError caused by the user's disk or folders (full, read-only, forbidden, missing), not a bug."""
    return exc.errno in _KNOWN or exc.filename is not None


def describe_os_error(exc: OSError, target: str | os.PathLike | None = None) -> str:
    """One sentence for an OSError, naming the user's file or its folder, never a temporary file.

    ``target`` is the output being written when the error happened (the CLI and the GUI worker
    pass it when they know it); without it the error's own file name is used.
    """
    path = user_path(target) if target is not None else user_path(exc.filename)
    folder = path.parent if path is not None else None
    where = f" {folder}" if folder is not None and str(folder) not in ("", ".") else " the current folder"
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        what = "no space left" if code != errno.EDQUOT else "no quota left"
        return f"There is {what} on the disk holding{where}: free some space and try again (nothing was replaced)."
    if code == errno.EROFS:
        return f"The folder{where} is on a read-only disk: choose another output folder."
    if code in (errno.EACCES, errno.EPERM):
        shown = path if path is not None else folder
        return f"Permission denied for {shown}: choose another folder or change its permissions."
    if code == errno.ENAMETOOLONG:
        name = path.name if path is not None else "a file name"
        name = name if len(name) <= 80 else name[:80] + "…"
        return f"The name {name} is too long for the file system of{where}: choose a shorter name."
    if code in (errno.EEXIST, errno.ENOTDIR) and path is not None:
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        if blocker is not None and blocker != path or code == errno.EEXIST and path.exists() and not path.is_dir():
            return f"{blocker or path} is a file where a folder is needed: choose another output folder."
    if code in (errno.ENOENT, errno.ENOTDIR):
        return f"{path if path is not None else 'A file'} does not exist (or a part of its folder path is not a folder)."
    if code == errno.EISDIR:
        return f"{path} is a folder, not a file."
    shown = path if path is not None else "a file"
    return f"Cannot use {shown}: {exc.strerror or exc}."

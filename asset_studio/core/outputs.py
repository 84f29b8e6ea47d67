"""The one way Asset Studio writes a file: never half a file, never someone else's file.

Every output is written to a nameless file in the target's folder (Linux ``O_TMPFILE``; a hidden
``.NAME.PID-RANDOM.tmp`` elsewhere), flushed and fsynced, and only then given its name by a
rename, so a kill, a Ctrl-C or a full disk leaves the old file whole and no temporary file
behind. A set of files (sheet pages and their data files) is renamed into place only after every
member is written. ``check_targets`` holds the rule for replacing: an output may not replace an
input or an existing file the command did not write itself unless the user passes ``--force``.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Sequence

from asset_studio.errors import UserError, describe_os_error

# PNG text chunk naming the command that wrote the file, so a re-run knows it may replace it.
MARKER = "asset_studio_output"

Writer = Callable[[BinaryIO], None]

_O_TMPFILE = getattr(os, "O_TMPFILE", 0) if sys.platform.startswith("linux") else 0
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]+\.tmp$")


# --- content ------------------------------------------------------------------------------------


def bytes_writer(data: bytes) -> Writer:
    return lambda f: f.write(data)


def text_writer(text: str) -> Writer:
    return bytes_writer(text.encode("utf-8"))


def png_writer(image, command: str | None = None, pnginfo=None, any_size: bool = False, pixels=None) -> Writer:
    """Write IMAGE as PNG; ``command`` marks the file as that command's output (see written_by).
    ``any_size``: the multi-core encoder even for a small picture (sheet pages: the packer has
    loaded its compiled code already, so only its speed is left); ``pixels``: the array IMAGE
    shares, if there is one (the encoder then reads it instead of a copy)."""

    def write(f: BinaryIO) -> None:
        from PIL.PngImagePlugin import PngInfo

        from asset_studio.core.png_encode import supported, write_png

        info = pnginfo if pnginfo is not None else PngInfo()
        if command:
            info.add_text(MARKER, command)
        if supported(image, any_size):  # every core at once: a big sheet page in a fraction of Pillow's time
            write_png(f, image, info.chunks, pixels)
        else:
            image.save(f, format="PNG", pnginfo=info)

    return write


def written_by(path: Path, command: str) -> bool:
    """Whether PATH is a PNG that ``command`` wrote (its marker chunk sits before the pixels)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.format == "PNG" and im.info.get(MARKER) == command
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False


# --- one staged file ------------------------------------------------------------------------------


def temp_name(target: Path) -> Path:
    """A hidden, unique name beside TARGET; its pid lets a later run sweep it after a kill.
    Long names are shortened so that a name the file system accepts keeps an acceptable temp name."""
    name = target.name
    while len(os.fsencode(name)) > 200:
        name = name[:-1]
    return target.with_name(f".{name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


_SWEPT: set[str] = set()


def sweep(folder: Path) -> None:
    """Remove temporary files that a killed run of ours left in FOLDER (their process is gone).
    Once per folder and process: a later leftover can only be another live process's."""
    key = os.path.abspath(folder)
    if key in _SWEPT:
        return
    _SWEPT.add(key)
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        m = _TEMP.match(name)
        if m and int(m.group("pid")) != os.getpid() and not _alive(int(m.group("pid"))):
            try:
                (folder / name).unlink()
            except OSError:
                pass


_TMPFILE_LINKS: dict[int, bool] = {}  # per device: can a nameless file be given a name here?


def _device(folder: Path) -> int:
    return os.stat(folder).st_dev


def nameless_files_supported(folder: Path) -> bool:
    """Whether outputs in FOLDER are written as nameless files (Linux O_TMPFILE) that get their
    name only when complete, so nothing survives a kill -9. Asked once per device: some file
    systems refuse O_TMPFILE, and some kernels or sandboxes cannot name such a file (EXDEV)."""
    if not _O_TMPFILE or not os.path.isdir("/proc/self/fd"):
        return False
    device = _device(folder)
    if device not in _TMPFILE_LINKS:
        try:
            fd = os.open(folder, _O_TMPFILE | os.O_WRONLY, 0o600)
        except OSError:
            _TMPFILE_LINKS[device] = False
            return False
        probe = temp_name(Path(folder) / "probe")
        try:
            os.link(f"/proc/self/fd/{fd}", probe, follow_symlinks=True)
            os.unlink(probe)
            _TMPFILE_LINKS[device] = True
        except OSError:
            _TMPFILE_LINKS[device] = False
        finally:
            os.close(fd)
    return _TMPFILE_LINKS[device]


class Staged:
    """The complete content of one output, on disk in the target's folder but under no name yet."""

    def __init__(self, target: str | os.PathLike):
        self.target = Path(target)
        self.folder = self.target.parent
        self.fd: int | None = None
        self.temp: Path | None = None  # the visible temporary name, when there is one

    def write(self, writer: Writer) -> "Staged":
        self.folder.mkdir(parents=True, exist_ok=True)
        sweep(self.folder)
        if nameless_files_supported(self.folder):  # a kill -9 leaves nothing behind
            self.fd = os.open(self.folder, _O_TMPFILE | os.O_WRONLY, 0o666)
        if self.fd is None:
            self.temp = temp_name(self.target)
            self.fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with _open_stream(self.fd) as f:
            writer(f)
            f.flush()
        os.fsync(self.fd)
        return self

    def _name_it(self) -> Path:
        """Give a nameless file its hidden temporary name (the step before a replacing rename)."""
        if self.temp is None:
            temp = temp_name(self.target)
            os.link(f"/proc/self/fd/{self.fd}", temp, follow_symlinks=True)
            self.temp = temp
        return self.temp

    def link_new(self, target: Path) -> bool:
        """Give the file the name TARGET unless that name is taken (then False); never replaces."""
        target = Path(target)
        try:
            if self.temp is None:
                os.link(f"/proc/self/fd/{self.fd}", target, follow_symlinks=True)
            else:
                try:
                    os.link(self.temp, target)
                except FileExistsError:
                    raise
                except OSError:  # file systems without hard links (FAT, some network shares)
                    os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # reserve the name
                    os.replace(self.temp, target)
                    self.temp = None
        except FileExistsError:
            return False
        _sync_folder(target.parent)
        return True

    def replace(self, target: Path | None = None) -> Path:
        """Put the file in place under TARGET (default: its own target), replacing what is there."""
        target = Path(target or self.target)
        os.replace(self._name_it(), target)
        self.temp = None
        _sync_folder(target.parent)
        return target

    def discard(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.temp is not None:
            try:
                self.temp.unlink()
            except FileNotFoundError:
                pass
            self.temp = None


def _open_stream(fd: int) -> BinaryIO:
    """The buffered file a writer writes into (tests replace it to fail at the N-th write)."""
    return os.fdopen(fd, "wb", closefd=False)


def _sync_folder(folder: Path) -> None:
    """Make a rename durable: fsync the folder (not possible on every system, hence best effort)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def staged(target: str | os.PathLike, writer: Writer):
    """A Staged file holding WRITER's content; discarded on leaving, whatever happened.
    OSErrors become one sentence naming TARGET."""
    item = Staged(target)
    try:
        try:
            item.write(writer)
            yield item
        except OSError as exc:
            raise UserError(describe_os_error(exc, target)) from None
    finally:
        item.discard()


# --- writing outputs --------------------------------------------------------------------------------


def write_file(target: str | os.PathLike, writer: Writer) -> Path:
    """Write one output atomically, replacing TARGET only once the new content is complete."""
    return write_set([(Path(target), writer)])[0]


def write_data(files: Sequence[tuple[Path, bytes]]) -> list[Path]:
    """Write (path, bytes) pairs as one set."""
    return write_set([(Path(path), bytes_writer(data)) for path, data in files])


def write_set(files: Sequence[tuple[Path, Writer]], remove: Iterable[Path] = ()) -> list[Path]:
    """Write several outputs as one: every file is written and synced before any is renamed into
    place, then the files in REMOVE (stale outputs of an earlier run) are deleted."""
    items: list[Staged] = []
    current: Path | None = None
    try:
        try:
            for target, writer in files:
                current = Path(target)
                item = Staged(current)
                items.append(item)
                item.write(writer)
            for item in items:
                current = item.target
                item.replace()
            for path in remove:
                current = Path(path)
                current.unlink(missing_ok=True)
        except OSError as exc:
            raise UserError(describe_os_error(exc, current)) from None
    finally:
        for item in items:
            item.discard()
    return [Path(target) for target, _ in files]


# --- the rule for replacing ------------------------------------------------------------------------


def _identity(path: Path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def check_targets(
    targets: Iterable[Path],
    inputs: Iterable[Path] = (),
    force: bool = False,
    owned: Callable[[Path], bool] | None = None,
    option: str = "--out",
) -> None:
    """Refuse, by name, an output that would replace an input or an existing file this command
    did not write itself (``owned`` tells), unless FORCE. A folder is never replaced."""
    ids = {i for i in (_identity(Path(p)) for p in inputs) if i is not None}
    for target in targets:
        target = Path(target)
        if target.is_dir():
            raise UserError(f"{target} is a folder; {option} must name a file.")
        if force or not (target.exists() or target.is_symlink()):
            continue
        if _identity(target) in ids:
            raise UserError(f"{target} is one of the inputs: choose another {option}, or pass --force to replace it.")
        if owned is None or not owned(target):
            raise UserError(
                f"{target} already exists and was not written by this command: choose another {option}, "
                "or pass --force to replace it."
            )

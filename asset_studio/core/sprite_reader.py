"""Sprites read by a helper process while this one loads the compiled sheet kernels.

A `sheet` command spends its first second on two jobs that each keep one core busy and cannot
share a process: reading thousands of small PNGs (Pillow decodes them holding the GIL) and
loading numba with the kernels' cached machine code (Python imports). Where the kernels are not
loaded yet and there are a few hundred sprites or more, a child Python (the same interpreter
and the same reader, core.sheet.read_sprites) reads them in chunks from the front of the list
while the kernels load here; then this process reads chunks from the back. Each chunk is
claimed by creating its marker file (O_EXCL: one of the two wins), so the two meet wherever
their speeds put them, for any sprite size or machine. The child hands its chunks back as
files. Whatever goes wrong in the child (a bad file, no interpreter, no room, a short answer)
is redone in this process, which gives the usual sentence.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

HELPER_FROM = 300  # sprites: below this the child's start-up costs more than it saves
CHUNK = 32  # sprites per claim: a few milliseconds of reading
_HEADER = struct.Struct("<6i")  # width, height, trim x, y, w, h
_CHILD = "from asset_studio.core.sprite_reader import child_main; child_main()"
REQUEST = "sprites.json"  # in the temporary folder, beside K.claim and K.bin per chunk


def read_sprites_beside(found: list[tuple[str, Path]], trim: bool, meanwhile: Callable[[], None]):
    """core.sheet.read_sprites(found, trim), with MEANWHILE run here while a child reads (see the
    module's note); MEANWHILE always runs once."""
    from asset_studio.core.sheet import Sprite, read_sprites

    if len(found) < HELPER_FROM or (os.cpu_count() or 1) < 2:
        meanwhile()
        return read_sprites(found, trim)
    import tempfile

    chunks = [found[i : i + CHUNK] for i in range(0, len(found), CHUNK)]
    # The list and the pixels go through files, not pipes: the child never waits for this
    # process, and no thread may run here while numba loads (core.jit).
    try:
        folder = tempfile.TemporaryDirectory(prefix="asset-studio-", ignore_cleanup_errors=True)
    except OSError:  # no temporary folder: everything is read here
        folder = None
    child = _start(found, trim, Path(folder.name)) if folder else None
    if child is None:
        if folder:
            folder.cleanup()
        meanwhile()
        return read_sprites(found, trim)
    with folder:
        here = Path(folder.name)
        try:
            meanwhile()
            mine = {}
            for k in reversed(range(len(chunks))):
                if not _claim(here, k):
                    break  # the child has it, and every chunk before it
                mine[k] = read_sprites(chunks[k], trim)
        except BaseException:  # a bad sprite here, Ctrl-C: the child's work is not wanted
            child.kill()
            raise
        finally:
            child.wait()
        sprites = []
        for k, chunk in enumerate(chunks):
            got = mine.get(k) or _answer(here / f"{k}.bin", chunk, Sprite)
            sprites += got if got is not None else read_sprites(chunk, trim)
    return sprites


def _claim(folder: Path, k: int) -> bool:
    """Whether this process now owns chunk K (False: the other one does)."""
    try:
        os.close(os.open(folder / f"{k}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    except OSError:
        return True  # no marker can be made: read it anyway (the parent then keeps its own)
    return True


def _start(found, trim: bool, folder: Path) -> subprocess.Popen | None:
    """The child, told to read FOUND's chunks into FOLDER; None when it cannot be started."""
    try:
        request = {"paths": [str(path) for _, path in found], "trim": trim, "chunk": CHUNK}
        (folder / REQUEST).write_text(json.dumps(request), encoding="utf-8")
        return subprocess.Popen([sys.executable, "-c", _CHILD, str(folder)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))  # no console flash on Windows
    except OSError:
        return None


def _answer(path: Path, found, Sprite):
    """The child's chunk at PATH as Sprites (pictures sharing the file's bytes), or None when it
    is missing, short or long."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    sprites, pos = [], 0
    try:
        for name, _ in found:
            w, h, *box = _HEADER.unpack_from(data, pos)
            pos += _HEADER.size
            size = 4 * w * h
            if pos + size > len(data):
                return None
            pixels = np.frombuffer(data, np.uint8, size, pos).reshape(h, w, 4)
            image = Image.frombuffer("RGBA", (w, h), pixels, "raw", "RGBA", 0, 1)  # the same memory
            pos += size
            sprites.append(Sprite(name=name, image=image, trim=tuple(box), pixels=pixels))
    except (struct.error, ValueError):
        return None
    return sprites if pos == len(data) else None


def child_main() -> None:
    """The child: chunks of the paths in FOLDER/REQUEST (FOLDER first on its command line), from
    the front, each claimed and then written to FOLDER/K.bin: per sprite its size, trim box and
    RGBA bytes. Stops at the first chunk the parent has claimed, or at a file it cannot read."""
    from asset_studio.core.sheet import read_sprites
    from asset_studio.errors import UserError

    folder = Path(sys.argv[1])
    request = json.loads((folder / REQUEST).read_text(encoding="utf-8"))
    paths, chunk = [(str(i), Path(p)) for i, p in enumerate(request["paths"])], request["chunk"]
    for k, start in enumerate(range(0, len(paths), chunk)):
        if not _claim(folder, k):
            return
        try:
            sprites = read_sprites(paths[start : start + chunk], request["trim"])
        except UserError:
            sys.exit(2)  # the parent reads this chunk again and says why
        with open(folder / f"{k}.bin", "wb") as out:
            for sprite in sprites:
                out.write(_HEADER.pack(*sprite.image.size, *sprite.trim))
                out.write(sprite.image.tobytes())

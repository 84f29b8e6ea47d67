"""Sprites read by a helper process while this one loads the compiled sheet kernels.

A `sheet` command spends its first second on two jobs that each keep one core busy and cannot
share a process: reading thousands of small PNGs (Pillow decodes them holding the GIL) and
loading numba with the kernels' cached machine code (Python imports). Where the kernels are not
loaded yet and there are a few hundred sprites or more, a child Python (the same interpreter
and the same reader, core.sheet.read_sprites) reads three quarters of them and hands back the
pixels through a file while the kernels load here; this process then reads the last quarter, so
both finish at about the same time. Whatever goes wrong in the child (a bad file, a missing
interpreter) is redone in this process, which gives the usual sentence.
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
CHILD_SHARE = 0.75  # of the sprites, read by the child; this process reads the rest after loading
_HEADER = struct.Struct("<6i")  # width, height, trim x, y, w, h
_CHILD = "from asset_studio.core.sprite_reader import child_main; child_main()"
REQUEST, ANSWER = "sprites.json", "pixels.bin"  # the files in the temporary folder


def read_sprites_beside(found: list[tuple[str, Path]], trim: bool, meanwhile: Callable[[], None]):
    """core.sheet.read_sprites(found, trim), with MEANWHILE run here while a child reads (see the
    module's note); MEANWHILE always runs once."""
    from asset_studio.core.sheet import Sprite, read_sprites

    if len(found) < HELPER_FROM or (os.cpu_count() or 1) < 2:
        meanwhile()
        return read_sprites(found, trim)
    import tempfile

    cut = int(len(found) * CHILD_SHARE)
    theirs, ours = found[:cut], found[cut:]
    # The list and the pixels go through files, not pipes: the child never waits for this
    # process, and no thread may run here while numba loads (core.jit). No temporary folder, no
    # room in it or no interpreter: everything is read here.
    try:
        folder = tempfile.TemporaryDirectory(prefix="asset-studio-", ignore_cleanup_errors=True)
    except OSError:
        folder = None
    child = _start(theirs, trim, Path(folder.name)) if folder else None
    if child is None:
        if folder:
            folder.cleanup()
        meanwhile()
        return read_sprites(found, trim)
    with folder:
        try:
            meanwhile()
            mine = read_sprites(ours, trim)
        finally:
            code = child.wait()
        sprites = _answer(Path(folder.name) / ANSWER, theirs, Sprite) if code == 0 else None
    return (sprites if sprites is not None else read_sprites(theirs, trim)) + mine


def _start(found, trim: bool, folder: Path) -> subprocess.Popen | None:
    """The child, told to read FOUND into FOLDER/ANSWER; None when it cannot be started."""
    try:
        (folder / REQUEST).write_text(json.dumps({"paths": [str(path) for _, path in found], "trim": trim}), encoding="utf-8")
        return subprocess.Popen([sys.executable, "-c", _CHILD, str(folder / REQUEST), str(folder / ANSWER)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))  # no console flash on Windows
    except OSError:
        return None


def _answer(path: Path, found, Sprite):
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return _parse(data, found, Sprite)


def _parse(data: bytes, found, Sprite):
    """The child's answer as Sprites (pictures sharing DATA's memory), or None if it is short."""
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
    """The child: the paths from the file named first on its command line; each sprite's size,
    trim box and RGBA bytes into the file named second."""
    from asset_studio.core.sheet import read_sprites
    from asset_studio.errors import UserError

    request = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    try:
        sprites = read_sprites([(str(i), Path(p)) for i, p in enumerate(request["paths"])], request["trim"])
    except UserError:
        sys.exit(2)  # the parent reads again and says why
    with open(sys.argv[2], "wb") as out:
        for sprite in sprites:
            out.write(_HEADER.pack(*sprite.image.size, *sprite.trim))
            out.write(sprite.image.tobytes())

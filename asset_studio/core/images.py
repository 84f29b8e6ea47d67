"""Reading pictures: the one function that opens an image file and turns it into RGBA or RGB.

Pillow's plain ``convert`` clips 16-bit grayscale (I;16, I;16B, I) to white, so a 16-bit sprite
came out blank or fully transparent. Here every mode a PNG, JPEG, WebP, BMP, TGA or GIF can hold
is converted by what its values mean: 16-bit levels scaled to 8 bits, palette and grayscale
transparency (tRNS) kept as alpha, CMYK and the rest through Pillow. Floating-point images have no
agreed range and are refused with a sentence.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from asset_studio.errors import UserError

MAX_PIXELS = 64_000_000  # more than this is a mistake (or a decompression bomb), not a picture
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def to_mode(image: Image.Image, mode: str = "RGBA", name: str = "The image") -> Image.Image:
    """IMAGE as an 8-bit ``RGBA`` or ``RGB`` image, whatever its mode."""
    if mode not in ("RGBA", "RGB"):
        raise ValueError(mode)
    if image.mode == mode:
        return image.copy()
    if image.mode in _SIXTEEN_BIT:
        # I;16 levels run 0-65535 (PNG stores 16-bit grayscale so); I is treated the same way.
        levels = np.asarray(image).astype(np.int64)
        gray = Image.fromarray(((np.clip(levels, 0, 65535) * 255 + 32767) // 65535).astype(np.uint8), "L")
        if mode == "RGB":
            return gray.convert("RGB")
        alpha = np.full(levels.shape, 255, np.uint8)
        key = image.info.get("transparency")
        if isinstance(key, int):  # a tRNS chunk: this one level is transparent
            alpha[levels == key] = 0
        rgba = gray.convert("RGBA")
        rgba.putalpha(Image.fromarray(alpha, "L"))
        return rgba
    if image.mode == "F":
        raise UserError(f"{name} holds floating-point pixels, which have no agreed colour range: "
                        "save it as an 8- or 16-bit PNG.")
    try:
        if image.mode == "P" and "transparency" in image.info or image.mode in ("PA", "LA", "La", "RGBa"):
            rgba = image.convert("RGBA")
            return rgba if mode == "RGBA" else rgba.convert("RGB")
        if image.mode in ("L", "1", "RGB") and mode == "RGBA" and "transparency" in image.info:
            return image.convert("RGBA")  # Pillow turns the tRNS colour into alpha 0
        if image.mode in ("CMYK", "YCbCr", "LAB", "HSV") and mode == "RGBA":
            return image.convert("RGB").convert("RGBA")
        return image.convert(mode)
    except (ValueError, OSError) as exc:
        raise UserError(f"{name} uses the pixel mode {image.mode}, which cannot be read as colours ({exc}).") from None


def has_alpha(image: Image.Image) -> bool:
    """Whether IMAGE can hold transparent pixels (an alpha band or a tRNS transparency)."""
    return "A" in image.getbands() or "a" in image.getbands() or "transparency" in image.info


def read_image(path: str | os.PathLike, mode: str | None = "RGBA", max_pixels: int = MAX_PIXELS,
               what: str = "") -> Image.Image:
    """The picture in PATH as RGBA or RGB (first frame of an animation), or a UserError sentence.
    Mode None: RGBA when the file can hold transparency, RGB otherwise. WHAT ("The init image")
    opens the sentences."""
    path = Path(path)
    shown = f"{what} {path}" if what else str(path)
    try:
        with Image.open(path) as im:
            if im.width * im.height > max_pixels:
                raise UserError(f"{shown} is too large ({im.width}x{im.height}) to read as one picture.")
            im.load()
            return to_mode(im, mode or ("RGBA" if has_alpha(im) else "RGB"), name=shown)
    except FileNotFoundError:
        raise UserError(f"{what or 'The image'} {path} does not exist.") from None
    except IsADirectoryError:
        raise UserError(f"{shown} is a folder, not an image.") from None
    except PermissionError:
        raise UserError(f"Permission denied for {shown}: it cannot be read.") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise UserError(f"{shown} is not a readable image.") from None

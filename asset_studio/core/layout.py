"""A base layout for text-bearing assets: canvas, text, shapes and placed images, in z-order.

A layout is the artist's exact drawing of what must be readable (a button's "PLAY", a sign's
Korean text); ControlNet then follows the control image rendered from it. Layout files come
from strangers too, so loading is strict: a known schema, sizes within limits, fonts that
exist, and image paths that stay inside the layout's folder.

JSON form::

    {"version": 1, "width": 512, "height": 256, "background": "#000000",
     "elements": [
        {"type": "shape", "kind": "rounded_rect", "box": [16, 16, 480, 224], "radius": 40,
         "fill": "#3060c0", "stroke": "#ffffff", "stroke_width": 6},
        {"type": "text", "text": "PLAY", "box": [16, 16, 480, 224], "size": 120,
         "weight": "bold", "fill": "#ffffff"}]}

Coordinates are canvas pixels, box = [x, y, width, height]; rotation is in degrees,
clockwise, about the centre of the element's box (as in Qt and CSS).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from asset_studio.errors import UserError

LAYOUT_VERSION = 1
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_SIDE = 4096
MIN_SIDE = 8
MAX_ELEMENTS = 500
MAX_TEXT_CHARS = 2000
MAX_POINTS = 1000
MAX_IMAGE_BYTES = 32 * 1024 * 1024
SHAPE_KINDS = ("rect", "rounded_rect", "ellipse", "polygon", "line")
ALIGNS = ("left", "center", "right")
VALIGNS = ("top", "middle", "bottom")
_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")


@dataclass
class Box:
    x: float
    y: float
    w: float
    h: float

    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    def to_list(self) -> list[float]:
        return [_num(self.x), _num(self.y), _num(self.w), _num(self.h)]


@dataclass
class TextElement:
    text: str
    box: Box
    font: str = "Noto Sans CJK KR"
    size: float = 48.0
    weight: str | int = "normal"
    align: str = "center"
    valign: str = "middle"
    letter_spacing: float = 0.0  # extra pixels between characters
    line_spacing: float = 1.2  # line height as a multiple of the size
    fill: str | None = "#ffffff"
    outline_width: float = 0.0
    outline_color: str = "#000000"
    rotation: float = 0.0
    type: str = field(default="text", init=False)


@dataclass
class ShapeElement:
    kind: str
    box: Box | None = None  # rect, rounded_rect, ellipse
    points: list[tuple[float, float]] = field(default_factory=list)  # polygon, line
    fill: str | None = "#ffffff"
    stroke: str | None = None
    stroke_width: float = 0.0
    radius: float = 0.0  # corner radius of rounded_rect
    rotation: float = 0.0
    type: str = field(default="shape", init=False)

    def bounds(self) -> Box:
        if self.box is not None:
            return self.box
        xs = [p[0] for p in self.points] or [0.0]
        ys = [p[1] for p in self.points] or [0.0]
        return Box(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


@dataclass
class ImageElement:
    path: str  # relative to the layout file's folder
    box: Box
    rotation: float = 0.0
    opacity: float = 1.0
    type: str = field(default="image", init=False)


Element = TextElement | ShapeElement | ImageElement


@dataclass
class Layout:
    width: int = 512
    height: int = 512
    background: str = "#000000"
    elements: list = field(default_factory=list)
    # The folder image paths are relative to; not saved (it is where the file is).
    base_dir: Path | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        return {
            "version": LAYOUT_VERSION,
            "width": self.width,
            "height": self.height,
            "background": self.background,
            "elements": [element_to_dict(e) for e in self.elements],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def copy(self) -> "Layout":
        return layout_from_dict(self.to_dict(), base_dir=self.base_dir, check_files=False)


def element_bounds(element) -> Box:
    """The unrotated box of any element."""
    return element.bounds() if isinstance(element, ShapeElement) else element.box


# ---- serialisation -------------------------------------------------------------------------

def _num(v: float) -> float | int:
    """Whole numbers as ints, so saved files stay tidy and diff well."""
    return int(v) if float(v).is_integer() else round(float(v), 3)


def element_to_dict(element) -> dict:
    data = asdict(element)
    out = {"type": data.pop("type")}
    for key, value in data.items():
        if key == "box":
            value = element.box.to_list() if element.box is not None else None
            if value is None:
                continue
        elif key == "points":
            if not value:
                continue
            value = [[_num(x), _num(y)] for x, y in value]
        elif isinstance(value, float):
            value = _num(value)
        out[key] = value
    return out


def layout_from_dict(data, base_dir: Path | None = None, check_files: bool = True,
                     source: str = "The layout") -> Layout:
    """Validate DATA (parsed JSON) into a Layout; every problem is one UserError sentence."""
    if not isinstance(data, dict):
        raise UserError(f"{source} is not a JSON object.")
    _no_unknown(data, {"version", "width", "height", "background", "elements"}, source)
    version = data.get("version", LAYOUT_VERSION)
    if version != LAYOUT_VERSION:
        raise UserError(f"{source} has version {version!r}; this Asset Studio reads version {LAYOUT_VERSION}.")
    width = _int(data.get("width", 512), f"{source}'s width", MIN_SIDE, MAX_SIDE)
    height = _int(data.get("height", 512), f"{source}'s height", MIN_SIDE, MAX_SIDE)
    background = _color(data.get("background", "#000000"), f"{source}'s background", allow_none=False)
    raw = data.get("elements", [])
    if not isinstance(raw, list):
        raise UserError(f"{source}'s 'elements' must be a list.")
    if len(raw) > MAX_ELEMENTS:
        raise UserError(f"{source} has {len(raw)} elements; at most {MAX_ELEMENTS} are allowed.")
    layout = Layout(width=width, height=height, background=background, base_dir=base_dir)
    for i, item in enumerate(raw, start=1):
        layout.elements.append(_element_from_dict(item, f"Element {i} of {source.lower()}", base_dir, check_files))
    return layout


def _element_from_dict(item, where: str, base_dir: Path | None, check_files: bool):
    if not isinstance(item, dict):
        raise UserError(f"{where} is not a JSON object.")
    kind = item.get("type")
    if kind == "text":
        return _text_from_dict(item, where)
    if kind == "shape":
        return _shape_from_dict(item, where)
    if kind == "image":
        return _image_from_dict(item, where, base_dir, check_files)
    raise UserError(f"{where} has unknown type {kind!r}; expected 'text', 'shape' or 'image'.")


def _text_from_dict(item: dict, where: str) -> TextElement:
    from asset_studio.core.fonts import check_font, weight_value

    allowed = {f.name for f in fields(TextElement)}
    _no_unknown(item, allowed, where)
    text = item.get("text")
    if not isinstance(text, str) or not text:
        raise UserError(f"{where} needs a non-empty 'text' string.")
    if len(text) > MAX_TEXT_CHARS:
        raise UserError(f"{where} has {len(text)} characters; at most {MAX_TEXT_CHARS} are allowed.")
    font = item.get("font", "Noto Sans CJK KR")
    if not isinstance(font, str) or not font.strip() or len(font) > 200 or any(ord(c) < 32 for c in font):
        raise UserError(f"{where} needs a font family name.")
    weight = item.get("weight", "normal")
    weight_value(weight)  # raises on a bad weight
    try:
        check_font(font, weight)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    align = item.get("align", "center")
    valign = item.get("valign", "middle")
    if align not in ALIGNS:
        raise UserError(f"{where} has align {align!r}; expected one of {', '.join(ALIGNS)}.")
    if valign not in VALIGNS:
        raise UserError(f"{where} has valign {valign!r}; expected one of {', '.join(VALIGNS)}.")
    return TextElement(
        text=text,
        box=_box(item.get("box"), where),
        font=font,
        size=_float(item.get("size", 48), f"{where}'s size", 1, 2048),
        weight=weight,
        align=align,
        valign=valign,
        letter_spacing=_float(item.get("letter_spacing", 0), f"{where}'s letter_spacing", -512, 512),
        line_spacing=_float(item.get("line_spacing", 1.2), f"{where}'s line_spacing", 0.5, 5),
        fill=_color(item.get("fill", "#ffffff"), f"{where}'s fill"),
        outline_width=_float(item.get("outline_width", 0), f"{where}'s outline_width", 0, 256),
        outline_color=_color(item.get("outline_color", "#000000"), f"{where}'s outline_color", allow_none=False),
        rotation=_float(item.get("rotation", 0), f"{where}'s rotation", -3600, 3600),
    )


def _shape_from_dict(item: dict, where: str) -> ShapeElement:
    _no_unknown(item, {f.name for f in fields(ShapeElement)}, where)
    kind = item.get("kind")
    if kind not in SHAPE_KINDS:
        raise UserError(f"{where} has shape kind {kind!r}; expected one of {', '.join(SHAPE_KINDS)}.")
    box, points = None, []
    if kind in ("polygon", "line"):
        points = _points(item.get("points"), where, 3 if kind == "polygon" else 2)
    else:
        box = _box(item.get("box"), where)
    shape = ShapeElement(
        kind=kind, box=box, points=points,
        fill=_color(item.get("fill", None if kind == "line" else "#ffffff"), f"{where}'s fill"),
        stroke=_color(item.get("stroke"), f"{where}'s stroke"),
        stroke_width=_float(item.get("stroke_width", 0), f"{where}'s stroke_width", 0, 512),
        radius=_float(item.get("radius", 0), f"{where}'s radius", 0, MAX_SIDE),
        rotation=_float(item.get("rotation", 0), f"{where}'s rotation", -3600, 3600),
    )
    if kind == "line" and (shape.stroke is None or shape.stroke_width <= 0):
        raise UserError(f"{where} is a line without a stroke colour and a stroke_width above 0.")
    return shape


def _image_from_dict(item: dict, where: str, base_dir: Path | None, check_files: bool) -> ImageElement:
    _no_unknown(item, {f.name for f in fields(ImageElement)}, where)
    path = item.get("path")
    if not isinstance(path, str) or not path:
        raise UserError(f"{where} needs a 'path' to an image file.")
    element = ImageElement(
        path=path, box=_box(item.get("box"), where),
        rotation=_float(item.get("rotation", 0), f"{where}'s rotation", -3600, 3600),
        opacity=_float(item.get("opacity", 1), f"{where}'s opacity", 0, 1),
    )
    if check_files:
        resolve_image_path(element.path, base_dir, where)
    return element


def resolve_image_path(path: str, base_dir: Path | None, where: str = "An image element") -> Path:
    """The file an image element names, which must be inside the layout's folder."""
    if os.path.isabs(path) or Path(path).is_absolute() or re.match(r"^[A-Za-z]:", path) or path.startswith(("\\", "/")):
        raise UserError(f"{where} has an absolute image path {path!r}; image paths must be relative to the layout's folder.")
    if base_dir is None:
        raise UserError(f"{where} refers to the image {path!r}, but the layout has no folder to find it in.")
    root = Path(base_dir).resolve()
    target = (root / path).resolve()
    if target != root and root not in target.parents:
        raise UserError(f"{where} refers to {path!r}, which is outside the layout's folder.")
    if not target.is_file():
        raise UserError(f"{where} refers to {path!r}, which does not exist in the layout's folder.")
    if target.stat().st_size > MAX_IMAGE_BYTES:
        raise UserError(f"{where}'s image {path!r} is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB.")
    return target


def _no_unknown(item: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise UserError(f"{where} has unknown field(s): {', '.join(map(str, unknown))}.")


def _float(value, what: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise UserError(f"{what} must be a number.")
    if not lo <= value <= hi:
        raise UserError(f"{what} is {value}; it must be between {lo} and {hi}.")
    return float(value)


def _int(value, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{what} must be a whole number.")
    if not lo <= value <= hi:
        raise UserError(f"{what} is {value}; it must be between {lo} and {hi}.")
    return value


def _color(value, what: str, allow_none: bool = True) -> str | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not _COLOR.match(value):
        raise UserError(f"{what} must be a colour like '#ff8800' (or '#ff880080' with alpha).")
    return value.lower()


def _box(value, where: str) -> Box:
    if not (isinstance(value, list) and len(value) == 4):
        raise UserError(f"{where} needs a 'box' of [x, y, width, height].")
    x, y = (_float(v, f"{where}'s box", -MAX_SIDE, 2 * MAX_SIDE) for v in value[:2])
    w, h = (_float(v, f"{where}'s box size", 0, 2 * MAX_SIDE) for v in value[2:])
    return Box(x, y, w, h)


def _points(value, where: str, minimum: int) -> list[tuple[float, float]]:
    if not isinstance(value, list) or not minimum <= len(value) <= MAX_POINTS:
        raise UserError(f"{where} needs 'points': a list of {minimum} to {MAX_POINTS} [x, y] pairs.")
    out = []
    for p in value:
        if not (isinstance(p, list) and len(p) == 2):
            raise UserError(f"{where} has a point that is not an [x, y] pair.")
        out.append(tuple(_float(v, f"{where}'s point", -MAX_SIDE, 2 * MAX_SIDE) for v in p))
    return out


# ---- files ----------------------------------------------------------------------------------

def load_layout(path: str | os.PathLike) -> Layout:
    """Read and validate a layout file; image paths resolve against its folder."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"The layout file {path} does not exist.")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise UserError(f"The layout file {path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:  # json recurses per nesting level; a stranger's file may nest 100000 deep
        raise UserError(f"The layout file {path} nests too deeply to be a layout.") from None
    except ValueError as exc:  # bad JSON, bad UTF-8, or an integer of thousands of digits
        raise UserError(f"The layout file {path} is not valid JSON ({exc}).") from None
    return layout_from_dict(data, base_dir=path.resolve().parent, source=f"The layout {path.name}")


def save_layout(layout: Layout, path: str | os.PathLike) -> Path:
    """Write LAYOUT as JSON (atomically), copying placed images outside the file's folder into it.

    Image paths are always saved relative to the layout's folder, so a layout folder can be
    zipped and shared as it is.
    """
    path = Path(path)
    folder = path.resolve().parent
    folder.mkdir(parents=True, exist_ok=True)
    data = layout.to_dict()
    for element, saved in zip(layout.elements, data["elements"]):
        if isinstance(element, ImageElement):
            saved["path"] = _place_image(element.path, layout.base_dir, folder)
    from asset_studio.core.outputs import text_writer, write_file

    write_file(path, text_writer(json.dumps(data, ensure_ascii=False, indent=2) + "\n"))
    for element, saved in zip(layout.elements, data["elements"]):
        if isinstance(element, ImageElement):
            element.path = saved["path"]
    layout.base_dir = folder
    return path


def _place_image(image_path: str, base_dir: Path | None, folder: Path) -> str:
    source = Path(image_path)
    if not source.is_absolute():
        source = (Path(base_dir) if base_dir else Path.cwd()) / source
    source = source.resolve()
    if folder in source.parents:
        return source.relative_to(folder).as_posix()
    if not source.is_file():
        raise UserError(f"The placed image {image_path!r} does not exist.")
    target = folder / source.name
    stem, n = source.stem, 1
    while target.exists() and target.read_bytes() != source.read_bytes():
        target = folder / f"{stem}-{n}{source.suffix}"
        n += 1
    if not target.exists():
        from asset_studio.core.outputs import bytes_writer, staged

        with staged(target, bytes_writer(source.read_bytes())) as copy:
            copy.link_new(target)  # never replaces: a file that appeared meanwhile is kept
    return target.name


def image_file(element: ImageElement, layout: Layout) -> Path:
    """The file behind an image element.

    Absolute paths exist only in memory (an image the editor just imported); files on disk
    never hold one, as load_layout rejects them and save_layout copies the image in.
    """
    if Path(element.path).is_absolute():
        if not Path(element.path).is_file():
            raise UserError(f"The placed image {element.path} does not exist.")
        return Path(element.path)
    return resolve_image_path(element.path, layout.base_dir)


def with_box(element, box: Box):
    """A copy of ELEMENT fitted to BOX; polygons and lines scale their points into it."""
    from dataclasses import replace

    if isinstance(element, ShapeElement) and element.box is None:
        old = element.bounds()
        sx = box.w / old.w if old.w else 1.0
        sy = box.h / old.h if old.h else 1.0
        points = [(box.x + (x - old.x) * sx, box.y + (y - old.y) * sy) for x, y in element.points]
        return replace(element, points=points)
    return replace(element, box=box)

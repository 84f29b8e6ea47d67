"""Files from strangers, tried hard: JSON and TOML bombs, decompression bombs, memory bombs in layouts,
file names Windows cannot hold, malformed jobs inside PNGs. Each must be one clear sentence
(UserError; exit 2 on the CLI), never a traceback, a RecursionError or gigabytes of memory."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import unicodedata
import weakref
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from asset_studio.cli import main
from asset_studio.core.job import GenerationJob
from asset_studio.errors import UserError

DEEP_JSON = "[" * 100_000 + "]" * 100_000
HUGE_INT = "9" * 5000


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def bomb_png(path: Path, width: int = 50_000, height: int = 50_000) -> Path:
    """A PNG a few dozen bytes long whose header claims WIDTH x HEIGHT pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
                     + chunk(b"IEND", b""))
    return path


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# --- JSON / TOML that crash parsers ---------------------------------------------------------------


@pytest.mark.parametrize("text", [DEEP_JSON, '{"width": ' + HUGE_INT + "}"], ids=["deep", "huge-int"])
def test_layout_files_that_break_json_are_clear_errors(tmp_path, capsys, text):
    layout = tmp_path / "evil.json"
    layout.write_text(text)
    code, _, err = cli(capsys, "layout", "render", layout, "--out", tmp_path / "out.png")
    assert code == 2 and err.startswith("asset-studio: error: The layout file") and err.count("\n") == 1
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("extra", ["x = " + "[" * 100_000 + "]" * 100_000, "x = " + HUGE_INT], ids=["deep", "huge-int"])
def test_style_toml_that_breaks_tomllib_is_a_clear_error(extra):
    from asset_studio.core.stylepack import parse_stylepack_text

    with pytest.raises(UserError, match=r"^style.toml is not valid TOML"):
        parse_stylepack_text('id = "a"\nname = "A"\nprompt = "{subject}"\n' + extra)


def _zip_with_manifest(path: Path, manifest_text: str) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", manifest_text)
        zf.writestr("style.toml", 'id = "a"\nname = "A"\nprompt = "{subject}"\n')
    return path


@pytest.mark.parametrize("manifest", [DEEP_JSON, '{"format": ' + HUGE_INT + "}"], ids=["deep", "huge-int"])
def test_stylepack_manifest_that_breaks_json_is_refused(tmp_path, capsys, manifest):
    pack = _zip_with_manifest(tmp_path / "evil.stylepack", manifest)
    code, _, err = cli(capsys, "style", "import", pack)
    assert code == 2 and "manifest.json is not valid JSON" in err and err.count("\n") == 1


def _safetensors(header: str, body: bytes = b"") -> bytes:
    raw = header.encode()
    return struct.pack("<Q", len(raw)) + raw + body


@pytest.mark.parametrize("header", [
    '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"a": {"dtype": "F32", "shape": [' + HUGE_INT + '], "data_offsets": [0, 0]}}',
    '{"a": {"dtype": "F32", "shape": [true, 0], "data_offsets": [0, 0]}}',  # a bool is not a dimension
    '{"a": {"dtype": "U8", "shape": [1], "data_offsets": [false, true]}}',
], ids=["deep", "huge-int", "bool-dim", "bool-offsets"])
def test_safetensors_headers_that_break_json_are_refused(header):
    from asset_studio.core.safetensors_header import read_header

    data = _safetensors(header, b"\0")
    with pytest.raises(UserError, match="is not a valid .safetensors file"):
        read_header(io.BytesIO(data), len(data), "evil.safetensors")


def test_lora_with_a_deeply_nested_header_is_refused_before_torch_sees_it(tmp_path):
    from asset_studio.core.safetensors_header import read_header_file

    path = tmp_path / "evil.safetensors"
    path.write_bytes(_safetensors('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"))
    with pytest.raises(UserError, match="evil.safetensors is not a valid .safetensors file"):
        read_header_file(path)


# --- jobs inside PNGs (`asset-studio rerun`, the gallery) -----------------------------------------


def _png_with_job(path: Path, job_text: str) -> Path:
    info = PngInfo()
    info.add_text("asset_studio_job", job_text)
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


@pytest.mark.parametrize("job, message", [
    (DEEP_JSON, "is not valid JSON"),
    ('{"model": "m", "prompt": ' + HUGE_INT + "}", "is not valid JSON"),
    ('{"model": "m", "prompt": 5}', "The job's prompt.text must be text"),
    ('{"model": "m", "prompt": "p", "cfg_scale": "high"}', "The job's sampling.cfg_scale must be a finite number"),
    ('{"model": "m", "prompt": "p", "denoise": NaN}', "The job's denoise must be a finite number"),
    ('{"model": "m", "prompt": "p", "width": 512.5}', "The job's sampling.width must be a whole number"),
    ('{"model": "m", "prompt": "p", "steps": true}', "The job's sampling.steps must be a whole number"),
    ('{"model": "m", "prompt": "p", "seeds": ["1"]}', "The job's sampling.seeds[0] must be a whole number"),
    ('{"model": "m", "prompt": "p", "loras": [{"path": 7}]}', "The job's model.loras[0].path must be text"),
    ('{"model": "m", "prompt": "p", "loras": {"path": "a"}}', "The job's model.loras must be a list"),
    ('{"model": "m", "prompt": "p", "controlnets": [{"model": "c"}]}', "The job's controls[0].image is missing"),
    ('{"model": "m", "prompt": "p", "fields": {"a": 1}}', "The job's source.fields.a must be text"),
    ('{"prompt": "p"}', "The job's model is missing"),
], ids=lambda v: v[:24] if isinstance(v, str) else None)
def test_rerun_of_a_png_with_a_malformed_job_is_one_sentence(tmp_path, capsys, job, message):
    png = _png_with_job(tmp_path / "shared.png", job)
    code, _, err = cli(capsys, "rerun", png, "--out", tmp_path / "out")
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_job_round_trip_still_holds_after_type_checks():
    from asset_studio.core.job import ControlUnit, LoraRef

    from asset_studio.core.job import Finishing, ModelRef, Prompt, Sampling, Source

    job = GenerationJob(model=ModelRef("m", vae=None, loras=[LoraRef("x.safetensors", 0.5)]), prompt=Prompt("p"),
                        sampling=Sampling(cfg_scale=7, seeds=[1, 2]), source=Source(fields={"a": "b"}),
                        controls=[ControlUnit("c", "i.png", scale=1)], finishing=Finishing(pixel_grid=32))
    assert GenerationJob.from_json(job.to_json()) == job


# --- decompression bombs: tiny files that claim billions of pixels -------------------------------


def test_decompression_bomb_as_init_or_control_image_is_a_clear_error(tmp_path):
    from asset_studio.engine.plan import load_image

    bomb = str(bomb_png(tmp_path / "bomb.png"))
    with pytest.raises(UserError, match="start image .* is not a readable image"):
        load_image(bomb, "start image", 64, 64)
    with pytest.raises(UserError, match="control image .* is not a readable image"):
        load_image(bomb, "control image", 64, 64)


def test_decompression_bomb_given_to_rerun_and_crisp_exits_2(tmp_path, capsys):
    bomb = bomb_png(tmp_path / "bomb.png")
    code, _, err = cli(capsys, "rerun", bomb)
    assert code == 2 and "bomb.png is not a readable PNG image" in err
    layout = tmp_path / "l.json"
    layout.write_text(json.dumps({"width": 64, "height": 64, "elements": [
        {"type": "text", "text": "A", "box": [0, 0, 64, 64], "size": 20}]}))
    code, _, err = cli(capsys, "layout", "crisp", bomb, layout, "--out", tmp_path / "c.png")
    assert code == 2 and "bomb.png" in err and err.count("\n") == 1
    assert not (tmp_path / "c.png").exists()


def test_decompression_bomb_in_sheet_and_remove_bg_inputs_exits_2(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGBA", (4, 4), (255, 0, 0, 255)).save(folder / "ok.png")
    bomb_png(folder / "bomb.png")
    code, _, err = cli(capsys, "sheet", folder, "--out", tmp_path / "s.png", "--format", "godot4")
    assert code == 2 and "bomb.png" in err and err.count("\n") == 1
    code, _, err = cli(capsys, "remove-bg", folder, "--out", tmp_path / "cut", "--method", "key")
    assert code == 2 and "bomb.png" in err and err.count("\n") == 1


# --- layouts that ask for gigabytes ---------------------------------------------------------------


@pytest.fixture
def allocations(monkeypatch):
    """Every image size the renderer asks Pillow for; refuses (as a MemoryError) anything over 1 GB."""
    from asset_studio.core import layout_render

    sizes = []
    real_new = Image.new

    def new(mode, size, *args, **kwargs):
        sizes.append(tuple(size))
        if size[0] * size[1] * 4 > 1 << 30:
            raise MemoryError(f"the test refused a {size[0]}x{size[1]} image")
        return real_new(mode, size, *args, **kwargs)

    monkeypatch.setattr(layout_render.Image, "new", new)
    return sizes


@pytest.mark.parametrize("element", [
    {"type": "text", "text": "W" * 2000, "box": [0, 0, 512, 512], "size": 2048},
    {"type": "text", "text": "A\n" * 999 + "A", "box": [0, 0, 512, 512], "size": 2048, "line_spacing": 5},
], ids=["long-line", "many-lines"])
def test_text_larger_than_any_canvas_is_refused_before_allocating(tmp_path, capsys, allocations, element):
    layout = tmp_path / "bomb.json"
    layout.write_text(json.dumps({"width": 512, "height": 512, "elements": [element]}))
    code, _, err = cli(capsys, "layout", "render", layout, "--control", "mask", "--out", tmp_path / "m.png")
    assert code == 2 and "too large to render" in err and err.count("\n") == 1
    assert max((w * h for w, h in allocations), default=0) <= 4096 * 4096


def test_a_small_layout_rendered_huge_refuses_boxes_far_beyond_the_canvas(allocations):
    from asset_studio.core.control_image import render_control
    from asset_studio.core.layout import layout_from_dict

    layout = layout_from_dict({"width": 8, "height": 8, "elements": [
        {"type": "shape", "kind": "rect", "box": [0, 0, 8192, 8192]}]})
    with pytest.raises(UserError, match="shape element of the layout is too large to render"):
        render_control(layout, "mask", size=(2048, 2048))
    assert max((w * h for w, h in allocations), default=0) <= 4096 * 4096
    # an element hanging well over the canvas edges still renders (twice the canvas and a margin fit)
    layout = layout_from_dict({"width": 512, "height": 512, "elements": [
        {"type": "shape", "kind": "rect", "box": [-400, -400, 1300, 1300]}]})
    assert render_control(layout, "mask", size=(1024, 1024)).getextrema() == ((255, 255),) * 3


def test_rendering_keeps_one_element_tile_alive_at_a_time(monkeypatch):
    """A 500-element layout of canvas-sized shapes must not hold 500 canvas-sized tiles at once."""
    from asset_studio.core import layout_render
    from asset_studio.core.control_image import render_control
    from asset_studio.core.layout import layout_from_dict

    alive, peak = set(), [0]
    real = layout_render.place_element

    def tracked(*args, **kwargs):
        placed = real(*args, **kwargs)
        key = id(placed.tile)
        alive.add(key)
        weakref.finalize(placed.tile, alive.discard, key)
        peak[0] = max(peak[0], len(alive))
        return placed

    monkeypatch.setattr(layout_render, "place_element", tracked)
    layout = layout_from_dict({"width": 64, "height": 64, "elements": [
        {"type": "shape", "kind": "rect", "box": [i, i, 32, 32]} for i in range(12)]})
    render_control(layout, "mask")
    layout_render.render_layout(layout)
    assert peak[0] <= 2


# --- style packs: names other systems cannot hold, preview bombs ----------------------------------


STYLE = 'id = "ink"\nname = "Ink"\nfamily = "sd15"\nprompt = "ink drawing of {subject}"\n'


def make_pack(path: Path, files: dict[str, bytes]) -> Path:
    manifest = {"format": "asset-studio.stylepack", "format_version": 1, "id": "ink", "version": "1",
                "files": {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in files.items()}}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        for name, data in files.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("name", ["CON.txt", "notes/aux.md", "COM1.json", "NUL.md", "notes./a.txt", "a /b.txt",
                                  "what?.txt", 'q"uote.md'])
def test_pack_entries_windows_cannot_hold_are_refused(tmp_path, name):
    from asset_studio.core.packfile import import_stylepack
    from asset_studio.core.stylepack import user_styles_dir

    pack = make_pack(tmp_path / "p.stylepack", {"style.toml": STYLE.encode(), name: b"x"})
    with pytest.raises(UserError, match="unsafe name|file type style packs may not hold"):
        import_stylepack(pack)
    assert not user_styles_dir().exists() or not any(user_styles_dir().iterdir())


def test_pack_names_equal_after_unicode_normalisation_are_duplicates(tmp_path):
    from asset_studio.core.packfile import import_stylepack

    nfc, nfd = unicodedata.normalize("NFC", "café.txt"), unicodedata.normalize("NFD", "café.txt")
    assert nfc != nfd
    pack = make_pack(tmp_path / "p.stylepack", {"style.toml": STYLE.encode(), nfc: b"a", nfd: b"b"})
    with pytest.raises(UserError, match="twice"):
        import_stylepack(pack)


def test_pack_preview_that_decodes_to_gigabytes_is_refused(tmp_path):
    from asset_studio.core.packfile import import_stylepack

    bomb = bomb_png(tmp_path / "bomb.png", 40_000, 40_000).read_bytes()
    style = STYLE + 'previews = ["preview.png"]\n'
    pack = make_pack(tmp_path / "p.stylepack", {"style.toml": style.encode(), "preview.png": bomb})
    with pytest.raises(UserError, match="preview.png"):
        import_stylepack(pack)
    big = io.BytesIO()
    Image.new("L", (5000, 8)).save(big, "PNG")  # a real image, just wider than any preview needs
    pack = make_pack(tmp_path / "q.stylepack", {"style.toml": style.encode(), "preview.png": big.getvalue()})
    with pytest.raises(UserError, match=r"preview.png is 5000x8 pixels, over the limit of 4096"):
        import_stylepack(pack)


def test_style_toml_naming_a_windows_device_is_refused():
    from asset_studio.core.stylepack import parse_stylepack_text

    with pytest.raises(UserError, match=r"style.toml: previews\[0\] must be a file name every system can hold"):
        parse_stylepack_text(STYLE + 'previews = ["LPT1.png"]\n')


# --- sheets: flags that would ask for giant pages or write invalid data ---------------------------


@pytest.mark.parametrize("args, message", [
    (["--max-size", "100000"], "over 16384 pixels"),
    (["--padding", "99999999"], "at most 16384 pixels"),
    (["--fps", "nan"], "fps"),
    (["--fps", "inf"], "fps"),
], ids=["max-size", "padding", "fps-nan", "fps-inf"])
def test_sheet_flags_out_of_range_write_nothing(tmp_path, capsys, args, message):
    src = tmp_path / "a.png"
    Image.new("RGBA", (4, 4), (255, 0, 0, 255)).save(src)
    out = tmp_path / "out" / "sheet.png"
    code, _, err = cli(capsys, "sheet", src, "--out", out, "--format", "aseprite", *args)
    assert code == 2 and message in err and err.count("\n") == 1
    assert not out.exists()


# --- outputs that cannot be written ---------------------------------------------------------------


def test_an_unwritable_output_is_one_line_not_a_traceback(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where a folder should be")
    layout = tmp_path / "l.json"
    layout.write_text(json.dumps({"width": 16, "height": 16}))
    code, _, err = cli(capsys, "layout", "render", layout, "--out", blocker / "x.png")
    assert code == 2 and err.count("\n") == 1 and "file.txt is a file where a folder is needed" in err
    code, _, err = cli(capsys, "style", "export", "pixel-art", "--out", blocker / "p.stylepack")
    assert code == 2 and err.count("\n") == 1 and "file.txt" in err


def test_a_folder_named_like_a_lora_is_a_clear_error(tmp_path):
    from asset_studio.core.safetensors_header import read_header_file

    (tmp_path / "style.safetensors").mkdir()
    with pytest.raises(UserError, match="style.safetensors is not a file"):
        read_header_file(tmp_path / "style.safetensors")


@pytest.mark.parametrize("font", ["Ar\u0000ial", "Noto\nSans"])
def test_font_names_with_control_characters_are_refused(tmp_path, capsys, font):
    layout = tmp_path / "l.json"
    layout.write_text(json.dumps({"width": 64, "height": 64, "elements": [
        {"type": "text", "text": "A", "box": [0, 0, 64, 64], "font": font}]}))
    code, _, err = cli(capsys, "layout", "render", layout, "--out", tmp_path / "o.png")
    assert code == 2 and "needs a font family name" in err and err.count("\n") == 1


def test_pack_names_too_long_for_a_file_system_are_refused_before_writing(tmp_path):
    from asset_studio.core.packfile import import_stylepack
    from asset_studio.core.stylepack import user_styles_dir

    name = "가" * 100 + ".txt"  # 104 characters, 304 bytes: over NAME_MAX on every common file system
    pack = make_pack(tmp_path / "p.stylepack", {"style.toml": STYLE.encode(), name: b"x"})
    with pytest.raises(UserError, match="unsafe name"):
        import_stylepack(pack)
    assert not user_styles_dir().exists() or not any(user_styles_dir().iterdir())


def test_layout_editor_refuses_a_decompression_bomb_as_placed_image(qtbot, tmp_path):
    from asset_studio.gui.layout_editor import LayoutEditor

    editor = LayoutEditor()
    qtbot.addWidget(editor)
    before = len(editor.layout().elements)
    with pytest.raises(UserError, match="bomb.png is not a readable image"):
        editor.add_image(bomb_png(tmp_path / "bomb.png"))
    assert len(editor.layout().elements) == before


def test_a_pickle_with_code_is_refused_without_torchs_advice(tmp_path):
    """torch's safe loader says to re-run with weights_only=False; the artist must never read that."""
    import pickle

    import torch

    from asset_studio.engine.loader import load_errors

    evil = tmp_path / "netG.pth"
    evil.write_bytes(pickle.dumps(print))  # not plain weights: a callable
    with pytest.raises(UserError) as err:
        with load_errors("lineart_anime annotator"):
            torch.load(evil, weights_only=True)
    assert "weights_only" not in str(err.value) and "refused" in str(err.value)

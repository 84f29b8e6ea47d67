""".stylepack export and import: round trip, and every refusal before anything is written."""

from __future__ import annotations

import hashlib
import io
import json
import stat
import zipfile
from pathlib import Path

import pytest

from asset_studio.core.packfile import (
    FORMAT, FORMAT_VERSION, Limits, export_stylepack, import_stylepack, inspect_stylepack,
)
from asset_studio.core.stylepack import LoraEntry, StylePack, find_style, save_stylepack, user_styles_dir
from asset_studio.errors import UserError

STYLE = """id = "ink"
name = "Ink"
family = "sd15"
prompt = "ink drawing of {subject}"
"""


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def safetensors_bytes(values=(0.0, 1.0, 2.0, 3.0)) -> bytes:
    import numpy as np
    from safetensors.numpy import save

    return save({"lora_unet_x.lora_down.weight": np.array(values, dtype=np.float32).reshape(2, 2)})


def png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 40, 40)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def pack_folder(tmp_path) -> Path:
    folder = tmp_path / "src" / "ink"
    (folder / "loras").mkdir(parents=True)
    (folder / "loras" / "ink.safetensors").write_bytes(safetensors_bytes())
    (folder / "preview.png").write_bytes(png_bytes())
    (folder / "README.md").write_text("Ink style notes, ünïcode.\n")
    save_stylepack(StylePack(id="ink", name="Ink", prompt="ink drawing of {subject}", previews=["preview.png"],
                             loras=[LoraEntry(file="loras/ink.safetensors", weight=0.8, trigger_words=["inky"])]),
                   folder)
    return folder


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def make_zip(path: Path, files: dict[str, bytes], *, manifest: dict | None = None, extra=(), pack_id="ink") -> Path:
    """A .stylepack with a correct manifest for ``files`` (unless one is given), plus raw ``extra`` entries."""
    if manifest is None:
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "id": pack_id, "version": "1",
                    "files": {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in files.items()}}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        for name, data in files.items():
            zf.writestr(name, data)
        for info, data in extra:
            zf.writestr(info, data)
    return path


def assert_nothing_written():
    styles = user_styles_dir()
    assert not styles.exists() or not any(styles.iterdir())


def test_export_import_round_trip_is_byte_identical(tmp_path, pack_folder):
    out = export_stylepack(find_style(str(pack_folder)), tmp_path / "ink.stylepack")
    again = export_stylepack(str(pack_folder), tmp_path / "again")
    assert again.name == "again.stylepack" and again.read_bytes() == out.read_bytes()  # deterministic
    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["format"] == FORMAT and manifest["id"] == "ink"
    assert set(manifest["files"]) == {"style.toml", "loras/ink.safetensors", "preview.png", "README.md"}

    result = import_stylepack(out)
    assert result.folder == user_styles_dir() / "ink" and result.renamed_from is None
    assert tree(result.folder) == tree(pack_folder)
    assert result.pack.loras[0].trigger_words == ["inky"]
    assert find_style("ink").folder == result.folder


def test_existing_id_is_kept_side_by_side_unless_replace(tmp_path, pack_folder):
    out = export_stylepack(str(pack_folder), tmp_path / "ink.stylepack")
    first = import_stylepack(out)
    second = import_stylepack(out)
    assert second.pack.id == "ink-2" and second.renamed_from == "ink" and second.pack.name == "Ink (2)"
    assert tree(first.folder) == tree(pack_folder)  # the installed pack is untouched
    assert tree(second.folder)["loras/ink.safetensors"] == tree(pack_folder)["loras/ink.safetensors"]
    assert import_stylepack(out).pack.id == "ink-3"

    (pack_folder / "README.md").write_text("version two\n")
    replaced = import_stylepack(export_stylepack(str(pack_folder), tmp_path / "v2.stylepack"), replace=True)
    assert replaced.replaced and replaced.folder == first.folder
    assert (first.folder / "README.md").read_text() == "version two\n"
    assert sorted(p.name for p in user_styles_dir().iterdir()) == ["ink", "ink-2", "ink-3"]  # no temp folders left


def test_a_bundled_id_is_kept_side_by_side(tmp_path):
    out = export_stylepack("pixel-art", tmp_path / "px.stylepack")
    assert import_stylepack(out).pack.id == "pixel-art-2"
    assert find_style("pixel-art").name == "Pixel Art"


def good_files() -> dict[str, bytes]:
    return {"style.toml": STYLE.encode()}


def link_entry(name: str):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    "files, extra, message",
    [
        ({**good_files(), "../evil.txt": b"x"}, (), "a path that leaves the pack (../evil.txt)"),
        ({**good_files(), "notes/../../evil.txt": b"x"}, (), "a path that leaves the pack"),
        ({**good_files(), "/etc/evil.txt": b"x"}, (), "an absolute path (/etc/evil.txt)"),
        ({**good_files(), "C:/evil.txt": b"x"}, (), "an absolute path (C:/evil.txt)"),
        ({**good_files(), "a\\b.txt": b"x"}, (), "an unsafe name"),
        (good_files(), [(link_entry("loras/link.safetensors"), b"/etc/passwd")], "a link (loras/link.safetensors)"),
        ({**good_files(), "loras/style.ckpt": b"x"}, (), "loras/style.ckpt, a pickle file (.ckpt)"),
        ({**good_files(), "weights.pt": b"x"}, (), "weights.pt, a pickle file (.pt)"),
        ({**good_files(), "pytorch_lora_weights.bin": b"x"}, (), "a pickle file (.bin)"),
        ({**good_files(), "run.py": b"x"}, (), "run.py, a file type style packs may not hold"),
        ({**good_files(), "bad.safetensors": b"\xff" * 64}, (), "bad.safetensors is not a valid .safetensors file"),
        ({**good_files(), "fake.png": b"not a png"}, (), "fake.png is not a PNG image"),
        ({**good_files(), "dup.txt": b"a"}, [(zipfile.ZipInfo("DUP.txt"), b"b")], "contains DUP.txt twice"),
        ({"style.toml": STYLE.replace('prompt = "ink drawing of {subject}"',
                                      'prompt = "ink drawing of {subject}"\n[defaults]\nsteps = 500').encode()},
         (), "style.toml: defaults.steps must be an integer from 1 to 150."),
        ({"style.toml": STYLE.replace('family = "sd15"', 'family = "flux"').encode()}, (), "style.toml: family must be one of"),
        ({"style.toml": (STYLE + '[[loras]]\nfile = "loras/missing.safetensors"\n').encode()}, (),
         "style.toml: loras[0].file names loras/missing.safetensors, which is not in the pack."),
        ({"readme.md": b"no style"}, (), "The pack has no style.toml."),
    ],
)
def test_import_refusals_write_nothing(tmp_path, files, extra, message):
    bad = make_zip(tmp_path / "bad.stylepack", files, extra=extra)
    with pytest.raises(UserError) as err:
        import_stylepack(bad)
    assert message in str(err.value)
    assert_nothing_written()


def test_hash_and_manifest_mismatches_are_refused(tmp_path):
    files = good_files()
    manifest = {"format": FORMAT, "format_version": 1, "id": "ink", "version": "1",
                "files": {"style.toml": {"sha256": "0" * 64, "size": len(files["style.toml"])}}}
    with pytest.raises(UserError, match="style.toml does not match the sha256 in its manifest"):
        import_stylepack(make_zip(tmp_path / "a.stylepack", files, manifest=manifest))
    manifest["files"]["style.toml"] = {"sha256": hashlib.sha256(files["style.toml"]).hexdigest(),
                                       "size": len(files["style.toml"])}
    with pytest.raises(UserError, match="contains extra.txt, which its manifest does not list"):
        import_stylepack(make_zip(tmp_path / "b.stylepack", files, manifest=manifest,
                                  extra=[(zipfile.ZipInfo("extra.txt"), b"x")]))
    manifest["files"]["gone.png"] = {"sha256": "1" * 64, "size": 3}
    with pytest.raises(UserError, match="manifest lists gone.png, which the file does not contain"):
        import_stylepack(make_zip(tmp_path / "c.stylepack", files, manifest=manifest))
    with pytest.raises(UserError, match="differs from its style.toml id"):
        import_stylepack(make_zip(tmp_path / "d.stylepack", files, pack_id="other"))
    with zipfile.ZipFile(tmp_path / "e.stylepack", "w") as zf:
        zf.writestr("style.toml", STYLE)
    with pytest.raises(UserError, match="it has no manifest.json"):
        import_stylepack(tmp_path / "e.stylepack")
    (tmp_path / "f.stylepack").write_bytes(b"PK not really a zip")
    with pytest.raises(UserError, match="not a .stylepack file"):
        import_stylepack(tmp_path / "f.stylepack")
    assert_nothing_written()


def test_size_limits_and_zip_bombs(tmp_path):
    weights = safetensors_bytes(values=tuple(float(i) for i in range(4)))
    files = {**good_files(), "loras/a.safetensors": weights}
    path = make_zip(tmp_path / "ok.stylepack", files)
    inspect_stylepack(path)  # fine under the default limits
    with pytest.raises(UserError, match=r"loras/a.safetensors of \d+ bytes, over the limit of 50 bytes"):
        import_stylepack(path, limits=Limits(max_file_bytes=50))
    with pytest.raises(UserError, match="unpacks to .* bytes, over the limit of 100"):
        import_stylepack(path, limits=Limits(max_total_bytes=100))
    with pytest.raises(UserError, match="more than the limit of 1"):
        import_stylepack(path, limits=Limits(max_files=1))
    with pytest.raises(UserError, match=r"(manifest.json|style.toml) of .* bytes, over the limit of 10 bytes"):
        import_stylepack(path, limits=Limits(max_text_bytes=10))

    # 8 MiB of zeros compress about a thousandfold: a zip bomb, whatever its name
    bomb = make_zip(tmp_path / "bomb.stylepack", {**good_files(), "loras/bomb.safetensors": bytes(8 * 1024**2)})
    with pytest.raises(UserError, match="compressed more than 100 to 1: refused as a possible zip bomb"):
        import_stylepack(bomb)
    assert_nothing_written()


def test_export_refuses_pickles_and_links_in_the_pack_folder(tmp_path, pack_folder):
    (pack_folder / "old.ckpt").write_bytes(b"x")
    with pytest.raises(UserError, match="a pickle file"):
        export_stylepack(str(pack_folder), tmp_path / "x.stylepack")
    (pack_folder / "old.ckpt").unlink()
    (pack_folder / "link.txt").symlink_to(tmp_path)
    with pytest.raises(UserError, match="holds a link"):
        export_stylepack(str(pack_folder), tmp_path / "x.stylepack")
    assert not (tmp_path / "x.stylepack").exists()


def test_preview_images_have_their_own_limit(tmp_path, pack_folder):
    out = export_stylepack(str(pack_folder), tmp_path / "ink.stylepack")
    with pytest.raises(UserError, match=r"preview.png of \d+ bytes, over the limit of 10 bytes"):
        import_stylepack(out, limits=Limits(max_image_bytes=10))
    assert_nothing_written()

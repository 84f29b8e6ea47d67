"""Training datasets (core/dataset.py): captions, trigger word, buckets, image preparation, checks. No torch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from asset_studio.core import dataset as ds
from asset_studio.errors import UserError


def sprite(path: Path, size=(48, 64), colour=(200, 40, 40, 255), alpha: bool = True) -> Path:
    """A filled shape on transparency (or on grey when ALPHA is off)."""
    image = Image.new("RGBA" if alpha else "RGB", size, (0, 0, 0, 0) if alpha else (90, 90, 90))
    w, h = size
    image.paste(colour if alpha else colour[:3], (w // 4, h // 4, 3 * w // 4, 3 * h // 4))
    image.save(path)
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    data = tmp_path / "my-sprites"
    data.mkdir()
    sprite(data / "red_potion-02.png")
    sprite(data / "knight (3).png", (64, 64))
    sprite(data / "chest.webp", (64, 32), alpha=False)
    (data / "chest.txt").write_text("wooden chest,  closed\n lid\n", encoding="utf-8")
    (data / "notes.psd").write_bytes(b"8BPS")
    (data / ".hidden.png").write_bytes(b"")
    return data


def test_captions_come_from_txt_or_the_file_name_with_the_trigger_first(folder):
    data = ds.scan_dataset(folder, "mystyle")
    captions = {item.path.name: (item.caption, item.caption_source) for item in data.items}
    assert captions == {
        "chest.webp": ("mystyle, wooden chest, closed lid", "txt"),
        "knight (3).png": ("mystyle, knight", "name"),
        "red_potion-02.png": ("mystyle, red potion", "name"),
    }
    assert [p.name for p in data.skipped] == ["notes.psd"]  # hidden files are not even listed
    assert ds.with_trigger("mystyle", "MyStyle, knight") == "mystyle, knight"  # never twice
    freq = json.loads(data.tag_frequency_json())
    assert freq == {"my-sprites": {"mystyle": 3, "closed lid": 1, "knight": 1, "red potion": 1, "wooden chest": 1}}


def test_buckets_are_multiples_of_64_around_the_resolution_area():
    buckets = ds.make_buckets(512)
    assert (512, 512) in buckets
    for w, h in buckets:
        assert w % 64 == 0 and h % 64 == 0
        assert 0.8 * 512 * 512 <= w * h <= 512 * 512
        assert max(w, h) / min(w, h) <= ds.MAX_ASPECT
    assert ds.bucket_for(100, 100, 512) == (512, 512)
    tall = ds.bucket_for(32, 64, 512)
    assert tall[1] > tall[0] and abs(tall[0] / tall[1] - 0.5) < 0.1
    wide = ds.bucket_for(900, 300, 1024)
    assert wide[0] > wide[1] and all(s % 64 == 0 for s in wide)


def test_prepared_images_fill_the_bucket_without_squashing(tmp_path):
    path = sprite(tmp_path / "tall.png", (40, 80), colour=(10, 200, 10, 255))
    prepared = ds.prepare_image(path, (256, 448), background=(0, 0, 255))
    assert prepared.image.mode == "RGB" and prepared.image.size == (256, 448)
    assert prepared.had_alpha and prepared.original_size == (40, 80)
    # Scaled 6.4x to cover 256 wide (512 tall), then 32 px cropped off top and bottom: nothing squashed.
    assert prepared.crop_top_left == (32, 0)
    assert prepared.image.getpixel((2, 224)) == (0, 0, 255)  # transparency became the background colour
    assert prepared.image.getpixel((128, 224)) == (10, 200, 10)
    # Scaling up by 2x or more keeps hard pixel edges: only the two colours, no blend.
    assert len(prepared.image.getcolors()) == 2


def test_background_colours(tmp_path):
    assert ds.parse_background(None) == (255, 255, 255)
    assert ds.parse_background("#102030") == (16, 32, 48)
    assert ds.parse_background("black") == (0, 0, 0)
    with pytest.raises(UserError, match="not a colour"):
        ds.parse_background("blurple-ish")


def test_check_reports_mixed_sizes_transparency_and_skipped_files(folder):
    data = ds.scan_dataset(folder, "mystyle")
    report = ds.check_dataset(data, 512)
    assert report.ok, report.problems
    text = " ".join(report.notes)
    assert "3 different sizes" in text and "never squashed" in text
    assert "Only 3 images" in text
    assert "2 image(s) have transparency" in text
    assert "notes.psd" in text
    assert "2 of 3 caption(s) come from file names" in text
    assert report.sizes[folder / "chest.webp"] == (64, 32)


def test_bad_datasets_give_one_clear_sentence_each(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="does not exist"):
        ds.scan_dataset(tmp_path / "nowhere", "x")
    empty = tmp_path / "empty"
    empty.mkdir()
    report = ds.check_dataset(ds.scan_dataset(empty, "x"), 512)
    assert report.problems == [f"The folder {empty} holds no images; a style needs at least 3 PNG, JPEG or WebP "
                               "images (10 to 50 work best)."]
    with pytest.raises(UserError, match="at least 3"):
        report.raise_problems()

    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(3):
        sprite(bad / f"ok{i}.png")
    (bad / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    sprite(bad / "empty.png", colour=(0, 0, 0, 0))
    sprite(bad / "huge.jpg", (64, 64), alpha=False)
    monkeypatch.setattr(ds, "MAX_FILE_BYTES", 1000)
    (bad / "huge.jpg").write_bytes((bad / "huge.jpg").read_bytes() + b"\0" * 2000)
    report = ds.check_dataset(ds.scan_dataset(bad, "x"), 512)
    assert len(report.problems) == 3
    assert "1 file(s) cannot be read as images (broken.png); fix or remove them." in report.problems
    assert any("too large to train on (huge.jpg)" in p for p in report.problems)
    assert any("fully transparent (empty.png)" in p for p in report.problems)


def test_bad_captions_and_trigger_words(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    sprite(data / "a.png")
    (data / "a.txt").write_bytes(b"caf\xe9")
    with pytest.raises(UserError, match="a.txt is not UTF-8"):
        ds.scan_dataset(data, "x")
    with pytest.raises(UserError, match="trigger word is empty"):
        ds.scan_dataset(data, "  ")
    with pytest.raises(UserError, match="without commas"):
        ds.check_trigger("a, b")
    with pytest.raises(UserError, match="multiple of 64"):
        ds.check_resolution(500)
    with pytest.raises(UserError, match="multiple of 16 from 64 to 2048"):
        ds.check_resolution(32, 16)
    ds.check_resolution(64, 16)

"""Background removal: the border key on synthetic sprites, rembg's u2netp for real, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from asset_studio.cli import main
from asset_studio.engine import background as bgmod
from asset_studio.engine.background import BackgroundRemover, RemovalOptions, fit_background, get_session, remove_background
from asset_studio.errors import UserError
from conftest import REPO, SPRITES_DEV, needs_rembg_model, needs_sprites


def _load_bench():
    """bench/bg_quality.py: its held-out shape generator, backdrops and compositing are the tests' too."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bg_quality_bench", REPO / "bench" / "bg_quality.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


BENCH = _load_bench()
BACKDROPS = ("white", "gradient", "noise")


def synthetic_sprite(size: int = 128, seed: int = 0) -> np.ndarray:
    """An anti-aliased RGBA sprite: a body, a hole, a thin antenna (drawn 4x, then reduced)."""
    rng = np.random.default_rng(seed)
    big = Image.new("RGBA", (size * 4, size * 4), (0, 0, 0, 0))
    d = ImageDraw.Draw(big)
    s = size * 4
    body = tuple(int(c) for c in rng.integers(20, 180, 3)) + (255,)
    d.ellipse((s * 0.2, s * 0.3, s * 0.8, s * 0.85), fill=body)
    d.ellipse((s * 0.42, s * 0.5, s * 0.55, s * 0.63), fill=(0, 0, 0, 0))  # a hole shows the background
    d.rectangle((s * 0.3, s * 0.35, s * 0.7, s * 0.45), fill=(230, 200, 40, 255))
    d.line((s * 0.5, s * 0.3, s * 0.62, s * 0.08), fill=(40, 40, 40, 255), width=max(4, s // 64))
    # premultiplied reduction keeps the true soft alpha of the edges
    px = np.asarray(big, np.float32) / 255
    pre = np.dstack([px[..., :3] * px[..., 3:], px[..., 3]])
    small = pre.reshape(size, 4, size, 4, 4).mean(axis=(1, 3))
    a = small[..., 3:]
    rgb = np.where(a > 0, small[..., :3] / np.maximum(a, 1e-6), 0)
    return np.dstack([rgb, a]).astype(np.float32)


def background(kind: str, size: int) -> np.ndarray:
    if kind == "white":
        return np.ones((size, size, 3), np.float32)
    if kind == "gradient":
        t = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
        return np.broadcast_to(np.array([0.97, 0.96, 0.9]) * (1 - t) + np.array([0.82, 0.87, 0.96]) * t, (size, size, 3)).astype(np.float32)
    if kind == "noise":
        return np.clip(0.92 + np.random.default_rng(1).normal(0, 6 / 255, (size, size, 3)), 0, 1).astype(np.float32)
    if kind == "busy":  # a textured scene: no plain border to key
        rng = np.random.default_rng(2)
        return np.asarray(
            Image.fromarray(rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)).resize((size, size), Image.Resampling.BILINEAR),
            np.float32,
        ) / 255
    raise ValueError(kind)


def composite(sprite: np.ndarray, bg: np.ndarray) -> Image.Image:
    a = sprite[..., 3:]
    return Image.fromarray((np.clip(sprite[..., :3] * a + bg * (1 - a), 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")


def iou(alpha: np.ndarray, true: np.ndarray) -> float:
    p, t = alpha >= 0.5, true >= 0.5
    return float((p & t).sum() / (p | t).sum())


def alpha_of(image: Image.Image) -> np.ndarray:
    return np.asarray(image)[..., 3].astype(np.float32) / 255


@pytest.mark.parametrize("kind", ["white", "gradient", "noise"])
def test_key_cuts_synthetic_sprites_cleanly(kind, monkeypatch):
    def no_model(*a, **k):  # auto must not need a model for a plain backdrop
        raise AssertionError("the model ran on a plain background")

    monkeypatch.setattr(bgmod, "model_alpha", no_model)
    for seed in range(2):
        sprite = synthetic_sprite(128, seed)
        image = composite(sprite, background(kind, 128))
        fit = fit_background(np.asarray(image))
        assert fit.plain
        out = remove_background(image, RemovalOptions(method="auto"))
        assert out.mode == "RGBA" and out.size == image.size
        filled = ndimage.binary_fill_holes(sprite[..., 3] >= 0.5)  # the hole, closed
        true = sprite[..., 3] if kind != "white" else np.maximum(sprite[..., 3], filled)
        assert iou(alpha_of(out), true) >= 0.97
        # the hole is open where it shows the backdrop's gradient or noise; on a perfectly flat
        # backdrop an enclosed pocket of its exact colour is kept (white eyes are commoner)
        got = alpha_of(out)
        assert sprite[72, 62, 3] == 0
        assert got[72, 62] < 0.1 if kind != "white" else got[72, 62] > 0.9
        for row in range(14, 30):  # every row of the 1-pixel antenna is still there
            assert got[row][sprite[row, :, 3] > 0.6].min() >= 0.5


def test_key_ignores_a_sprite_touching_the_border():
    sprite = synthetic_sprite(128, 3)
    sprite = np.concatenate([np.zeros_like(sprite[:40]), sprite[:-40]])  # the body runs off the bottom edge
    image = composite(sprite, background("gradient", 128))
    assert fit_background(np.asarray(image)).plain
    out = remove_background(image, RemovalOptions(method="key"))
    assert iou(alpha_of(out), sprite[..., 3]) >= 0.95


def test_defringe_removes_the_background_from_edge_colours():
    sprite = np.zeros((64, 64, 4), np.float32)
    sprite[..., :3] = (0.8, 0.1, 0.1)
    yy, xx = np.mgrid[0:64, 0:64]
    sprite[..., 3] = np.clip(20.5 - np.hypot(xx - 32, yy - 32), 0, 1)  # a disc with a soft rim
    image = composite(sprite, background("white", 64))
    rim = (sprite[..., 3] > 0.3) & (sprite[..., 3] < 0.8)
    plain = np.asarray(remove_background(image, RemovalOptions(method="key", defringe=False)))
    clean = np.asarray(remove_background(image, RemovalOptions(method="key", defringe=True)))
    err_plain = np.abs(plain[rim][:, :3].astype(int) - (204, 26, 26)).mean()
    err_clean = np.abs(clean[rim][:, :3].astype(int) - (204, 26, 26)).mean()
    assert err_clean < 15 < err_plain


def test_hard_alpha_and_same_size():
    sprite = synthetic_sprite(96, 1)
    image = composite(sprite, background("white", 96))
    out = remove_background(image, RemovalOptions(method="key", hard_alpha=True))
    assert set(np.unique(np.asarray(out)[..., 3])) <= {0, 255} and out.size == (96, 96)
    # hard, but still the sprite: neither everything kept nor everything cut (on flat white its
    # enclosed white hole is kept)
    filled = np.maximum(sprite[..., 3], ndimage.binary_fill_holes(sprite[..., 3] >= 0.5))
    assert iou(alpha_of(out), filled) >= 0.95


def test_auto_uses_the_model_on_a_busy_background(monkeypatch):
    sprite = synthetic_sprite(64, 0)
    image = composite(sprite, background("busy", 64))
    assert not fit_background(np.asarray(image)).plain
    calls = []

    def fake_model(rgb, name, allow_download):
        calls.append(name)
        return sprite[..., 3].copy()

    monkeypatch.setattr(bgmod, "model_alpha", fake_model)
    out = remove_background(image, RemovalOptions(method="auto", model="isnet-anime"))
    assert calls == ["isnet-anime"]
    assert np.abs(alpha_of(out) - sprite[..., 3]).max() <= 1 / 255 + 1e-6


def test_missing_model_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    monkeypatch.setattr(bgmod, "_SESSIONS", {})
    with pytest.raises(UserError, match=r"u2net\.onnx is missing"):
        get_session("u2net")
    with pytest.raises(UserError, match="Unknown background model"):
        RemovalOptions(model="nope")


@needs_rembg_model
def test_sessions_are_created_once_and_reused():
    a = get_session("u2netp")
    assert get_session("u2netp") is a
    assert BackgroundRemover(RemovalOptions(method="model")).options.model == "u2netp"
    assert get_session("u2netp") is a


@needs_rembg_model
@needs_sprites
def test_u2netp_and_auto_on_real_sprites():
    """rembg's real u2netp finds real sprites; auto does at least as well on a plain backdrop."""
    paths = [SPRITES_DEV / "items" / "keyRed.png", SPRITES_DEV / "tiles" / "mushroomRed.png"]
    for path in paths:
        src = Image.open(path).convert("RGBA").resize((256, 256), Image.Resampling.BICUBIC)
        sprite = np.asarray(src, np.float32) / 255
        image = composite(sprite, background("gradient", 256))
        model = remove_background(image, RemovalOptions(method="model", model="u2netp"))
        auto = remove_background(image, RemovalOptions(method="auto"))
        m, a = iou(alpha_of(model), sprite[..., 3]), iou(alpha_of(auto), sprite[..., 3])
        assert m >= 0.75, (path.name, m)
        assert a >= max(m, 0.95), (path.name, a, m)


# --------------------------------------------------------------------------- CLI


def test_remove_bg_cli_keeps_names_and_sizes(tmp_path, capsys):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    composite(synthetic_sprite(80, 0), background("white", 80)).save(src / "a.png")
    composite(synthetic_sprite(64, 1), background("gradient", 64)).save(src / "sub" / "b.jpg", quality=95)
    out = tmp_path / "out"
    assert main(["remove-bg", str(src), "--out", str(out), "--method", "key"]) == 0
    a, b = Image.open(out / "a.png"), Image.open(out / "sub" / "b.png")
    assert a.mode == "RGBA" and a.size == (80, 80) and b.mode == "RGBA" and b.size == (64, 64)
    assert alpha_of(a)[0, 0] == 0 and alpha_of(a)[55, 40] == 1
    assert "wrote 2 image(s)" in capsys.readouterr().out


def test_remove_bg_cli_pixel_art(tmp_path):
    rng = np.random.default_rng(0)
    small = np.full((16, 16, 3), 255, np.uint8)
    small[4:12, 4:12] = rng.integers(0, 120, (8, 8, 3))
    Image.fromarray(small).resize((128, 128), Image.Resampling.NEAREST).save(tmp_path / "p.png")
    out = tmp_path / "o"
    assert main(["remove-bg", str(tmp_path / "p.png"), "--out", str(out), "--pixel-grid", "16", "--palette", "4"]) == 0
    px = np.asarray(Image.open(out / "p.png"))
    assert px.shape == (128, 128, 4)
    assert set(np.unique(px[..., 3])) == {0, 255}
    assert len(np.unique(px[px[..., 3] > 0][:, :3], axis=0)) <= 4
    assert (px.reshape(16, 8, 16, 8, 4) == px.reshape(16, 8, 16, 8, 4)[:, :1, :, :1]).all()
    assert px[0, 0, 3] == 0 and px[64, 64, 3] == 255


def test_remove_bg_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.png").write_bytes(b"nope")
    assert main(["remove-bg", str(tmp_path / "in"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.png" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert main(["remove-bg", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "holds no images" in capsys.readouterr().err
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    monkeypatch.setattr(bgmod, "_SESSIONS", {})
    composite(synthetic_sprite(32), background("white", 32)).save(tmp_path / "ok.png")
    assert main(["remove-bg", str(tmp_path / "ok.png"), "--out", str(tmp_path / "o"), "--method", "model", "--model", "isnet-anime"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "isnet-anime.onnx" in err


def test_existing_transparency_is_kept():
    sprite = synthetic_sprite(64, 2)
    image = composite(sprite, background("white", 64)).convert("RGBA")
    px = np.array(image)
    px[:, :8, 3] = 0  # someone already cut the left strip away
    out = alpha_of(remove_background(Image.fromarray(px, "RGBA"), RemovalOptions(method="key")))
    assert (out[:, :8] == 0).all()
    filled = np.maximum(sprite[..., 3], ndimage.binary_fill_holes(sprite[..., 3] >= 0.5))  # flat white: the hole stays
    assert iou(out, filled * (np.arange(64) >= 8)[None, :]) >= 0.95


def test_alpha_matting_option_refines_the_mask():
    sprite = synthetic_sprite(96, 0)
    image = composite(sprite, background("white", 96))
    out = remove_background(image, RemovalOptions(method="key", alpha_matting=True))
    assert out.mode == "RGBA" and out.size == (96, 96)
    assert iou(alpha_of(out), sprite[..., 3]) >= 0.85


# --------------------------------------------------------------------------- held-out shapes and real sprites


def cut(kind: str, backdrop: str, seed: int = 7, canvas: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(premultiplied RGB, true alpha, auto's alpha) of a generated sprite over a backdrop."""
    pre, true = BENCH.generated_sprite(kind, canvas, seed)
    image = Image.fromarray(BENCH.composite(pre, true, BENCH.backgrounds(canvas)[backdrop]))
    return pre, true, alpha_of(remove_background(image, RemovalOptions(method="auto")))


@pytest.mark.parametrize("backdrop", BACKDROPS)
@pytest.mark.parametrize("kind", ["character", "pale", "ship"])
def test_light_paint_enclosed_by_an_outline_stays_opaque(kind, backdrop, monkeypatch):
    monkeypatch.setattr(bgmod, "model_alpha", lambda *a, **k: pytest.fail("the model ran on a plain backdrop"))
    pre, true, got = cut(kind, backdrop)
    assert iou(got, true) >= 0.97
    # pure-white paint (eyes, highlights, shirt, cockpit) inside the sprite, away from its rims
    white = ndimage.binary_erosion((true >= 0.999) & (pre.min(axis=2) >= 0.99), iterations=2)
    assert white.sum() > 100
    assert (got[white] >= 0.99).mean() >= 0.99
    # pale skin too
    pale = ndimage.binary_erosion((true >= 0.999) & (pre.min(axis=2) >= 0.78) & ~white, iterations=2)
    assert (got[pale] >= 0.99).mean() >= 0.98


@pytest.mark.parametrize("backdrop", BACKDROPS)
def test_white_sprite_on_white_with_a_faint_outline(backdrop):
    pre, true, got = cut("white", backdrop)
    assert iou(got, true) >= 0.95
    inside = ndimage.binary_erosion(true >= 0.999, iterations=4)
    assert (got[inside] >= 0.99).mean() >= 0.98  # on noise a few pixels just inside the outline waver
    assert got[:8].max() == 0 and got[:, :8].max() == 0  # the backdrop itself is gone


@pytest.mark.parametrize("backdrop", BACKDROPS)
def test_thin_bright_lasers_survive_without_halo(backdrop):
    pre, true, got = cut("lasers", backdrop)
    core = true >= 0.9
    assert core.sum() > 100
    assert (got[core] >= 0.5).mean() >= 0.98  # no stroke is lost
    far = ndimage.distance_transform_edt(true < 0.02) > 2
    assert (got[far] >= 0.5).sum() <= 10  # and no fattening or specks away from the strokes
    assert iou(got, true) >= (0.8 if backdrop == "noise" else 0.93)


@pytest.mark.parametrize("backdrop", BACKDROPS)
def test_faint_marks_keep_their_partial_alpha(backdrop):
    pre, true, got = cut("faint", backdrop)
    assert 0.2 <= true.max() < 0.46  # translucent everywhere: nothing reaches the 0.5 threshold
    assert got.max() < 0.5
    marks = ndimage.binary_erosion(true >= true.max() - 0.01, iterations=2)
    assert np.abs(got[marks] - true[marks]).mean() <= 0.04  # read as translucent black, not opaque grey
    assert got[true == 0].max() <= (0.1 if backdrop == "noise" else 0.02)  # only the backdrop's own noise


@pytest.mark.parametrize("backdrop", ["gradient", "noise"])
def test_a_hole_that_shows_the_backdrop_opens(backdrop):
    pre, true, got = cut("ring", backdrop)
    hole = ndimage.binary_erosion(ndimage.binary_fill_holes(true >= 0.5) & (true < 0.01), iterations=2)
    assert hole.sum() > 500
    assert got[hole].max() <= 0.1
    assert iou(got, true) >= 0.98


def test_a_pocket_of_flat_backdrop_colour_is_kept():
    """On a perfectly flat white, a hole and a white eye are the same pixels: the pocket stays."""
    pre, true, got = cut("ring", "white")
    hole = ndimage.binary_erosion(ndimage.binary_fill_holes(true >= 0.5) & (true < 0.01), iterations=2)
    assert got[hole].min() >= 0.99
    assert iou(got, np.maximum(true, ndimage.binary_fill_holes(true >= 0.5))) >= 0.98


def real_sprite(name: str, backdrop: str, canvas: int = 256) -> tuple[np.ndarray, np.ndarray]:
    pre, true = BENCH.scaled_sprite(SPRITES_DEV / name, canvas)
    image = Image.fromarray(BENCH.composite(pre, true, BENCH.backgrounds(canvas)[backdrop]))
    return true, alpha_of(remove_background(image, RemovalOptions(method="auto")))


@needs_sprites
@pytest.mark.parametrize("backdrop", BACKDROPS)
def test_real_sprites_with_light_interiors(backdrop):
    """Kenney's mushroom (pale spots and stem) and gem (near-white facets) keep their light parts."""
    for name in ("tiles/mushroomRed.png", "items/gemYellow.png", "tiles/torch1.png"):
        true, got = real_sprite(name, backdrop)
        assert iou(got, true) >= 0.955, (name, iou(got, true))  # the gem's near-white rim highlight is the loss


@needs_sprites
@pytest.mark.parametrize("backdrop", ["gradient", "noise"])
def test_real_key_hole_opens_where_the_backdrop_shows(backdrop):
    true, got = real_sprite("items/keyRed.png", backdrop)
    hole = ndimage.binary_erosion(ndimage.binary_fill_holes(true >= 0.5) & (true < 0.01), iterations=1)
    assert hole.sum() > 20
    assert (got[hole] < 0.5).mean() >= 0.95
    assert iou(got, true) >= 0.96


# --------------------------------------------------------------------------- the model on request


def test_missing_model_messages_give_the_download_command(tmp_path, monkeypatch):
    from asset_studio.core.job import Finishing
    from asset_studio.engine.postprocess import check_ready
    from asset_studio.engine.rembg_models import download_command

    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    monkeypatch.setattr(bgmod, "_SESSIONS", {})
    command = download_command("u2net")
    assert command.endswith("-m asset_studio.engine.rembg_models u2net")
    with pytest.raises(UserError) as err:
        get_session("u2net")
    assert f"`{command}`" in str(err.value)
    with pytest.raises(UserError) as err:  # a style that asks for the cut-out, before generating
        check_ready(Finishing(remove_background=True, method="auto", bg_model="u2net"))
    assert f"`{command}`" in str(err.value) and str(err.value).count("\n") == 0
    check_ready(Finishing(remove_background=True, method="key", bg_model="u2net"))  # the key needs no file


def test_model_source_is_rembgs_own(tmp_path, monkeypatch):
    from asset_studio.engine.rembg_models import model_source

    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    (tmp_path / "u2netp.onnx").write_bytes(b"present")  # an existing file must not hide the source
    src = model_source("u2netp")
    assert src.url.startswith("https://") and src.url.endswith("/u2netp.onnx")
    assert src.known_hash is not None and src.known_hash.startswith("md5:") and len(src.known_hash) == 36
    assert src.fname == "u2netp.onnx" and str(src.folder).startswith(str(tmp_path))
    assert model_source("isnet-anime").url.endswith("isnet-anime.onnx")


@pytest.fixture
def model_server():
    """A local HTTP server on 127.0.0.1 serving one fake model file (no internet)."""
    import hashlib
    import http.server
    import threading

    payload = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/u2netp.onnx", payload, hashlib.md5(payload).hexdigest(), hashlib.sha256(payload).hexdigest()
    server.shutdown()
    server.server_close()


def source_for(url: str, known_hash: str | None, folder):
    from asset_studio.engine.rembg_models import ModelSource

    return ModelSource(name="u2netp", url=url, known_hash=known_hash, folder=folder, fname="u2netp.onnx")


def test_download_model_with_progress_and_checksum(tmp_path, model_server):
    from asset_studio.engine.rembg_models import download_model

    url, payload, md5, sha256 = model_server
    for algo, digest in (("md5", md5), ("sha256", sha256)):
        folder = tmp_path / algo
        seen = []
        path = download_model("u2netp", progress=lambda done, total: seen.append((done, total)), source=source_for(url, f"{algo}:{digest}", folder))
        assert path == folder / "u2netp.onnx" and path.read_bytes() == payload
        assert len(seen) >= 3 and seen[-1] == (len(payload), len(payload))
        assert all(b[0] >= a[0] for a, b in zip(seen, seen[1:]))
        assert sorted(p.name for p in folder.iterdir()) == ["u2netp.onnx"]
        # already there: kept, not fetched again
        assert download_model("u2netp", progress=lambda *a: pytest.fail("fetched twice"), source=source_for(url, None, folder)) == path


def test_download_model_rejects_a_bad_checksum_and_leaves_nothing(tmp_path, model_server):
    from asset_studio.engine.rembg_models import download_model

    url, *_ = model_server
    with pytest.raises(UserError, match="checksum"):
        download_model("u2netp", source=source_for(url, "sha256:" + "0" * 64, tmp_path / "m"))
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())
    with pytest.raises(UserError, match="Could not download"):
        download_model("u2netp", source=source_for("http://127.0.0.1:1/u2netp.onnx", None, tmp_path / "n"), timeout=5)  # nothing listens there


def test_download_model_can_be_cancelled(tmp_path, model_server):
    from asset_studio.engine.rembg_models import DownloadCancelled, download_model

    url, payload, md5, _ = model_server
    seen = []
    with pytest.raises(DownloadCancelled):
        download_model("u2netp", progress=lambda d, t: seen.append(d), cancel=lambda: len(seen) >= 1, source=source_for(url, f"md5:{md5}", tmp_path / "c"))
    assert 1 <= len(seen) < len(payload) // (1 << 16)
    assert not any((tmp_path / "c").iterdir())  # no partial file, no temporary left behind


def test_generate_asking_for_a_cut_out_without_the_model_names_the_command(tiny_sd15_dir, tmp_path, monkeypatch, capsys):
    """First run: the cut-out is asked for, the rembg file is absent; the CLI says what to run, once, and the
    raw image is still made (asset-studio finish makes the sprite once the model is there)."""
    from asset_studio.engine.rembg_models import download_command

    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "empty"))
    monkeypatch.setattr(bgmod, "_SESSIONS", {})
    args = ["generate", "a gold coin", "--model", str(tiny_sd15_dir), "--size", "64x64", "--steps", "1",
            "--device", "cpu", "--out", str(tmp_path / "out"), "--remove-bg"]
    assert main(args) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "u2netp" in line]
    assert len(err) == 1 and f"`{download_command('u2netp')}`" in err[0] and "asset-studio finish" in err[0]
    assert len(list((tmp_path / "out").glob("*.png"))) == 1 and not (tmp_path / "out" / "sprites").exists()

"""The viewer's "Detail a region…": regions drawn in image pixels whatever the zoom and pan, moved,
resized and removed; the job they make goes through the window's queue and its image lands in
the gallery beside the source, in the source's run folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PIL import Image, ImageDraw  # noqa: E402

from asset_studio.core.job import Box, Finishing  # noqa: E402
from gui_fixtures import home  # noqa: E402,F401  (shared fixtures)

SPRITES = Path(__file__).resolve().parents[2] / "shared" / "data" / "sprites-dev" / "items"


def _picture(size: int = 64) -> Image.Image:
    """A CC0 item from ../shared on a parchment background, or a drawn gem where it is absent."""
    files = sorted(SPRITES.glob("*.png")) if SPRITES.is_dir() else []
    if files:
        cut = Image.open(files[0]).convert("RGBA").resize((size, size), Image.Resampling.NEAREST)
    else:
        cut = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        ImageDraw.Draw(cut).polygon([(size // 2, 4), (size - 4, size // 2), (size // 2, size - 4), (4, size // 2)],
                                    fill=(80, 180, 220, 255))
    raw = Image.new("RGB", cut.size, (222, 214, 190))
    raw.paste(cut, (0, 0), cut)
    return raw


def _source(folder: Path, size: int = 64, sprite: bool = True) -> Path:
    """A raw image with its job (and its cut-out in sprites/), as the service saves them."""
    from asset_studio.core.library import SPRITES_DIR, save_image
    from jobs import make_job

    job = make_job(model="/m/tiny-sd15", prompt="a golden key", width=size, height=size, steps=3, seed=5)
    job.finishing = Finishing(remove_background=True, method="key")
    raw = save_image(_picture(size), job, folder, seed=5)
    if sprite:
        (folder / SPRITES_DIR).mkdir(exist_ok=True)
        _picture(size).convert("RGBA").save(folder / SPRITES_DIR / raw.name)
    return raw


def test_regions_are_drawn_moved_resized_and_removed_in_image_pixels(home):
    from asset_studio.core.library import SPRITES_DIR
    from asset_studio.gui.model.detail_regions import DetailRegions

    raw = _source(home / "out")
    regions = DetailRegions()
    # The sprite stands for its raw image: the regions are drawn on the picture the model made.
    assert regions.start(home / "out" / SPRITES_DIR / raw.name) == raw.resolve()
    assert regions.size == (64, 64) and regions.prompt == "a golden key" and regions.active
    regions.press(10.2, 12.7)
    regions.drag(20, 20)
    regions.release(30.4, 40.1)
    assert regions.boxes == [Box(10, 13, 20, 27)]
    regions.press(60, 60)
    regions.release(80, 90)  # past the image's corner: clamped to it
    regions.press(5, 5)
    regions.release(7, 6)  # too small to be a region: a click
    assert regions.boxes == [Box(10, 13, 20, 27), Box(60, 60, 4, 4)] and regions.selected == -1
    regions.press(15, 20)  # inside box 1: moved, not a new one
    regions.release(10, 15)
    assert regions.boxes[0] == Box(5, 8, 20, 27) and regions.selected == 0
    regions.press(25, 20, tolerance=1.5)  # its right edge: resized
    regions.release(40, 20)
    assert regions.boxes[0] == Box(5, 8, 35, 27)
    regions.press(5, 8, tolerance=1.5)  # its top-left corner
    regions.release(0, 0)
    assert regions.boxes[0] == Box(0, 0, 40, 35)
    regions.press(62, 62)
    regions.release(-100, 62)  # moved as far as the image allows
    assert regions.boxes[1] == Box(0, 60, 4, 4)
    regions.remove()
    assert regions.boxes == [Box(0, 0, 40, 35)] and regions.selected == -1


def test_regions_drawn_on_a_zoomed_and_panned_canvas_are_in_image_pixels(qtbot, home):
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    from asset_studio.gui.ui.viewer import Viewer

    raw = _source(home / "out", size=64)
    viewer = Viewer()
    qtbot.addWidget(viewer)
    viewer.resize(500, 400)
    viewer.show()
    qtbot.waitExposed(viewer)
    viewer.state.show_file(raw, raw.name)
    assert viewer.start_detail()
    state, canvas = viewer.state, viewer.canvas
    state.set_zoom(4)
    state.pan_by(37, -21)
    w, h = canvas.width(), canvas.height()
    # The state's mapping and the canvas's drawing agree, and round-trip.
    left, top, width, height = state.image_rect(w, h)
    assert (width, height) == (256, 256) and canvas.image_rect().left() == left
    assert state.to_image(*state.to_view(12.5, 40, w, h), w, h) == pytest.approx((12.5, 40))

    def at(ix, iy) -> QPoint:
        x, y = state.to_view(ix, iy, w, h)
        return QPoint(round(x), round(y))

    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(8, 16))
    QTest.mouseMove(canvas, at(20, 30))
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(24, 40))
    assert viewer.regions.boxes == [Box(8, 16, 16, 24)]  # image pixels, not the 4x screen ones
    # Zoomed out and panned elsewhere, the same box is where it was on the image.
    state.set_zoom(2)
    state.pan_by(-50, 10)
    w, h = canvas.width(), canvas.height()
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(40, 40))
    QTest.mouseMove(canvas, at(50, 50))
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(56, 60))
    assert viewer.regions.boxes == [Box(8, 16, 16, 24), Box(40, 40, 16, 20)]
    # A right drag pans; it draws nothing.
    before = state.pan
    QTest.mousePress(canvas, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, at(10, 10))
    QTest.mouseMove(canvas, at(30, 30))
    QTest.mouseRelease(canvas, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, at(30, 30))
    assert state.pan != before and len(viewer.regions.boxes) == 2
    QTest.keyClick(canvas, Qt.Key.Key_Delete)  # the selected (last drawn) region goes
    assert viewer.regions.boxes == [Box(8, 16, 16, 24)]
    # The panel's settings go into the job.
    panel = viewer.detail_panel
    assert panel.isVisible() and panel.prompt_edit.text() == "a golden key"
    panel.denoise_spin.setValue(0.55)
    panel.padding_spin.setValue(12)
    panel.blur_spin.setValue(3)
    job = viewer.regions.build_job(seed=77)
    [d] = job.passes.detail
    assert (d.boxes, d.denoise, d.padding, d.mask_blur, d.prompt) == ([Box(8, 16, 16, 24)], 0.55, 12, 3, "")
    assert job.init.kept and job.init.image == str(raw.resolve()) and job.sampling.seed == 77
    panel.prompt_edit.setText("")
    QTest.keyClicks(panel.prompt_edit, "[PROMPT], engraved")
    assert viewer.regions.build_job().passes.detail[0].prompt == "[PROMPT], engraved"
    # Another image chosen in the gallery: its regions were drawn on the last one, so Detail mode ends.
    other = _source(home / "out", size=64, sprite=False)
    viewer.state.show_file(other, other.name)
    assert not viewer.regions.active and not panel.isVisible() and not viewer.detail_btn.isChecked()


def test_nothing_to_detail_is_one_sentence(qtbot, home):
    from asset_studio.gui.ui.viewer import Viewer

    viewer = Viewer()
    qtbot.addWidget(viewer)
    errors = []
    viewer.error.connect(errors.append)
    plain = home / "plain.png"
    _picture().save(plain)
    assert not viewer.start_detail(plain) and "carries no Asset Studio job" in errors[-1]
    viewer.regions.fallback_model = lambda: "/m/model.safetensors"  # the Create tab's model, in the window
    assert viewer.start_detail(plain)
    assert not viewer.submit_detail() and "Drag a rectangle" in errors[-1]
    viewer.regions.add_box(0, 0, 16, 16)
    seen = []
    viewer.detail_submitted.connect(lambda job, folder: seen.append((job, folder)))
    assert viewer.submit_detail()
    [(job, folder)] = seen
    assert job.model.checkpoint == "/m/model.safetensors" and folder == str(home) and not viewer.regions.active


@pytest.fixture
def studio(qtbot, home):
    from asset_studio.gui.app import create_app
    from asset_studio.gui.main_window import MainWindow
    from scripted_backend import ScriptedBackend

    create_app([])
    (home / "models").mkdir()
    window = MainWindow(output_dir=home / "out", models_dir=home / "models",
                        backend_factory=lambda device: ScriptedBackend())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.close()


def test_a_gallery_image_is_detailed_through_the_queue_and_lands_beside_it(qtbot, home, studio):
    from asset_studio.core.library import read_job

    w = studio
    run = home / "out" / "knight-walk"  # a run of its own (a pose set): the gallery groups by it
    run.mkdir(parents=True)
    raw = _source(run)
    w.library.refresh()
    w.gallery.select_row(0)
    w.gallery.detail_requested.emit(w.gallery.current_entry().raw)  # the right-click's "Detail a region…"
    assert w.viewer.regions.active and w.viewer.state.path == str(raw.resolve())
    w.viewer.regions.add_box(8, 8, 40, 40)
    w.viewer.regions.add_box(44, 2, 60, 20)
    w.viewer.regions.add_box(2, 50, 12, 60)
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    w.activateWindow()
    w.viewer.canvas.setFocus()
    QTest.keyClick(w.viewer.canvas, Qt.Key.Key_Delete)  # the region goes, not the gallery's image
    assert len(w.viewer.regions.boxes) == 2 and len(w.library) == 1 and raw.is_file()
    with qtbot.waitSignal(w.job_finished, timeout=20000) as blocker:
        w.viewer.detail_panel.detail_btn.click()
    job_id, [path] = blocker.args
    path = Path(path)
    assert path.parent == run and path != raw  # beside the source, in its run's folder
    job = read_job(path)
    assert job.init.kept and job.passes.detail[0].boxes == [Box(8, 8, 32, 32), Box(44, 2, 16, 18)]
    assert w.queue.entry(job_id).label == f"Detail {raw.name}"
    entry = w.library.entry(0)
    assert entry.raw == path and entry.group == "knight-walk"  # the gallery shows it in the same run
    assert entry.sprite is not None  # the source's style finished it (its cut-out)
    from asset_studio.gui.gallery import describe_job

    rows = dict(describe_job(job))
    assert rows["Detailed from"] == raw.name and rows["Detailer"] == "8,8,32,32 44,2,16,18, denoise 0.4"


def test_screenshot_of_the_viewer_with_two_regions(qtbot, home, studio):
    w = studio
    raw = _source(home / "out", size=256)
    w.resize(1280, 720)
    w.library.refresh()
    w.gallery.select_row(0)
    assert w.viewer.start_detail()
    w.viewer.regions.add_box(40, 30, 130, 110)
    w.viewer.regions.add_box(150, 140, 230, 230)
    w.viewer.regions.select(1)
    qtbot.wait(80)
    image = w.grab().toImage()
    folder = Path(os.environ.get("ASSET_STUDIO_SHOTS") or home)
    image.save(str(folder / "viewer-detail-1280x720.png"))
    # The regions are drawn where their image pixels are: the first one's frame in its colour.
    from asset_studio.gui.ui.viewer import REGION

    canvas = w.viewer.canvas
    x, y = w.viewer.state.to_view(85, 30, canvas.width(), canvas.height())
    top_left = canvas.mapTo(w, canvas.rect().topLeft())
    ratio = image.width() / w.width()
    found = {image.pixelColor(round((top_left.x() + x) * ratio), round((top_left.y() + y + dy) * ratio)).name()
             for dy in (-1, 0, 1)}
    assert REGION.name() in found, found
    assert raw.is_file()

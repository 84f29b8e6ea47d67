"""The studio's pages on their own: style pack editor, model manager, gallery. No model runs here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PIL import Image  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

from jobs import make_job  # noqa: E402

LORA_KEYS = ["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight",
             "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ASSET_STUDIO_SETTINGS", str(tmp_path / "settings.ini"))
    from asset_studio.gui.app import create_app

    create_app([])
    return tmp_path


# --- style pack editor ------------------------------------------------------------------------


def test_style_editor_round_trips_a_pack(qtbot, home, monkeypatch):
    from asset_studio.core.stylepack import find_style, user_styles_dir
    from asset_studio.gui.style_editor import StyleEditor

    editor = StyleEditor()
    qtbot.addWidget(editor)
    changed = []
    editor.styles_changed.connect(lambda: changed.append(1))
    editor.new_pack()
    editor.id_edit.setText("neon-ink")
    editor.name_edit.setText("Neon Ink")
    editor.author_edit.setText("Test Artist")
    editor.license_edit.setText("CC-BY-4.0")
    editor.family_combo.setCurrentIndex(editor.family_combo.findData("sdxl"))
    editor.models_edit.setText("stabilityai/stable-diffusion-xl-base-1.0")
    editor.prompt_edit.setPlainText("neon ink drawing of {subject}, glowing lines")
    editor.negative_edit.setPlainText("blurry")
    editor.steps_spin.setValue(30)
    editor.cfg_spin.setValue(6.5)
    editor.sampler_edit.setCurrentText("DPM++ 2M Karras")
    editor.width_spin.setValue(1024)
    editor.height_spin.setValue(1024)
    editor.seed_policy.setCurrentText("fixed")
    editor.seed_spin.setValue(77)
    editor.remove_bg.setChecked(True)
    editor.palette_spin.setValue(24)
    lora = home / "glow.safetensors"
    save_file({k: np.ones((4, 4), dtype=np.float16) for k in LORA_KEYS}, str(lora))
    editor.add_loras([lora])  # what a drop onto the LoRA table does
    editor.loras.cellWidget(0, 1).setValue(0.7)
    editor.loras.item(0, 2).setText("neonink, glow")
    folder = editor.save()
    assert folder == user_styles_dir() / "neon-ink" and changed
    assert (folder / "loras" / "glow.safetensors").read_bytes() == lora.read_bytes()  # copied into the pack

    # export, then import into another user's home: every field comes back
    out = editor.export_to(home / "share" / "neon-ink.stylepack")
    assert out.is_file()
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(home / "other-home"))
    editor.reload()
    imported = editor.import_from(out)
    assert imported is not None
    pack = find_style("neon-ink")
    assert Path(pack.folder).is_relative_to(home / "other-home")
    assert (pack.name, pack.author, pack.license, pack.family) == ("Neon Ink", "Test Artist", "CC-BY-4.0", "sdxl")
    assert pack.prompt == "neon ink drawing of {subject}, glowing lines" and pack.negative == "blurry"
    d = pack.defaults
    assert (d.steps, d.cfg_scale, d.sampler, d.width, d.height, d.seed_policy, d.seed) == \
        (30, 6.5, "DPM++ 2M Karras", 1024, 1024, "fixed", 77)
    assert pack.postprocess.remove_background is True and pack.postprocess.palette_size == 24
    assert [(l.file, l.weight, l.trigger_words) for l in pack.loras] == [("loras/glow.safetensors", 0.7, ["neonink", "glow"])]
    assert (Path(pack.folder) / "loras" / "glow.safetensors").read_bytes() == lora.read_bytes()


def test_style_editor_duplicate_edit_bundled_and_refusals(qtbot, home):
    from asset_studio.core.stylepack import find_style, user_styles_dir
    from asset_studio.gui.style_editor import StyleEditor

    editor = StyleEditor()
    qtbot.addWidget(editor)
    ids = [editor.list.item(i).data(256) for i in range(editor.list.count())]
    editor.list.setCurrentRow(ids.index("pixel-art"))
    assert editor.id_edit.text() == "pixel-art" and "Bundled" in editor.where.text()
    # saving a bundled pack writes the user's own copy; the bundled folder is untouched
    bundled = (find_style("pixel-art").folder / "style.toml").read_text()
    editor.steps_spin.setValue(12)
    assert editor.save() == user_styles_dir() / "pixel-art"
    assert find_style("pixel-art").defaults.steps == 12
    assert (Path(__file__).resolve().parents[1] / "styles" / "pixel-art" / "style.toml").read_text() == bundled

    editor.duplicate()
    assert find_style("pixel-art-copy").name.endswith("(copy)")

    # invalid input is one sentence, nothing written
    editor.new_pack()
    editor.id_edit.setText("Bad Id!")
    assert editor.save() is None and "id" in editor.where.text()
    editor.id_edit.setText("fine-id")
    editor.prompt_edit.setPlainText("no subject placeholder")
    assert editor.save() is None and "{subject}" in editor.where.text()
    assert not (user_styles_dir() / "fine-id").exists()
    # a pickle or a full model is not a LoRA
    (home / "evil.ckpt").write_bytes(b"x")
    editor.add_loras([home / "evil.ckpt"])
    assert ".safetensors" in editor.where.text() and editor.loras.rowCount() == 0
    full = home / "full.safetensors"
    save_file({"model.diffusion_model.x": np.zeros(2, dtype=np.float16)}, str(full))
    editor.add_loras([full])
    assert "no LoRA weights" in editor.where.text() and editor.loras.rowCount() == 0
    # importing garbage is refused with a sentence
    (home / "bad.stylepack").write_bytes(b"PK not really")
    assert editor.import_from(home / "bad.stylepack") is None and editor.where.text()


# --- model manager ----------------------------------------------------------------------------


def test_model_manager_lists_imports_and_survives_offline_download(qtbot, home, tiny_sd15_dir, monkeypatch):
    import shutil

    import huggingface_hub.constants as c

    from asset_studio.core import models
    from asset_studio.gui.model_manager import ModelManager

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(models, "scan_hf_cache", lambda cache_dir=None: [])
    folder = home / "models"
    folder.mkdir()
    shutil.copytree(tiny_sd15_dir, folder / "tiny")
    page = ModelManager(folder)
    qtbot.addWidget(page)
    with qtbot.waitSignal(page.models_changed, timeout=10_000):
        page.refresh()
    assert page.local_tree.topLevelItemCount() == 1
    assert page.local_tree.topLevelItem(0).text(2) == "SD 1.5" and not page.local_empty.isVisible()

    ckpt = home / "dreamy.safetensors"
    # the smallest header that reads as an SD 1.x checkpoint: a 768-wide cross-attention key projection
    save_file({"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight":
               np.zeros((320, 768), dtype=np.float16)}, str(ckpt))
    with qtbot.waitSignal(page.models_changed, timeout=10_000):
        assert page.import_file(ckpt)
    assert {page.local_tree.topLevelItem(i).text(0) for i in range(2)} == {"tiny", "dreamy"}
    assert not page.import_file(home / "nothing.ckpt") and "pickle" in page.status.text()
    # a LoRA imports too, copied on the thread pool (a checkpoint is gigabytes), into models/loras
    lora = home / "inkwash.safetensors"
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": np.zeros((4, 320), dtype=np.float16)},
              str(lora))
    assert "LoRA" in page.import_btn.toolTip()
    with qtbot.waitSignal(page.imported, timeout=10_000) as blocker:
        page.import_in_background(lora)
    assert blocker.args[0] and "lora" in blocker.args[1] and (page.models_dir / "loras" / lora.name).is_file()

    page.select_catalog("taesd")
    assert page.download_btn.isEnabled()
    page.download_btn.click()
    assert page.cancel_btn.isEnabled() and not page.download_btn.isEnabled()
    qtbot.waitUntil(lambda: page.download_btn.isEnabled(), timeout=30_000)
    assert page.status.text().startswith("Cannot download TAESD")
    assert page._item("taesd").text(5) == "failed" and not page.cancel_btn.isEnabled()
    # nothing else broke: the page still scans
    with qtbot.waitSignal(page.models_changed, timeout=10_000):
        page.refresh()
    assert page.local_tree.topLevelItemCount() == 3  # tiny, dreamy and the LoRA
    page.shutdown()


# --- gallery ----------------------------------------------------------------------------------


def _library(folder: Path, n: int) -> list[Path]:
    from asset_studio.core.library import save_image

    job = make_job(model="m", prompt="a potion", seed=5, steps=4, width=32, height=32, subject="potion")
    paths = []
    for i in range(n):
        img = Image.new("RGBA", (32, 32), (40 * i, 100, 200, 255))
        paths.append(save_image(img, job, folder, seed=5 + i))
    return paths


def test_gallery_thumbnails_details_drag_trash_and_export(qtbot, home):
    from asset_studio.gui.gallery import GalleryWidget, SheetExportDialog, TRASH_DIR

    out = home / "out"
    paths = _library(out, 3)
    (out / "notes.txt").write_text("not an image")
    gallery = GalleryWidget(out)
    qtbot.addWidget(gallery)
    gallery.refresh()
    model = gallery.model
    assert model.rowCount() == 3 and set(model.paths()) == set(paths)
    # lazy thumbnails: a placeholder first, the decoded thumbnail once the pool is done
    index = model.index(0)
    model.data(index, 1)
    with qtbot.waitSignal(model.dataChanged, timeout=5000):
        pass
    assert not model.data(index, 1).isNull()

    gallery.select_row(0)
    text = gallery.details.toPlainText()
    assert "Prompt: a potion" in text and "Seed:" in text
    jobs = []
    gallery.rerun_requested.connect(jobs.append)
    gallery.rerun_btn.click()
    seed = int(text.split("Seed: ")[1].split()[0])
    assert jobs[-1].sampling.seed == seed and jobs[-1].sampling.count == 1

    # drag out: the file manager gets file URLs
    mime = model.mimeData([model.index(0), model.index(1)])
    assert [Path(u.toLocalFile()) for u in mime.urls()] == [model.path(0), model.path(1)]

    # export the selection as a sheet through issue 6's packer and exporters
    dialog = SheetExportDialog(model.paths(), out)
    qtbot.addWidget(dialog)
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("texturepacker-hash"))
    dialog.out_edit.setText(str(home / "sheets" / "potions.png"))
    with qtbot.waitSignal(dialog.exported, timeout=10_000):
        dialog.export_btn.click()
    assert (home / "sheets" / "potions.png").is_file()
    data = next(p for p in dialog.result_paths if p.suffix == ".json")
    assert len(json.loads(data.read_text())["frames"]) == 3

    # delete moves to .trash inside the output folder
    gallery.view.selectionModel().clearSelection()
    gallery.select_row(0)
    victim = model.path(0)
    gallery.delete_selected()
    assert not victim.exists() and (out / TRASH_DIR / victim.name).is_file()
    assert model.rowCount() == 2
    gallery.refresh()
    assert model.rowCount() == 2, "the trash is not part of the library"


# --- application ------------------------------------------------------------------------------


def test_app_theme_follows_the_system_scheme_and_has_an_icon(qtbot, home, monkeypatch):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QApplication

    from asset_studio.gui import app as app_module

    app = app_module.create_app([])
    assert app.style().name().lower() == "fusion"
    assert {s.width() for s in app.windowIcon().availableSizes()} >= {16, 32, 256}
    window = lambda: QApplication.palette().color(QPalette.ColorRole.Window).lightness()  # noqa: E731
    try:
        # The offscreen platform cannot switch schemes, so play the system's part: report dark, signal it.
        monkeypatch.setattr(app_module, "is_dark", lambda _app: True)
        app.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
        assert window() < 80 and app.property("asset_studio_dark") is True
        monkeypatch.setattr(app_module, "is_dark", lambda _app: False)
        app.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Light)
        assert window() > 160 and app.property("asset_studio_dark") is False
    finally:
        monkeypatch.undo()
        app_module.apply_theme(app)


# --- the Create panel -------------------------------------------------------------------------


def _reload_tokens(form) -> bool:
    """The vocabulary loads on a thread; once it has, the next preview counts exactly."""
    from asset_studio.gui.model.tokens import ready

    if ready():
        form.set_field("text", form.field("text") + " ")
        form.flush_preview()
    return False


def test_wheel_changes_only_a_focused_control(qtbot, home):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    from asset_studio.gui.model.create_form import CreateForm
    from asset_studio.gui.model.queue import JobQueue
    from asset_studio.gui.ui.create_panel import CreatePanel

    form = CreateForm()
    panel = CreatePanel(form, JobQueue())
    qtbot.addWidget(panel)
    panel.resize(420, 500)
    panel.show()
    qtbot.waitExposed(panel)

    def wheel(widget, notches: int = -3):
        event = QWheelEvent(QPointF(5, 5), QPointF(widget.mapToGlobal(QPoint(5, 5))), QPoint(0, 0),
                            QPoint(0, 120 * notches), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                            Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(widget, event)

    template, steps = panel.template_combo.currentIndex(), form.steps
    panel.subject_edit.setFocus()
    wheel(panel.template_combo)
    wheel(panel.steps_spin, 3)
    assert panel.template_combo.currentIndex() == template and form.template_id == ""
    assert form.steps == steps, "scrolling over the form changed nothing"
    panel.steps_spin.setFocus()
    qtbot.waitUntil(panel.steps_spin.hasFocus, timeout=2000)
    wheel(panel.steps_spin, 2)
    assert form.steps == steps + 2, "the control being used takes the wheel"


def test_create_panel_shows_the_form_and_writes_the_artists_edits_back(qtbot, home):
    from asset_studio.gui.model.create_form import CreateForm
    from asset_studio.gui.model.queue import JobQueue
    from asset_studio.gui.ui.create_panel import CreatePanel

    form = CreateForm()
    panel = CreatePanel(form, JobQueue())
    qtbot.addWidget(panel)
    # the style's values reach the widgets without counting as the artist's size
    form.style_id = "pixel-art"
    form.template_id = "ui-button"
    assert panel.style_combo.currentData() == "pixel-art" and panel.template_combo.currentData() == "ui-button"
    assert (panel.width_spin.value(), panel.height_spin.value()) == (form.width, form.height)
    assert panel.steps_spin.value() == form.steps and panel.size_auto_btn.isChecked() and form.size_auto
    assert list(panel._field_edits) == ["text"]
    # the artist's edits reach the form
    panel.width_spin.setValue(320)
    assert form.width == 320 and not form.size_auto and not panel.size_auto_btn.isChecked()
    panel.subject_edit.setText("wooden")
    panel._field_edits["text"].setText("PLAY")
    panel.negative_edit.setPlainText("blurry")
    panel.seed_lock.setChecked(True)
    panel.seed_spin.setValue(4_000_000_000)  # beyond a signed 32-bit spin box
    request = form.to_request()
    assert (request.subject, request.fields, request.overrides.negative) == ("wooden", {"text": "PLAY"}, "blurry")
    assert request.overrides.seed == 4_000_000_000 and request.overrides.width == 320
    # Auto hands the size back to the style
    panel.size_auto_btn.click()
    assert form.size_auto and panel.width_spin.value() == form.width != 320
    panel.seed_plus.click()
    assert form.seed == 4_000_000_001 and panel.seed_spin.value() == 4_000_000_001
    panel.resize(420, 900)
    panel.show()
    qtbot.waitExposed(panel)
    qtbot.wait(20)
    below = panel.reset_btn.mapTo(panel, panel.reset_btn.rect().topLeft()).y()
    with qtbot.waitSignal(form.prompt_preview_changed, timeout=5000):
        panel.prompt_edit.setPlainText("gold trim, " + "shiny " * 60)
    assert panel.final_prompt.full_text() == form.prompt_preview and "PLAY" in panel.final_prompt.full_text()
    assert panel.final_prompt.toolTip() == form.prompt_preview
    qtbot.wait(20)
    # a long composed prompt is one elided line: the controls below do not move under the pointer
    assert panel.reset_btn.mapTo(panel, panel.reset_btn.rect().topLeft()).y() == below
    assert panel.final_prompt.text().endswith("…")
    # the token counter: CLIP's count, over the 75 it reads
    qtbot.waitUntil(lambda: form.tokens is not None and form.tokens.exact or _reload_tokens(form), timeout=10_000)
    assert form.tokens.count > 75 and form.tokens.over and "ignored" in panel.tokens_label.text()
    assert not panel.denoise_spin.isEnabled()
    panel.init_edit.setText("start.png")
    assert panel.denoise_spin.isEnabled() and form.init_image == "start.png"


def test_style_editor_marks_unsaved_changes_and_a_new_pack_id_follows_its_name(qtbot, home):
    from asset_studio.gui.style_editor import StyleEditor

    editor = StyleEditor()
    qtbot.addWidget(editor)
    editor.new_pack()
    assert not editor.is_dirty() and editor.save_btn.text() == "Save"
    editor.name_edit.clear()
    qtbot.keyClicks(editor.name_edit, "Retro Icons")
    assert editor.id_edit.text() == "retro-icons", "an unsaved pack's id follows its name"
    assert editor.is_dirty() and editor.save_btn.text().endswith("•")
    editor.save()
    assert not editor.is_dirty() and editor.pack.id == "retro-icons"
    editor.steps_spin.setValue(12)
    editor.steps_spin.editingFinished.emit()
    assert editor.is_dirty()
    qtbot.keyClicks(editor.id_edit, "-v2")
    editor.name_edit.clear()
    qtbot.keyClicks(editor.name_edit, "Other")
    assert editor.id_edit.text() == "retro-icons-v2", "a saved pack keeps its id"


def test_viewer_canvas_zooms_pans_and_drags_the_split(qtbot, home):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QColor, QImage, QWheelEvent
    from PySide6.QtWidgets import QApplication

    from asset_studio.gui.ui.viewer import Viewer

    viewer = Viewer()
    qtbot.addWidget(viewer)
    viewer.resize(400, 330)
    viewer.show()
    qtbot.waitExposed(viewer)
    red, blue = QImage(16, 16, QImage.Format.Format_RGBA8888), QImage(16, 16, QImage.Format.Format_RGBA8888)
    red.fill(QColor("red"))
    blue.fill(QColor("blue"))
    viewer.state.show_image(red, "red.png", "red.png")
    assert viewer.nearest_box.isChecked(), "a 16 px image is pixel art: nearest-neighbour"
    canvas = viewer.canvas
    centre = QPointF(canvas.width() / 2, canvas.height() / 2)
    event = QWheelEvent(centre, QPointF(canvas.mapToGlobal(centre.toPoint())), QPoint(0, 0), QPoint(0, 120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    fit = viewer.state.effective_zoom(canvas.width(), canvas.height())
    QApplication.sendEvent(canvas, event)
    assert viewer.state.zoom > fit
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(100, 100))
    qtbot.mouseMove(canvas, QPoint(130, 110))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(130, 110))
    assert viewer.state.pan == (30.0, 10.0)
    viewer.fit_btn.click()
    assert viewer.state.zoom is None and viewer.state.pan == (0.0, 0.0)

    viewer.state.set_compare(blue, "red", "blue")
    assert viewer.compare_btn.isChecked()
    rect = canvas.image_rect()
    x = int(canvas.split_x())
    y = int(rect.center().y())
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(x, y))
    qtbot.mouseMove(canvas, QPoint(int(rect.left() + rect.width() * 0.25), y))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(int(rect.left() + rect.width() * 0.25), y))
    assert viewer.state.split == pytest.approx(0.25, abs=0.02)
    shot = canvas.grab().toImage()
    left = shot.pixelColor(int(rect.left() + rect.width() * 0.1), y)
    right = shot.pixelColor(int(rect.left() + rect.width() * 0.6), y)
    assert (left.red(), left.blue()) == (255, 0) and (right.red(), right.blue()) == (0, 255), "A left, B right"

    viewer.state.show_step(red, "step 3 / 10")
    assert viewer.caption.text().startswith("Preview")

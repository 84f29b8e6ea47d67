"""The Create tab's after-pass sections (hires fix, refiner, tiled upscale) and the viewer's
before/after compare of an image made with them. No model runs here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PIL import Image  # noqa: E402

from asset_studio.core.job import HiresFix, Passes, Refiner, TiledUpscale  # noqa: E402
from asset_studio.core.request import prepare  # noqa: E402
from asset_studio.errors import UserError  # noqa: E402
from gui_fixtures import form, home  # noqa: E402,F401  (shared fixtures)


def test_passes_that_are_off_add_nothing_and_those_on_reach_the_job(form):
    form.subject = "castle courtyard"
    form.model = "/m/model.safetensors"
    request = form.to_request()
    assert (request.overrides.hires, request.overrides.refiner, request.overrides.tiled_upscale) == (None, None, None)
    p = form.passes
    assert [p.summary(s) for s in ("hires", "refiner", "detail", "tiled_upscale")] == ["", "", "", ""]
    p.set_on("hires", True)
    p.set_value("hires", "denoise", 0.45)
    assert p.summary("hires") == "×2, Latent, denoise 0.45"
    p.set_on("tiled_upscale", True)
    p.set_value("tiled_upscale", "seams", "band")
    p.set_value("tiled_upscale", "tile", 256)
    p.set_value("tiled_upscale", "padding", 32)
    assert p.summary("tiled_upscale") == "×2, Lanczos, 256 px tiles, denoise 0.35, band seams"
    p.set_on("refiner", True)
    with pytest.raises(UserError, match="Choose the refiner's model"):
        form.to_request()
    p.set_value("refiner", "model", "/m/sdxl_refiner.safetensors")
    assert p.summary("refiner") == "sdxl_refiner, switch at 0.8"
    job = prepare(form.to_request(), preview=True)
    assert job.passes == Passes(hires=HiresFix(denoise=0.45), refiner=Refiner("/m/sdxl_refiner.safetensors"),
                                tiled_upscale=TiledUpscale(tile=256, padding=32, seams="band"))
    # the form's dataclasses are copied into the request: later edits do not change a queued job
    p.set_value("hires", "scale", 3.0)
    assert job.passes.hires.scale == 2.0
    with pytest.raises(KeyError):
        p.set_value("hires", "no_such_setting", 1)


def test_sections_start_collapsed_and_bind_to_the_form(qtbot, home, tmp_path):
    from asset_studio.gui.model.create_form import CreateForm
    from asset_studio.gui.model.queue import JobQueue
    from asset_studio.gui.ui.create_panel import CreatePanel

    form = CreateForm()
    panel = CreatePanel(form, JobQueue())
    qtbot.addWidget(panel)
    sections = panel.passes_panel.sections
    assert list(sections) == ["hires", "refiner", "detail", "tiled_upscale"]
    assert not any(s.is_open() for s in sections.values())
    tiled = sections["tiled_upscale"]
    tiled.switch.setChecked(True)
    assert form.passes.on["tiled_upscale"]
    assert tiled.summary.full_text() == form.passes.summary("tiled_upscale") != ""
    fields = panel.passes_panel.fields
    fields[("tiled_upscale", "denoise")].setValue(0.2)
    fields[("tiled_upscale", "seams")].setCurrentText("half-tile")
    fields[("tiled_upscale", "controlnet")].setCurrentText("controlnet-tile-sd15")
    t = form.passes.settings["tiled_upscale"]
    assert (t.denoise, t.seams, t.controlnet) == (0.2, "half-tile", "controlnet-tile-sd15")
    assert "half-tile seams, tile ControlNet" in tiled.summary.full_text()
    tiled.arrow.click()
    assert tiled.is_open()
    form.passes.set_on("tiled_upscale", False)  # the model's change comes back to the switch
    assert not tiled.switch.isChecked() and tiled.summary.full_text() == ""


def test_create_with_the_sections_open_at_1280x720(qtbot, home, tmp_path):
    """A screenshot for a person to look at (ASSET_STUDIO_SHOTS=DIR keeps it)."""
    from PySide6.QtWidgets import QScrollArea

    from asset_studio.gui.main_window import MainWindow
    from scripted_backend import ScriptedBackend

    (tmp_path / "models").mkdir()
    window = MainWindow(output_dir=tmp_path / "out", models_dir=tmp_path / "models",
                        backend_factory=lambda device: ScriptedBackend())
    qtbot.addWidget(window)
    try:
        window.resize(1280, 720)
        window.show()
        qtbot.waitExposed(window)
        panel = window.create_panel.passes_panel
        form = window.create_panel.form.passes
        form.set_on("hires", True)
        form.set_on("tiled_upscale", True)
        form.set_value("tiled_upscale", "seams", "band")
        qtbot.wait(50)
        scroll = window.create_panel.findChild(QScrollArea)
        scroll.ensureWidgetVisible(panel, 0, 0)
        shots = Path(os.environ.get("ASSET_STUDIO_SHOTS", tmp_path))
        shots.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(shots / "create-passes-collapsed-1280x720.png"))
        for name in ("hires", "tiled_upscale"):
            panel.sections[name].set_open(True)
        qtbot.wait(50)
        scroll.ensureWidgetVisible(panel.sections["tiled_upscale"].body)
        qtbot.wait(50)
        assert panel.fields[("tiled_upscale", "seams")].currentText() == "band"  # the form's value reached it
        pix = window.grab()
        assert (pix.width(), pix.height()) == (1280, 720)
        pix.save(str(shots / "create-passes-1280x720.png"))
        for name in ("hires", "tiled_upscale"):
            panel.sections[name].set_open(False)
        form.set_on("detail", True)
        panel.sections["detail"].set_open(True)
        qtbot.wait(50)
        scroll.ensureWidgetVisible(panel.sections["detail"].body)
        qtbot.wait(50)
        window.grab().save(str(shots / "create-detail-1280x720.png"))
        # every section's header fits: the summary is not squeezed out
        for name in ("hires", "tiled_upscale"):
            assert panel.sections[name].summary.width() > 100
    finally:
        window.close()


def test_the_viewer_compares_before_and_after_the_passes(qtbot, home, tmp_path):
    from asset_studio.core.library import before_path, save_image
    from asset_studio.gui.main_window import MainWindow
    from asset_studio.gui.model.library import library_entries
    from jobs import make_job
    from scripted_backend import ScriptedBackend

    out = tmp_path / "out"
    job = make_job("m", "castle", width=32, height=32, seed=5)
    job.passes = Passes(tiled_upscale=TiledUpscale(scale=2))
    raw = save_image(Image.new("RGB", (64, 64), (200, 40, 40)), job, out, seed=5)
    before_path(raw).parent.mkdir()
    Image.new("RGB", (32, 32), (40, 40, 200)).save(before_path(raw))
    [entry] = library_entries(out)  # the before image is no asset of its own
    assert entry.before == before_path(raw) and before_path(raw) in entry.files()

    (tmp_path / "models").mkdir()
    window = MainWindow(output_dir=out, models_dir=tmp_path / "models", backend_factory=lambda d: ScriptedBackend())
    qtbot.addWidget(window)
    try:
        window.gallery.select_row(0)
        assert window.compare(True)
        state = window.viewer.state
        assert state.compare and state.caption() == f"A: before {raw.name}   |   B: after {raw.name}"
        assert (state.image.width(), state.image.height()) == (64, 64)  # enlarged to line up with the result
        assert state.image.pixelColor(10, 10).blue() == 200 and state.image_b.pixelColor(10, 10).red() == 200
        from asset_studio.gui.gallery import describe_job

        assert ("Tiled upscale", "×2, Lanczos, 512 px tiles, denoise 0.35") in describe_job(job)
    finally:
        window.close()


class TiledBackend:
    """The scripted backend's protocol with a tiled upscale: staged steps, then the image with its before."""

    name = "scripted-tiled"

    def capabilities(self) -> set[str]:
        return {"txt2img"}

    def check(self, job) -> None:
        pass

    def run(self, job, should_cancel):
        from asset_studio.core.backend import Finished, ImageReady, Progress

        seed = job.image_seeds()[0]
        for stage in ("", "tile 1 of 2", "tile 2 of 2"):
            yield Progress(1, 1, 0, 1, None, stage=stage)
        yield ImageReady(Image.new("RGB", (64, 64), (200, 40, 40)), job.for_seed(seed), 0, seed,
                         before=Image.new("RGB", (32, 32), (40, 40, 200)))
        yield Finished()


def test_the_window_reports_tiles_and_keeps_the_before_image(qtbot, home, tmp_path):
    from asset_studio.core.library import before_path
    from asset_studio.gui.main_window import MainWindow
    from jobs import make_job

    (tmp_path / "models").mkdir()
    window = MainWindow(output_dir=tmp_path / "out", models_dir=tmp_path / "models",
                        backend_factory=lambda d: TiledBackend())
    qtbot.addWidget(window)
    try:
        stages, shown = [], []
        window.worker.stage.connect(lambda job_id, text: stages.append(text))
        window.statusBar().messageChanged.connect(shown.append)
        job = make_job("m", "castle", width=32, height=32, seed=5)
        job.passes = Passes(tiled_upscale=TiledUpscale(scale=2))
        with qtbot.waitSignal(window.job_finished, timeout=10_000) as blocker:
            window.submit_job(job)
        assert stages == ["tile 1 of 2", "tile 2 of 2"]
        assert any(m.endswith("— tile 2 of 2") for m in shown)
        [png] = blocker.args[1]
        assert Image.open(before_path(Path(png))).size == (32, 32)
    finally:
        window.close()


def test_the_detailer_section_makes_a_detector_pass(qtbot, home, tmp_path):
    from asset_studio.core.job import DetailPass
    from asset_studio.gui.model.create_form import CreateForm
    from asset_studio.gui.model.queue import JobQueue
    from asset_studio.gui.ui.create_panel import CreatePanel

    form = CreateForm()
    panel = CreatePanel(form, JobQueue())
    qtbot.addWidget(panel)
    form.subject, form.model = "knight portrait", "/m/model.safetensors"
    section = panel.passes_panel.sections["detail"]
    section.switch.setChecked(True)
    with pytest.raises(UserError, match="Choose the detailer's detector"):
        form.to_request()
    fields = panel.passes_panel.fields
    detector = tmp_path / "face.onnx"
    detector.write_bytes(b"")
    fields[("detail", "detector")].setCurrentText(str(detector))
    fields[("detail", "classes")].setText("face, hand")
    fields[("detail", "max_regions")].setValue(2)
    fields[("detail", "denoise")].setValue(0.45)
    fields[("detail", "prompt")].setText("[PROMPT], detailed face")
    assert section.summary.full_text() == "face (face, hand), the 2 largest, denoise 0.45"
    job = prepare(form.to_request(), preview=True)
    assert job.passes.detail == [DetailPass(detector=str(detector), classes=["face", "hand"], max_regions=2,
                                            denoise=0.45, prompt="[PROMPT], detailed face")]
    form.passes.set_value("detail", "classes", ["hand"])  # the form's value comes back to the field
    assert fields[("detail", "classes")].text() == "hand"

"""The studio window: assembles the tabs (Create, Layout, Pose, Style packs, Train, Models), the menus, and the
wiring between the worker, the state objects of gui/model and the widgets of gui/ui.

The Create form (gui.model.create_form) builds an AssetRequest; core.request.prepare() turns it
into the job the worker runs. This module never imports torch.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QActionGroup, QDesktopServices, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication, QFileDialog, QMainWindow, QMessageBox, QSplitter, QTabWidget

from asset_studio.core.models import DEFAULT_MODELS_DIR
from asset_studio.core.stylepack import app_home
from asset_studio.errors import UserError
from asset_studio.gui.gallery import GalleryWidget
from asset_studio.gui.model.animate_form import AnimateForm
from asset_studio.gui.model.animation_player import AnimationPlayer
from asset_studio.gui.model.create_form import CreateForm
from asset_studio.gui.model.engine_choice import EngineChoice
from asset_studio.gui.model.layout_state import LayoutState
from asset_studio.gui.model.library import Library
from asset_studio.gui.model.pose_link import PoseLink
from asset_studio.gui.model.wording import gui_words
from asset_studio.gui.model.queue import JobQueue
from asset_studio.gui.model.training import TrainingRun
from asset_studio.gui.model_manager import ModelManager
from asset_studio.gui.settings import Settings
from asset_studio.gui.style_editor import StyleEditor
from asset_studio.gui.ui.animate_tab import AnimateTab
from asset_studio.gui.ui.create_panel import CreatePanel
from asset_studio.gui.ui.download_offer import DownloadOffer
from asset_studio.gui.ui.pose_tab import PoseTab
from asset_studio.gui.ui.train_page import TrainPage
from asset_studio.gui.ui.viewer import Viewer
from asset_studio.gui.ui.wheel_guard import guard_wheel
from asset_studio.gui.worker import GenerationWorker

WARM_UP_DELAY_MS = 700  # let the window paint first, then load torch in the worker thread


class MainWindow(QMainWindow):
    job_submitted = Signal(int, object)  # job_id, the job (tests and the status bar listen)
    error_shown = Signal(str)
    # Re-emitted on the GUI thread once the window has updated itself (the worker's own signals
    # may reach plain Python callables on the worker thread).
    job_finished = Signal(int, list)
    job_failed = Signal(int, str)
    job_cancelled = Signal(int)

    def __init__(self, output_dir: Path | None = None, models_dir: Path | None = None,
                 settings: Settings | None = None, backend_factory=None):
        super().__init__()
        self.settings = s = settings or Settings()
        self.output_dir = Path(output_dir) if output_dir else s.output_dir(app_home() / "output")
        self.models_dir = Path(models_dir) if models_dir else s.models_dir(DEFAULT_MODELS_DIR)
        if output_dir:
            s.set_output_dir(self.output_dir)
        if models_dir:
            s.set_models_dir(self.models_dir)
        self.setWindowTitle("Asset Studio")
        self.resize(1400, 900)
        self.setMinimumSize(760, 520)
        self.last_error = ""
        self._dialogs: list[QMessageBox] = []

        # State (gui/model), then the widgets bound to it (gui/ui and the pages).
        self.layout_state = LayoutState(self)
        self.pose_link = PoseLink(self)
        self.form = CreateForm(self.layout_state, self, pose=self.pose_link)
        self.queue = JobQueue(parent=self)
        self.library = Library(self.output_dir, self)
        self.form.style_id = s.last_style()
        self.form.template_id = s.last_template()
        self.form.model = s.last_model()
        self.form.subject = s.last_subject()
        self.form.ip_adapter, self.form.image_encoder = s.last_ip_adapter(), s.last_image_encoder()
        self.form.layerdiffuse = s.last_layerdiffuse()  # the weights are kept; the switch is per run, like Finishing

        self.create_panel = CreatePanel(self.form, self.queue)
        self.viewer = Viewer()
        self.preview = self.viewer  # the live preview is the viewer's, marked as a preview
        self.gallery = GalleryWidget(self.library)
        self.gallery.batch_count = lambda: self.form.count  # re-roll and variations honour the batch
        self.create_panel.start_dir = str(self.output_dir)
        self.right_splitter = self._splitter(Qt.Orientation.Vertical, [self.viewer, self.gallery], [480, 360], (3, 2))
        self.create_splitter = self._splitter(Qt.Orientation.Horizontal, [self.create_panel, self.right_splitter],
                                              [400, 1000], (0, 1))
        self.create_splitter.setCollapsible(0, False)
        self.style_editor = StyleEditor(self)
        self.model_manager = ModelManager(self.models_dir, parent=self)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.create_splitter, "Create")
        self.layout_tab = self._build_layout_tab()
        if self.layout_tab is not None:
            self.tabs.addTab(self.layout_tab, "Layout")
        # Animate: its own settings and playback; the prompt side is the Create form's
        self.animate_form = AnimateForm(self.form, self)
        self.animate_form.motion_adapter = s.last_motion_adapter()
        self.player = AnimationPlayer(self)
        self.animate_tab = AnimateTab(self.animate_form, self.player, self.queue)
        self.animate_tab.start_dir = str(self.output_dir)
        self.tabs.addTab(self.animate_tab, "Animate")
        self.pose_tab = PoseTab(self.pose_link)
        self.tabs.addTab(self.pose_tab, "Pose")
        self.training = TrainingRun(self)
        self.train_page = TrainPage(self.training)
        self.tabs.addTab(self.style_editor, "Style packs")
        self.tabs.addTab(self.train_page, "Train")
        self.tabs.addTab(self.model_manager, "Models")
        self._build_status_strip()
        self.style_editor.models_dir = str(self.models_dir)
        self.style_editor.export_dir = str(self.output_dir)
        if self.layout_tab is not None:
            self.layout_tab.start_dir = str(self.models_dir)
            self.layout_tab.editor.start_dir = str(self.output_dir)
            guard_wheel(self.layout_tab)
        self.pose_tab.start_dir = str(self.output_dir)
        self.create_panel.pose_badge.picker.start_dir = str(self.models_dir)
        guard_wheel(self.pose_tab)
        self._build_menus()
        # The worker thread starts last, so a failure above never leaves a thread running.
        self.engine_choice = EngineChoice(s, self)
        self.form.engine = self.engine_choice.engine  # what the Create tab says the engine would refuse
        self.download_offer = DownloadOffer(self, lambda: self.output_dir, self.show_error, self.library.refresh)
        self.worker = GenerationWorker(self.output_dir, device=s.device(),
                                       backend_factory=backend_factory or self.engine_choice.backend_factory)
        self.queue.controller = self.worker
        self._connect()
        QApplication.instance().aboutToQuit.connect(self.shutdown)
        self._restore()
        self.model_manager.refresh()
        self.library.refresh()  # the library as it is on disk; thumbnails load as rows are painted
        newest = next((e for e in self.library.entries() if e.kind == "image"), None)
        if newest is not None:  # reachable from every tab from the start
            self.run_status.show_latest(newest.shown())
        self.statusBar().showMessage(f"Output folder: {self.output_dir}")

    # --- building ---------------------------------------------------------------------------

    @staticmethod
    def _splitter(orientation, widgets, sizes, stretch) -> QSplitter:
        splitter = QSplitter(orientation)
        for i, widget in enumerate(widgets):
            splitter.addWidget(widget)
            splitter.setStretchFactor(i, stretch[i])
        splitter.setSizes(sizes)
        return splitter

    def _build_status_strip(self) -> None:
        """Below the tabs: the running job's progress and the latest result, on every tab but
        Create (whose panel and viewer show them); the picture opens the result in the viewer."""
        from PySide6.QtWidgets import QVBoxLayout, QWidget

        from asset_studio.gui.model.run_status import RunStatus
        from asset_studio.gui.ui.status_strip import StatusStrip

        self.run_status = RunStatus(self.queue, self)
        self.status_strip = StatusStrip(self.run_status)
        self.status_strip.open_requested.connect(self.open_result)
        self.status_strip.cancel_requested.connect(self.cancel)
        central = QWidget()
        box = QVBoxLayout(central)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        box.addWidget(self.tabs, 1)
        box.addWidget(self.status_strip)
        self.setCentralWidget(central)

        def show_strip(*_args) -> None:
            self.status_strip.setVisible(self.tabs.currentWidget() is not self.create_splitter
                                         and self.run_status.has_anything())

        self.tabs.currentChanged.connect(show_strip)
        self.run_status.changed.connect(show_strip)
        show_strip()

    def open_result(self, path: str) -> None:
        """A result, large: the Create tab with it selected in the gallery and shown in the viewer
        ("": the viewer's live step preview)."""
        self.tabs.setCurrentWidget(self.create_splitter)
        if not path:
            return
        row = self.library.row(Path(path))
        if row >= 0:
            self.gallery.view.clearSelection()
            self.gallery.select_row(row)
        else:
            self.viewer.state.show_file(Path(path), Path(path).name)

    def _build_layout_tab(self):
        """The layout editor with the ControlNet that follows it; absent in a build without it."""
        try:
            from asset_studio.gui.layout_editor import LayoutEditor
            from asset_studio.gui.ui.layout_tab import LayoutTab
        except ImportError:
            return None
        return LayoutTab(LayoutEditor(), self.layout_state, self.form)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, slot in (("Choose output folder…", self._choose_output),
                           ("Open output folder", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.output_dir)))),
                           ("Choose models folder…", self._choose_models)):
            file_menu.addAction(text, slot)
        file_menu.addSeparator()
        quit_action = file_menu.addAction("Quit", self.close)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)

        engine_menu = self.menuBar().addMenu("&Engine")
        engine_menu.addAction("Where images are made…", self.choose_engine)
        device_menu = engine_menu.addMenu("Device")
        group = QActionGroup(self)
        self.device_actions: dict[str, QAction] = {}
        for key, label in (("auto", "Automatic (GPU when present)"), ("cuda", "NVIDIA GPU (CUDA)"),
                           ("mps", "Apple GPU (Metal)"), ("cpu", "CPU (slow)")):
            action = QAction(label, self, checkable=True)
            action.setData(key)
            group.addAction(action)
            device_menu.addAction(action)
            self.device_actions[key] = action
        self.device_actions.get(self.settings.device(), self.device_actions["auto"]).setChecked(True)
        group.triggered.connect(lambda a: self.set_device(a.data()))

        self.menuBar().addMenu("&Help").addAction("About Asset Studio", lambda: self._info(
            "Asset Studio turns style packs and short subjects into consistent game sprites, "
            "and exports them as background-removed sprite sheets."))

    def _connect(self) -> None:
        w, q = self.worker, self.queue
        # The queue first: the panels read it when the window's own handlers run.
        for signal, slot in ((w.queued, q.on_queued), (w.started, q.on_started), (w.loading, q.on_loading),
                             (w.step, q.on_step), (w.image_saved, q.on_image_saved), (w.finished, q.on_finished),
                             (w.failed, q.on_failed), (w.cancelled, q.on_cancelled), (w.placed, q.on_placed)):
            signal.connect(slot)
        w.started.connect(self._on_started)
        w.step.connect(self._on_step)
        w.stage.connect(self._on_stage)
        w.image_saved.connect(self._on_image_saved)
        w.finished.connect(self._on_finished)
        w.failed.connect(self._on_failed)
        w.cancelled.connect(self._on_cancelled)
        w.notice.connect(q.on_notice)
        w.notice.connect(self._on_notice)
        w.devices_found.connect(self.set_available_devices)

        self.create_panel.generate_requested.connect(self.generate)
        w.frame_saved.connect(self.player.on_frame)
        w.step.connect(self.player.on_step)
        # the window's own re-emits: on the GUI thread, after the window has updated itself
        self.job_finished.connect(lambda job_id, _paths: self.player.finish(job_id, "done"))
        self.job_failed.connect(lambda job_id, _text: self.player.finish(job_id, "failed"))
        self.job_cancelled.connect(lambda job_id: self.player.finish(job_id, "cancelled"))
        self.animate_tab.animate_requested.connect(self.animate)
        self.animate_tab.cancel_requested.connect(self.cancel)
        self.animate_tab.export_requested.connect(self.export_animation)
        self.animate_tab.open_folder_requested.connect(self._open_animation_folder)
        self.animate_tab.get_motion_adapter.connect(self.get_motion_adapter)
        self.animate_tab.get_motion_lora.connect(self.get_motion_lora)
        self.create_panel.cancel_requested.connect(self.cancel)
        for seq in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(seq), self, self.generate)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.cancel)
        QShortcut(QKeySequence("Shift+Escape"), self, self.cancel_all)

        status = self.statusBar().showMessage
        self.form.message.connect(status)
        self.form.changed.connect(self._form_changed)
        self.gallery.rerun_requested.connect(self.submit_job)
        self.gallery.export_requested.connect(self.export_sheet)
        self.gallery.current_changed.connect(self.show_entry)
        self.gallery.style_preview_requested.connect(self.set_style_preview)
        self.gallery.message.connect(status)
        self.viewer.compare_toggled.connect(self.compare)
        self.viewer.detail_submitted.connect(self.submit_job)  # Detail a region…: the same queue as Create
        self.viewer.error.connect(self.show_error)
        self.viewer.regions.fallback_model = self.current_model
        self.gallery.detail_requested.connect(self.viewer.start_detail)
        self.viewer.raw_toggled.connect(self.gallery.raw_box.setChecked)
        self.gallery.raw_box.toggled.connect(self._raw_toggled)
        if self.layout_tab is not None:
            self.layout_tab.get_controlnet.connect(self.get_controlnet)
            self.layout_tab.generate_requested.connect(self.generate)
        self.create_panel.references_box.get_ip_adapter.connect(self.get_ip_adapter)
        self.create_panel.transparent_box.get_layerdiffuse.connect(self.get_layerdiffuse)
        self.pose_tab.error.connect(self.show_error)
        self.pose_tab.used.connect(lambda _kind: self.tabs.setCurrentWidget(self.create_splitter))
        self.create_panel.pose_badge.picker.get_one.connect(lambda: self.get_controlnet("openpose"))
        self.create_panel.pose_badge.edit_requested.connect(lambda: self.tabs.setCurrentWidget(self.pose_tab))
        self.model_manager.models_changed.connect(self._models_changed)
        self.model_manager.use_model.connect(self._use_model)
        self.model_manager.message.connect(status)
        self.style_editor.styles_changed.connect(self.form.reload_styles)
        self.style_editor.pack_renamed.connect(self._pack_renamed)
        self.style_editor.message.connect(status)
        self.model_manager.models_changed.connect(self.train_page.set_models)
        self.train_page.use_style.connect(self.use_trained_style)
        self.engine_choice.changed.connect(lambda: self.worker.set_device(self.worker.device))  # rebuild the backend
        self.engine_choice.changed.connect(lambda: setattr(self.form, "engine", self.engine_choice.engine))
        w.model_missing.connect(self.download_offer.offer)

    # --- the form ---------------------------------------------------------------------------

    def _form_changed(self, name: str) -> None:
        if name == "style_id":
            self.settings.set_last_style(self.form.style_id)
        elif name == "template_id":
            self.settings.set_last_template(self.form.template_id)
        elif name == "ip_adapter":
            self.settings.set_last_ip_adapter(self.form.ip_adapter)
        elif name == "image_encoder":
            self.settings.set_last_image_encoder(self.form.image_encoder)
        elif name == "layerdiffuse":
            self.settings.set_last_layerdiffuse(self.form.layerdiffuse)

    def _pack_renamed(self, old_id: str, new_id: str) -> None:
        from asset_studio.gui.model.pack_rename import follow_rename

        follow_rename(self.settings, old_id, new_id)
        self.form.follow_style_rename(old_id, new_id)

    def select_style(self, style_id: str) -> None:
        self.form.style_id = style_id

    def select_template(self, template_id: str) -> None:
        self.form.template_id = template_id

    def current_style_id(self) -> str:
        return self.form.style_id

    def current_template_id(self) -> str:
        return self.form.template_id

    def set_model(self, ref) -> None:
        self.form.model = str(ref)

    def current_model(self) -> str:
        return self.form.model

    def _family_guess(self) -> str:
        """The chosen model's family by its name, for picking a catalog entry to offer ("sd15" unless it says xl)."""
        return "sdxl" if "xl" in (self.current_model() or "").lower() else "sd15"

    def _models_changed(self, models: list) -> None:
        self.create_panel.set_models(models, fallback=self.settings.last_model())
        if self.layout_tab is not None:
            self.layout_tab.set_controlnets(models)
        self.create_panel.pose_badge.set_controlnets(models)

    def _use_model(self, ref: str) -> None:
        self.form.model = ref
        if ref:
            self.tabs.setCurrentIndex(0)  # "Use for generation" takes the artist back to the form

    def first_run_check(self) -> None:
        """With no model anywhere, open the model manager so the first thing is getting one."""
        def check(models=None):
            models = self.model_manager.local if models is None else models
            if not any(m.kind == "checkpoint" for m in models) and not self.current_model():
                self.tabs.setCurrentWidget(self.model_manager)
                self.statusBar().showMessage("No model yet: download one (SD-Turbo makes images in 1-4 steps) or import a checkpoint.")
        if self.model_manager.scanned:
            check()
        else:
            self.model_manager.models_changed.connect(check, Qt.ConnectionType.SingleShotConnection)

    # --- jobs -------------------------------------------------------------------------------

    def build_job(self):
        """The job the form describes; raises UserError with the sentence to show."""
        return self.form.build_job(self.output_dir)

    def generate(self) -> int | None:
        try:
            runs = self.form.build_runs(self.output_dir)  # one job, or one per pose of a pose set
        except UserError as exc:
            fix = self.form.layout_size_fix()
            if fix is not None:
                self.offer_size_fix(str(exc), fix)
            else:
                self.show_error(str(exc))
            return None
        self.settings.set_last_model(self.current_model())
        self.form.show_seed_used(runs[0].job)
        ids = [self.submit_job(r.job, r.folder, r.name) for r in runs]
        return ids[0]

    def animate(self) -> int | None:
        """The Animate tab's job, through the same queue and worker as Create's."""
        try:
            job = self.animate_form.build_job(self.output_dir)
        except UserError as exc:
            self.show_error(str(exc))
            return None
        self.form.show_seed_used(job)
        job_id = self.submit_job(job)
        self.player.start(job_id, job)
        return job_id

    def export_animation(self) -> None:
        """The gallery's sheet export for the played animation's folder, its name and fps editable."""
        folder = self.player.folder()
        if folder is None:
            self.statusBar().showMessage("No frames yet: animate something first.")
            return
        self.export_sheet([folder], animation=(self.player.name(), self.player.fps))

    def _open_animation_folder(self) -> None:
        folder = self.player.folder()
        if folder is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def submit_job(self, job, folder: Path | None = None, name: str | None = None) -> int:
        job_id = self.worker.submit(job, folder, name)
        self.job_submitted.emit(job_id, job)
        return job_id

    def cancel(self) -> None:
        """Stop the running job (Cancel, Esc); the jobs waiting behind it stay queued."""
        running = self.queue.running()
        if running is not None:
            self.worker.cancel(running.job_id)
            waiting = len(self.queue.waiting())
            self.statusBar().showMessage("Cancelling…" + (f" {waiting} job(s) still queued (Shift+Esc cancels them too)."
                                                          if waiting else ""))
        elif self.worker.busy():
            self.cancel_all()

    def cancel_all(self) -> None:
        """Stop the running job and drop every queued one (Shift+Esc)."""
        if self.worker.busy():
            self.worker.cancel()
            self.statusBar().showMessage("Cancelling everything…")

    def _on_started(self, job_id: int) -> None:
        entry = self.queue.entry(job_id)
        self.statusBar().showMessage(f"Generating: {entry.label}" if entry else "Generating…")

    def _on_step(self, job_id: int, step: int, total: int, preview: QImage) -> None:
        self.run_status.on_preview(job_id, preview)
        if not preview.isNull() and not self.viewer.regions.active:  # regions being drawn keep their image
            entry = self.queue.entry(job_id)
            self.viewer.state.show_step(preview, entry.status if entry else f"step {step} / {total}")

    def _on_stage(self, job_id: int, text: str) -> None:
        """An after-pass in parts (the tiled upscale's tiles): which part runs, in the status bar."""
        if text:
            entry = self.queue.entry(job_id)
            self.statusBar().showMessage(f"Generating: {entry.label} — {text}" if entry else text)

    def _on_image_saved(self, job_id: int, path: str, image: QImage) -> None:
        from asset_studio.core.library import SPRITES_DIR

        path = Path(path)
        sprite = path.parent / SPRITES_DIR / path.name  # on disk before this signal, when the style finishes
        sprite = sprite if sprite.is_file() else None
        if not image.isNull() and not self.viewer.regions.active:  # the worker sends the sprite where there is one
            entry = self.queue.entry(job_id)
            self.viewer.state.show_image(image, str(sprite or path), (sprite or path).name,
                                         entry.job.tiling if entry else "off")
            if self.viewer.state.can_repeat():
                self.viewer.state.set_repeat(True)  # a seamless tile just made: shown repeated, so seams would show
        self.library.add(path, sprite)
        self.run_status.on_image_saved(job_id, str(path), image, str(sprite) if sprite else None)

    def _on_notice(self, job_id: int, text: str) -> None:
        self.statusBar().showMessage(text, 15000)

    def _on_finished(self, job_id: int, paths: list) -> None:
        self.statusBar().showMessage(f"Saved {len(paths)} image(s) to {self.output_dir}")
        self.job_finished.emit(job_id, paths)

    def _on_failed(self, job_id: int, message: str) -> None:
        self.viewer.state.end_preview("failed")
        self.show_error(message)
        self.job_failed.emit(job_id, message)

    def _on_cancelled(self, job_id: int) -> None:
        self.viewer.state.end_preview("cancelled")
        self.statusBar().showMessage("Cancelled; finished images were kept.")
        self.job_cancelled.emit(job_id)

    # --- the viewer -------------------------------------------------------------------------

    def show_entry(self, entry) -> None:
        """The gallery's selected asset, large: its sprite (or raw image with Raw on)."""
        if entry is None:
            return
        job = self.gallery.current_job()
        path = entry.shown(self.library.show_raw)
        self.viewer.state.show_file(path, path.name, job.tiling if job is not None else "off")
        if self.viewer.state.compare:
            self.compare(True)
        else:
            self.viewer.state.set_compare(None)

    def _raw_toggled(self, on: bool) -> None:
        self.viewer.raw_btn.blockSignals(True)
        self.viewer.raw_btn.setChecked(on)
        self.viewer.raw_btn.blockSignals(False)
        self.show_entry(self.gallery.current_entry())

    def compare(self, on: bool) -> bool:
        """A/B: two selected images, the selected asset before and after its after-passes, or its
        raw image against its sprite."""
        state = self.viewer.state
        if not on:
            state.set_compare(None)
            self.show_entry(self.gallery.current_entry())  # back to the asset as the grid shows it
            return False
        entries = self.gallery.selected_entries()
        raw = self.library.show_raw
        if len(entries) == 1 and entries[0].before is not None:
            entry = entries[0]
            state.show_before_after(QImage(str(entry.before)), QImage(str(entry.raw)), str(entry.raw), entry.raw.name)
            return True
        if len(entries) == 2:
            a, b = entries[0].shown(raw), entries[1].shown(raw)
        elif len(entries) == 1 and entries[0].raw is not None and entries[0].sprite is not None:
            a, b = entries[0].raw, entries[0].sprite
        else:
            state.set_compare(None)
            self.statusBar().showMessage("Compare: select an image made with an after-pass (before vs after), "
                                         "one that has a sprite (raw vs sprite), or two images.")
            return False
        state.show_file(a, a.name)
        state.set_compare(QImage(str(b)), f"{a.parent.name}/{a.name}", f"{b.parent.name}/{b.name}", str(b))
        return True

    # --- messages ---------------------------------------------------------------------------

    def offer_size_fix(self, message: str, size: tuple[int, int]) -> QMessageBox:
        """The layout's aspect error with a one-click fix: the size that has the layout's shape."""
        message = gui_words(message)
        self.last_error = message
        self.statusBar().showMessage(message)
        box = QMessageBox(QMessageBox.Icon.Warning, "Asset Studio", message, QMessageBox.StandardButton.Cancel, self)
        use = box.addButton(f"Use {size[0]}×{size[1]} and generate", QMessageBox.ButtonRole.AcceptRole)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def done(*_):
            if box.clickedButton() is use:
                self.form.set_size(*size)
                self.generate()
            if box in self._dialogs:
                self._dialogs.remove(box)

        box.finished.connect(done)
        self._dialogs.append(box)
        box.show()
        self.size_fix_box = box  # reachable for tests
        self.error_shown.emit(message)
        return box

    def set_style_preview(self, image) -> bool:
        """The gallery image as the current style pack's first preview (the artist's own packs)."""
        from asset_studio.gui.model.style_previews import add_preview

        try:
            pack = add_preview(self.form.current_style(), Path(image))
        except UserError as exc:
            self.show_error(str(exc))
            return False
        self.form.reload_styles()
        self.style_editor.reload()
        self.statusBar().showMessage(f"{Path(image).name} is now a preview of the style {pack.name}.")
        return True

    def get_controlnet(self, control_type: str) -> None:
        """The Models page, with a ControlNet for CONTROL_TYPE selected in the catalog where one is listed."""
        self.tabs.setCurrentWidget(self.model_manager)
        family = self._family_guess()
        wanted = f"controlnet-{control_type}-{family}"
        for entry in self.model_manager.catalog:
            if entry.kind == "controlnet" and entry.id in (wanted, f"controlnet-{control_type}-sd15"):
                self.model_manager.select_catalog(entry.id)
                break
        self.statusBar().showMessage("Download a ControlNet here; it appears in the ControlNet boxes once saved.")

    def get_ip_adapter(self) -> None:
        """The Models page with an IP-Adapter for the chosen model's family selected."""
        self.tabs.setCurrentWidget(self.model_manager)
        family = self._family_guess()
        self.model_manager.select_catalog("ip-adapter-plus-sdxl-vit-h" if family == "sdxl" else "ip-adapter-plus-sd15")
        self.statusBar().showMessage("Download an IP-Adapter and its image encoder (ViT-H) here; then choose the "
                                     "adapter in the Create tab's References box.")

    def get_motion_adapter(self) -> None:
        """The Models page with the AnimateDiff motion adapter for the chosen model's family selected."""
        self.tabs.setCurrentWidget(self.model_manager)
        family = self._family_guess()
        entry_id = "animatediff-sdxl-beta" if family == "sdxl" else "animatediff-v1-5-2"
        self.model_manager.select_catalog(entry_id)
        self.statusBar().showMessage(f"Download the motion adapter here; then type {entry_id} in the Animate tab's "
                                     "Adapter box.")

    def get_motion_lora(self) -> None:
        """The Models page with a camera-move motion LoRA selected (they are made for animatediff-v1-5-2)."""
        self.tabs.setCurrentWidget(self.model_manager)
        self.model_manager.select_catalog("motion-lora-zoom-in")
        self.statusBar().showMessage("Download motion LoRAs here; the Animate tab's Add… then offers them.")

    def get_layerdiffuse(self) -> None:
        """The Models page with the chosen LayerDiffuse entry, else the one for the model's family, selected."""
        self.tabs.setCurrentWidget(self.model_manager)
        chosen = self.form.layerdiffuse.strip()
        ids = {e.id for e in self.model_manager.catalog if e.kind == "layerdiffuse"}
        self.model_manager.select_catalog(chosen if chosen in ids else self.form.layerdiffuse_default() or "layerdiffuse-sd15")
        self.statusBar().showMessage("Download LayerDiffuse's weights here; then switch on Transparent in the Create "
                                     "tab's Finishing box.")

    def show_error(self, message: str) -> None:
        """A non-blocking dialog (the window keeps working behind it) and the status bar."""
        message = gui_words(message)  # the core names command-line flags; the window has boxes and tabs
        self.last_error = message
        self.statusBar().showMessage(message)
        box = QMessageBox(QMessageBox.Icon.Warning, "Asset Studio", message, QMessageBox.StandardButton.Ok, self)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda *_: self._dialogs.remove(box) if box in self._dialogs else None)
        self._dialogs.append(box)
        box.show()
        self.error_shown.emit(message)

    def _info(self, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "Asset Studio", message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.show()

    # --- folders, device, export ------------------------------------------------------------

    def set_output_dir(self, path: Path) -> None:
        self.output_dir = Path(path)
        self.settings.set_output_dir(self.output_dir)
        self.worker.set_output_dir(self.output_dir)
        self.library.set_output_dir(self.output_dir)
        self.create_panel.start_dir = self.animate_tab.start_dir = self.pose_tab.start_dir = str(self.output_dir)
        self.statusBar().showMessage(f"Output folder: {self.output_dir}")

    def _choose_output(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder", str(self.output_dir))
        if path:
            self.set_output_dir(Path(path))

    def _choose_models(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Models folder", str(self.models_dir))
        if path:
            self.models_dir = Path(path)
            self.settings.set_models_dir(self.models_dir)
            self.model_manager.set_models_dir(self.models_dir)

    def set_available_devices(self, devices: list) -> None:
        """Offer only the devices this computer has (the worker checks torch after warm-up)."""
        for key, action in self.device_actions.items():
            present = key in ("auto", "cpu") or key in devices
            action.setEnabled(present)
            action.setToolTip("" if present else "Not found on this computer.")
        if not self.device_actions.get(self.settings.device(), self.device_actions["auto"]).isEnabled():
            self.device_actions["auto"].setChecked(True)

    def choose_engine(self) -> None:
        """This computer or ComfyUI servers; the next job runs on the new choice."""
        from asset_studio.gui.ui.engine_dialog import EngineDialog

        if EngineDialog(self.engine_choice, self).exec():
            self.statusBar().showMessage(f"Images are made on: {self.engine_choice.label()}.")

    def set_device(self, device: str) -> None:
        self.settings.set_device(device)
        self.worker.set_device(device)
        self.statusBar().showMessage(f"Device: {device}; the next job runs on it.")

    def export_sheet(self, paths: list, animation: tuple[str, float] | None = None) -> None:
        from asset_studio.gui.gallery import SheetExportDialog

        if not paths:
            self.statusBar().showMessage("Select the images to pack first (sheets are not packed again).")
            return
        dialog = SheetExportDialog([Path(p) for p in paths], self.output_dir, self, animation=animation)
        dialog.message.connect(self.statusBar().showMessage)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.sheet_dialog = dialog  # reachable for tests and for a second look

    # --- persistence ------------------------------------------------------------------------

    def _restore(self) -> None:
        s = self.settings
        if not s.geometry().isEmpty():
            self.restoreGeometry(s.geometry())
        if not s.window_state().isEmpty():
            self.restoreState(s.window_state())
        self._splitters_restored = False
        self.tabs.setCurrentIndex(min(s.current_tab(), self.tabs.count() - 1))

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._splitters_restored:
            # Splitter sizes only stick once the window has its real size.
            self._splitters_restored = True
            QTimer.singleShot(WARM_UP_DELAY_MS, self.worker.warm_up)
            for name, splitter in self._splitters().items():
                state = self.settings.splitter(name)
                if not state.isEmpty():
                    splitter.restoreState(state)

    def _splitters(self) -> dict[str, QSplitter]:
        return {"create": self.create_splitter, "right": self.right_splitter, "gallery": self.gallery.splitter}

    def save_settings(self) -> None:
        s = self.settings
        s.set_geometry(self.saveGeometry())
        s.set_window_state(self.saveState())
        for name, splitter in self._splitters().items():
            s.set_splitter(name, splitter.saveState())
        s.set_current_tab(self.tabs.currentIndex())
        s.set_last_style(self.form.style_id)
        s.set_last_template(self.form.template_id)
        s.set_last_model(self.current_model())
        s.set_last_subject(self.form.subject)
        s.set_last_motion_adapter(self.animate_form.motion_adapter)
        s.set_output_dir(self.output_dir)
        s.set_models_dir(self.models_dir)
        s.sync()

    def closeEvent(self, event) -> None:
        self.save_settings()
        self.shutdown()
        super().closeEvent(event)

    def use_trained_style(self, pack_id: str) -> None:
        """A pack the Train page just made becomes the Create tab's style, in one click."""
        self.form.reload_styles()
        self.style_editor.reload(select_id=pack_id)
        self.form.style_id = pack_id
        self.tabs.setCurrentWidget(self.create_splitter)
        self.statusBar().showMessage(f"Style '{pack_id}' selected: describe an asset and press Generate.")

    def shutdown(self) -> None:
        """Stop the worker and download threads (on close, and when the application quits)."""
        self.worker.shutdown()
        self.training.shutdown()
        self.model_manager.shutdown()

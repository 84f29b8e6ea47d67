"""The Create tab's "Transparent (from the model, LayerDiffuse)" switch, bound to a CreateForm.

The switch, its weights (the catalog's for the model's family unless the artist picks others: a
listed catalog entry, Browse for a folder or patch file, "Get one…" for the Models page), and one
line under them saying why the engine would refuse it with the rest of the form. While it is on, the
Finishing box's "Remove the background" says it is skipped (the model makes the alpha) instead of
changing behind the artist's back: the value is kept for when the switch goes off.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox, QFileDialog, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget,
)

from asset_studio.gui.model.create_form import CreateForm
from asset_studio.gui.model.wording import gui_words
from asset_studio.gui.ui.badge import two_line_label
from asset_studio.gui.ui.references_box import ReferencesBox

TIP = ("RGBA straight from the model (LayerDiffuse, SD 1.5 and SDXL): real alpha for glass, hair and glow "
       "instead of cutting the background out afterwards. Needs LayerDiffuse's weights for the model's family.")
SKIPPED_LINE = "The model makes the alpha: Remove the background is skipped while this is on."


class TransparentBox(QWidget):
    get_layerdiffuse = Signal()  # "Get one…": the Models page with the family's LayerDiffuse entry selected

    def __init__(self, form: CreateForm, cutout_box: QCheckBox):
        super().__init__()
        self.form = form
        self.cutout_box = cutout_box
        self.switch = QCheckBox("Transparent (from the model, LayerDiffuse)")
        self.switch.setToolTip(TIP)
        self.weights_combo = ReferencesBox.model_combo("the model's", "layerdiffuse")
        for i in range(self.weights_combo.count()):  # under the switch, "SDXL, conv" says it; the full name is the tip
            name = self.weights_combo.itemText(i)
            self.weights_combo.setItemText(i, name.removeprefix("LayerDiffuse transparent images").strip(" ()") or name)
        self.weights_combo.setToolTip("LayerDiffuse's weights: a catalog entry (downloaded on the Models page), "
                                      "a folder holding the published files, or the patch's .safetensors file.")
        self.browse_btn = QToolButton()
        self.browse_btn.setText("…")
        self.browse_btn.setToolTip("Choose LayerDiffuse's patch file (.safetensors) on this computer; its transparent "
                                   "decoder is read from the same folder.")
        self.get_btn = QToolButton()
        self.get_btn.setText("Get one…")
        self.get_btn.setToolTip("Download LayerDiffuse's weights for the model's family on the Models page.")
        row = QHBoxLayout()
        row.setContentsMargins(22, 0, 0, 0)
        row.addWidget(self.weights_combo, 1)
        row.addWidget(self.browse_btn)
        row.addWidget(self.get_btn)
        self.skipped = QLabel(SKIPPED_LINE)  # the cut-out is not silently changed: it says why it is skipped
        self.skipped.setWordWrap(True)
        self.skipped.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.skipped.setStyleSheet("color: palette(placeholder-text); font-size: 11px;")
        self.skipped.setContentsMargins(22, 0, 0, 0)
        self.note = two_line_label()  # why the engine would refuse it with the rest of the form
        self.note.setStyleSheet("color: #e0a040; font-size: 11px;")
        self.note.setContentsMargins(22, 0, 0, 0)
        self.note.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.switch)
        layout.addLayout(row)
        layout.addWidget(self.skipped)
        layout.addWidget(self.note)
        self.switch.toggled.connect(lambda on: setattr(form, "transparent", on))
        self.weights_combo.currentTextChanged.connect(
            lambda _t: setattr(form, "layerdiffuse", ReferencesBox.chosen(self.weights_combo)))
        self.browse_btn.clicked.connect(self._browse)
        self.get_btn.clicked.connect(self.get_layerdiffuse)
        form.changed.connect(self._changed)
        form.passes.changed.connect(lambda _s: self._show())
        ReferencesBox.show_choice(self.weights_combo, form.layerdiffuse)
        self._show()

    def _changed(self, name: str) -> None:
        if name == "layerdiffuse" and ReferencesBox.chosen(self.weights_combo) != self.form.layerdiffuse:
            ReferencesBox.show_choice(self.weights_combo, self.form.layerdiffuse)
        # what the note depends on: the switch, the model's family, a start image, references, the passes
        if name in ("transparent", "layerdiffuse", "model", "style_id", "init_image", "references",
                    "use_style_references", "remove_background"):
            self._show()

    def _show(self) -> None:
        f = self.form
        on = bool(f.transparent)
        self.switch.blockSignals(True)
        self.switch.setChecked(on)
        self.switch.blockSignals(False)
        for widget in (self.weights_combo, self.browse_btn, self.get_btn):
            widget.setEnabled(on)
        if not self.weights_combo.hasFocus():
            self.weights_combo.lineEdit().setCursorPosition(0)  # a long entry name shows its beginning
        default = f.layerdiffuse_default()
        index = self.weights_combo.findData(default) if default else -1
        shown = self.weights_combo.itemText(index) if index >= 0 else default
        self.weights_combo.lineEdit().setPlaceholderText(f"the model's: {shown}" if shown else "the model's")
        conflict = gui_words(f.transparency_conflict())
        self.note.set_text(conflict)
        self.note.setVisible(bool(conflict))
        self.skipped.setVisible(on)
        # the cut-out keeps its value; while the model makes the alpha it is greyed out and the line above says
        # why (its own text stays short: a longer one would widen the whole form)
        self.cutout_box.setEnabled(not on)
        self.cutout_box.setToolTip("LayerDiffuse makes the alpha: the cut-out is skipped while Transparent is on."
                                   if on else "Cut the subject out of the background (the sprite's alpha).")

    def _browse(self) -> None:
        from asset_studio.core.models import DEFAULT_MODELS_DIR

        path, _ = QFileDialog.getOpenFileName(self, "LayerDiffuse patch (its decoder beside it)", str(DEFAULT_MODELS_DIR),
                                              "LayerDiffuse (*.safetensors)")
        if path:
            self.form.layerdiffuse = path

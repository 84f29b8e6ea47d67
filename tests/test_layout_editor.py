"""The layout editor, driven like an artist would: add text, move it, undo, save, reopen."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, Qt  # noqa: E402

from asset_studio.core.layout import Box, Layout, ShapeElement, TextElement, load_layout  # noqa: E402


@pytest.fixture
def editor(qtbot):
    from asset_studio.gui.layout_editor import LayoutEditor

    widget = LayoutEditor()
    qtbot.addWidget(widget)
    widget.resize(1100, 640)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_add_text_move_undo_save_reopen(editor, qtbot, tmp_path):
    from asset_studio.gui.layout_editor import LayoutEditor

    with qtbot.waitSignal(editor.layoutChanged):
        index = editor.add_text("PLAY")
    assert [e.text for e in editor.layout().elements] == ["PLAY"]
    start = editor.layout().elements[index].box
    # Arrow keys move the selection by one grid step.
    editor.view.setFocus()
    qtbot.keyClick(editor.view.viewport(), Qt.Key.Key_Right)
    qtbot.keyClick(editor.view, Qt.Key.Key_Down)
    moved = editor.layout().elements[index].box
    assert (moved.x - start.x, moved.y - start.y) == (editor.grid, editor.grid)
    # A mouse drag on the canvas moves it too, snapped to the grid.
    item = editor.items()[index]
    centre = editor.view.mapFromScene(item.pos())
    qtbot.mousePress(editor.view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseMove(editor.view.viewport(), centre + QPoint(30, 0))
    qtbot.mouseMove(editor.view.viewport(), centre + QPoint(60, 20))
    qtbot.mouseRelease(editor.view.viewport(), Qt.MouseButton.LeftButton, pos=centre + QPoint(60, 20))
    dragged = editor.layout().elements[index].box
    assert dragged.x > moved.x and dragged.x % editor.grid == 0
    editor.undo_stack.undo()
    assert editor.layout().elements[index].box == moved
    editor.undo_stack.undo()
    editor.undo_stack.undo()
    assert editor.layout().elements[index].box == start
    editor.undo_stack.redo()
    assert editor.layout().elements[index].box.x == start.x + editor.grid
    path = tmp_path / "play.json"
    editor.save_file(path)
    reopened = LayoutEditor()
    qtbot.addWidget(reopened)
    reopened.open_file(path)
    assert reopened.layout() == editor.layout()
    assert reopened.layout().to_json() == editor.layout().to_json() == load_layout(path).to_json()
    assert json.loads(path.read_text(encoding="utf-8"))["elements"][0]["text"] == "PLAY"
    # Double-click a text element, type: the text changes, and one undo restores it.
    item = reopened.items()[0]
    reopened.show()
    qtbot.waitExposed(reopened)
    qtbot.mouseDClick(reopened.view.viewport(), Qt.MouseButton.LeftButton, pos=reopened.view.mapFromScene(item.pos()))
    qtbot.keyClicks(reopened.text_edit, "GO")  # QTest types Latin-1 only; IME input goes the same way
    assert reopened.layout().elements[0].text == "GO"
    reopened.text_edit.insertPlainText("!")
    assert reopened.layout().elements[0].text == "GO!"
    reopened.undo_stack.undo()
    assert reopened.layout().elements[0].text == "PLAY"


def test_properties_shapes_rotation_and_control_preview(editor, qtbot):
    editor.add_shape("rounded_rect")
    text_index = editor.add_text("시작")
    editor.select(text_index)
    assert editor.set_property("rotation", 30.0)
    assert editor.set_property("letter_spacing", 4.0)
    assert editor.set_property("letter_spacing", 6.0)  # merges with the previous edit: one undo step
    assert not editor.set_property("font", "No Such Font 77")  # refused, with the reason shown
    assert "No Such Font 77" in editor.status.text()
    text = editor.layout().elements[text_index]
    assert (text.rotation, text.letter_spacing, text.font) == (30.0, 6.0, "Noto Sans CJK KR")
    editor.undo_stack.undo()
    assert editor.layout().elements[text_index].letter_spacing == 0.0
    # The preview beside the canvas is exactly core.control_image's rendering of the model.
    from asset_studio.core.control_image import render_control

    editor.update_control_preview()
    expected = render_control(editor.layout(), editor.control_type(), **editor.control_options())
    assert np.array_equal(np.asarray(editor.control_image()), np.asarray(expected))
    # Resize through the properties panel; polygons scale their points.
    tri = editor.add_shape("polygon")
    editor.select(tri)
    editor.set_property("w", 40.0)
    assert editor.layout().elements[tri].bounds().w == 40.0
    editor.delete_selected()
    assert len(editor.layout().elements) == 2


def test_set_layout_and_screenshot(editor, qtbot, tmp_path):
    layout = Layout(512, 256, "#000000", [
        ShapeElement("rounded_rect", box=Box(16, 24, 480, 208), radius=48, fill="#2f6fd6", stroke="#ffffff",
                     stroke_width=8),
        TextElement("PLAY 시작", Box(32, 40, 448, 176), size=96, weight="bold", outline_width=4,
                    outline_color="#0b2a5c"),
    ])
    changes = []
    editor.layoutChanged.connect(lambda: changes.append(1))
    editor.set_layout(layout)
    assert editor.layout() == layout and changes
    assert not editor.undo_stack.canUndo()
    editor.select(1)
    qtbot.wait(200)
    shot = editor.grab()
    assert shot.width() > 800
    shot.save(str(tmp_path / "layout_editor.png"))
    shot.save("/tmp/layout_editor.png")  # for a person to look at


def test_import_image_resize_rotate_and_save_copies_it(editor, qtbot, tmp_path):
    from PIL import Image

    from asset_studio.core.layout import ImageElement

    sketch = tmp_path / "sketch.png"
    Image.new("RGB", (40, 20), "red").save(sketch)
    index = editor.add_image(sketch)
    item = editor.items()[index]
    box = editor.layout().elements[index].box
    assert (box.w, box.h) == (256, 128)  # fitted to half the canvas, aspect kept
    # The corner handle: the top-left corner stays, the size follows the mouse (snapped).
    item._anchor = item.mapToScene(-item.w / 2, -item.h / 2)
    resized = item._resized_box(item._anchor + type(item._anchor)(101, 47))
    editor.commit_geometry(index, resized, None, "Resize")
    editor.commit_geometry(index, None, 45.0, "Rotate")
    element = editor.layout().elements[index]
    assert (element.box.x, element.box.y, element.box.w, element.box.h) == (box.x, box.y, 104, 48)
    assert element.rotation == 45.0
    out = editor.save_file(tmp_path / "saved" / "layout.json")
    assert (tmp_path / "saved" / "sketch.png").is_file()
    reopened = load_layout(out)
    assert isinstance(reopened.elements[0], ImageElement) and reopened.elements[0].path == "sketch.png"


def test_shrunk_control_preview_keeps_thin_strokes_visible(editor, qtbot):
    """A 1-px lineart stroke shown at half size must stay bright, not be averaged into the black."""
    from PySide6.QtGui import QImage

    layout = Layout(1024, 512, "#000000", [
        ShapeElement(kind="rect", box=Box(100, 100, 800, 300), fill="#ffffff", stroke=None, stroke_width=0),
    ])
    editor.set_layout(layout)
    editor.control_combo.setCurrentText("lineart")
    editor.control_label.resize(300, 150)  # a 3.4x shrink
    editor.update_control_preview()
    shown = editor.control_label.pixmap().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    w, h, bpl = shown.width(), shown.height(), shown.bytesPerLine()
    pixels = np.frombuffer(shown.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)[:, :w]
    assert w <= 300 and pixels.max() >= 200


def test_new_elements_land_on_the_snap_grid_and_pauses_split_text_undo(editor, qtbot, monkeypatch):
    from asset_studio.core.layout import element_bounds
    from asset_studio.gui import layout_editor

    assert editor.snap
    editor._set_grid(16)
    for index in (editor.add_shape("rect"), editor.add_text("PLAY")):
        box = element_bounds(editor.layout().elements[index])
        assert box.x % 16 == 0 and box.y % 16 == 0 and box.w % 16 == 0, box

    clock = [1000.0]
    monkeypatch.setattr(layout_editor.time, "monotonic", lambda: clock[0])
    index = len(editor.layout().elements) - 1
    editor.select(index)
    before = editor.undo_stack.count()
    for text in ("PLAY ", "PLAY N", "PLAY NOW"):  # one burst of typing: one step
        clock[0] += 0.2
        editor.set_property("text", text, index)
    assert editor.undo_stack.count() == before + 1
    clock[0] += 5  # a pause, then more typing: a second step
    editor.set_property("text", "PLAY NOW!", index)
    assert editor.undo_stack.count() == before + 2
    editor.undo_stack.undo()
    assert editor.layout().elements[index].text == "PLAY NOW"

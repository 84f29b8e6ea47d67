"""Runs in the gallery: every image of a press of Generate carries its run, the library groups the
entries by it (older images by name and time), runs collapse and stay collapsed for the session,
and the grid shows a header per run while the gallery keeps working with entry rows."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

import asset_studio.gui  # noqa: E402,F401  (pyside_fix before PySide6)
from PIL import Image  # noqa: E402

from asset_studio.core.library import RunInfo, read_run, save_image  # noqa: E402
from gui_fixtures import home  # noqa: E402,F401
from jobs import make_job  # noqa: E402


def _run(folder: Path, subject: str, n: int, started: float, seed: int = 5) -> list[Path]:
    job = make_job(model="m", prompt=f"a {subject}", seed=seed, width=32, height=32, subject=subject)
    job.source.subject = subject
    run = RunInfo(id=f"run-{subject}-{seed}", started=started, subject=subject, count=n)
    paths = []
    for i in range(n):
        path = save_image(Image.new("RGB", (32, 32), (30 * i, 90, 200)), job, folder, seed=seed + i, run=run)
        os.utime(path, (started + i, started + i))
        paths.append(path)
    return paths


def _old(folder: Path, subject: str, seed: int, mtime: float) -> Path:
    """An image saved before runs were recorded: no run chunk."""
    job = make_job(model="m", prompt=subject, seed=seed, width=32, height=32)
    path = save_image(Image.new("RGB", (32, 32), (200, 90, 30)), job, folder, seed=seed)
    os.utime(path, (mtime, mtime))
    return path


def test_the_service_stamps_every_image_of_a_run_and_a_new_run_for_the_next_press(tmp_path):
    from asset_studio.service import run_job
    from scripted_backend import ScriptedBackend

    job = make_job(model="m", prompt="gem", steps=1, width=32, height=32, batch_count=3)
    first = run_job(job, ScriptedBackend(), tmp_path, should_cancel=lambda: False).paths
    second = run_job(job, ScriptedBackend(), tmp_path, should_cancel=lambda: False).paths
    runs = [read_run(p) for p in first + second]
    assert len({r.id for r in runs[:3]}) == 1 and len({r.id for r in runs[3:]}) == 1
    assert runs[0].id != runs[3].id and runs[0].count == 3 and runs[0].subject == "gem"
    assert read_run(tmp_path / "missing.png") is None
    assert RunInfo.from_text('{"id": 5}') is None and RunInfo.from_text("not json") is None


def test_library_groups_entries_by_run_with_a_header_and_keeps_collapsed_runs(home):
    from asset_studio.gui.model.library import Library

    out = home / "out"
    now = time.time()
    potions = _run(out, "potion", 3, now - 600)
    swords = _run(out, "sword", 2, now - 300, seed=50)
    old = [_old(out, "a shield", 7, now - 5000), _old(out, "a shield", 8, now - 4990), _old(out, "a bow", 9, now - 4000)]
    lib = Library(out)
    lib.refresh()
    runs = lib.runs()
    assert [(g.subject, g.count) for g in runs] == [("sword", 2), ("potion", 3), ("a bow", 1), ("a shield", 2)]
    assert {lib.entry(r).raw for r in runs[1].rows} == set(potions)
    assert {lib.entry(r).raw for r in runs[3].rows} == set(old[:2]), "older images: same subject, close in time"
    label = runs[0].label(now)
    assert label.startswith("▾ ") and "sword" in label and "2 images" in label
    assert time.strftime("%H:%M", time.localtime(now - 300)) in label
    assert len(lib.view_rows()) == 4 + 8  # a header per run and every image

    changed = []
    lib.runs_changed.connect(lambda: changed.append(1))
    lib.toggle_run(runs[1].key)
    assert changed and lib.is_collapsed(runs[1].key)
    rows = lib.view_rows()
    assert len(rows) == 4 + 5 and all(row is None for group, row in rows if group.key == runs[1].key)
    assert lib.runs()[1].label(now).startswith("▸ ")
    lib.refresh()  # a rescan keeps the run collapsed (for the session)
    assert lib.is_collapsed(runs[1].key) and len(lib.view_rows()) == 9
    sheets = out / "sheets"
    sheets.mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGBA", (8, 8)).save(sheets / name)
    lib.refresh()
    assert all(g.subject != "exported sprite sheets" for g in lib.runs()), "sheets are kept out unless shown"
    lib.set_show_sheets(True)
    assert [g.count for g in lib.runs() if g.subject == "exported sprite sheets"] == [2], "one group for the sheets"
    lib.set_show_sheets(False)
    lib.add(_run(out, "potion", 1, time.time(), seed=90)[0])  # a new run arrives on top
    assert lib.runs()[0].subject == "potion" and lib.runs()[0].count == 1 and lib.runs()[0].key != runs[1].key
    assert swords[0] in {lib.entry(r).raw for r in lib.runs()[1].rows}


def test_the_grid_shows_headers_collapses_on_click_and_keeps_entry_rows(qtbot, home):
    from asset_studio.gui.gallery import GalleryWidget

    out = home / "out"
    now = time.time()
    _run(out, "potion", 3, now - 600)
    _run(out, "sword", 2, now - 300, seed=50)
    gallery = GalleryWidget(out)
    qtbot.addWidget(gallery)
    gallery.resize(900, 600)
    gallery.show()
    gallery.refresh()
    view, runs = gallery.view, gallery.runs_model
    assert gallery.model.rowCount() == 5 and runs.rowCount() == 7
    assert runs.run_key(0) is not None and "sword" in runs.data(runs.index(0)) and runs.entry_row(1) == 0
    assert not (runs.flags(runs.index(0)) & runs.flags(runs.index(1)).ItemIsSelectable), "headers are not selected"
    # a header spans the grid: the first image sits below it, not beside it
    assert view.visualRect(runs.index(1)).top() >= view.visualRect(runs.index(0)).bottom()

    gallery.select_row(4)  # the oldest potion
    assert gallery.selected_rows() == [4] and gallery.current_entry() is gallery.library.entry(4)
    potion_header = runs.view_row(2) - 1
    rect = view.visualRect(runs.index(potion_header))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert runs.rowCount() == 4 and gallery.library.is_collapsed(runs.run_key(potion_header))
    assert gallery.selected_rows() == []
    gallery.select_row(3)  # selecting an image of a collapsed run opens it
    assert runs.rowCount() == 7 and gallery.selected_rows() == [3]

    # a new image arrives: the selection stays on the same image
    selected = gallery.library.entry(3)
    gallery.add_image(_run(out, "gem", 1, time.time(), seed=99)[0])
    assert runs.rowCount() == 9 and [gallery.library.entry(r) for r in gallery.selected_rows()] == [selected]
    view.selectAll()
    assert len(gallery.selected_rows()) == 6 and len(gallery.export_paths()) == 6
    gallery.grab().save("/tmp/wt-window-gallery-runs.png")


from PySide6.QtCore import Qt  # noqa: E402

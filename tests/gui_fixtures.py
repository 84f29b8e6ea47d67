"""Fixtures the GUI model tests share: a private app home and settings file, and a Create form."""

from __future__ import annotations

import pytest


@pytest.fixture
def home(tmp_path, monkeypatch, qapp):
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ASSET_STUDIO_SETTINGS", str(tmp_path / "settings.ini"))
    return tmp_path


@pytest.fixture
def form(home):
    from asset_studio.gui.model.create_form import CreateForm

    return CreateForm()


def studio_window(qtbot, tmp_path, backend, out=None):
    """The main window over TMP_PATH/out (or OUT) and TMP_PATH/models, its engine made by
    BACKEND() (a scripted one), closed with the test; showing it is the caller's choice."""
    from asset_studio.gui.app import create_app
    from asset_studio.gui.main_window import MainWindow

    create_app([])
    window = MainWindow(output_dir=out or tmp_path / "out", models_dir=tmp_path / "models",
                        backend_factory=lambda device: backend())
    qtbot.addWidget(window)
    return window

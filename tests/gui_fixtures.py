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

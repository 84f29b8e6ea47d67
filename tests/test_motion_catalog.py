"""Motion adapters and motion LoRAs from the model catalog: the entries (licence, ids, pins), a
catalog id resolved to its files in the Hugging Face cache (faked here with tiny models saved by
diffusers) for `asset-studio animate`, one sentence while it is not downloaded, and the Animate
tab's "Get one…" buttons opening the Models page on the matching entry."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import asset_studio.gui  # noqa: F401  (before PySide6: gui/pyside_fix)
from asset_studio.cli import main
from asset_studio.core.models import CATALOG_NAME, DEFAULT_MODELS_DIR, load_catalog

MOTION_KINDS = ("motion_adapter", "motion_lora")


def motion_entries():
    return {e.id: e for e in load_catalog() if e.kind in MOTION_KINDS}


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty private Hugging Face cache, seen by huggingface_hub and by core/model_files."""
    import huggingface_hub.constants as constants

    folder = tmp_path / "hub"
    folder.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(folder))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(folder))
    return folder


def put_in_cache(hub: Path, repo: str, files: dict[str, Path]) -> Path:
    """What `asset-studio models download` leaves: refs/main naming a snapshot holding the files."""
    repo_dir = hub / f"models--{repo.replace('/', '--')}"
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text("c" * 40)
    snapshot = repo_dir / "snapshots" / ("c" * 40)
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        shutil.copy(source, snapshot / name)
    return snapshot


# --- the catalog ------------------------------------------------------------------------------------


def test_motion_entries_parse_carry_a_licence_and_unique_ids():
    catalog = load_catalog()
    ids = [e.id for e in catalog]
    assert len(ids) == len(set(ids))
    entries = motion_entries()
    adapters = {i for i, e in entries.items() if e.kind == "motion_adapter"}
    loras = {i for i, e in entries.items() if e.kind == "motion_lora"}
    assert adapters == {"animatediff-v1-5-2", "animatediff-v1-5-3", "animatediff-sdxl-beta"}
    assert {"motion-lora-zoom-in", "motion-lora-pan-left", "motion-lora-tilt-up", "motion-lora-rolling-clockwise"} <= loras
    assert entries["animatediff-sdxl-beta"].family == "sdxl"
    for entry in entries.values():
        assert entry.license == "apache-2.0", entry.id
        assert entry.repo.startswith("guoyww/animatediff-motion-")
        # diffusers weights only, in safetensors: no pickles, no fp16 duplicates
        assert all(p in ("config.json", "diffusion_pytorch_model.safetensors") for p in entry.allow_patterns)
        assert ("config.json" in entry.allow_patterns) == (entry.kind == "motion_adapter")
        for name, digest in entry.sha256.items():
            assert name in entry.allow_patterns and len(digest) == 64 and int(digest, 16) >= 0
    assert entries["animatediff-v1-5-2"].sha256 and entries["animatediff-sdxl-beta"].sha256
    # Stable Video Diffusion's licence is not a plain commercial one: kept out (the catalog says why)
    assert not any("stable-video-diffusion" in e.repo for e in catalog)
    text = (DEFAULT_MODELS_DIR / CATALOG_NAME).read_text(encoding="utf-8")
    assert "Stable Video Diffusion is deliberately NOT in this catalog" in text


def test_a_motion_adapter_folder_is_listed_as_one(tmp_path):
    from tiny_video_models import build_motion_adapter, build_sdxl_motion_adapter, save_motion_adapter

    from asset_studio.core.models import classify_folder

    assert classify_folder(save_motion_adapter(build_motion_adapter(), tmp_path / "a")) == ("motion_adapter", "sd15")
    assert classify_folder(save_motion_adapter(build_sdxl_motion_adapter(), tmp_path / "b")) == ("motion_adapter", "sdxl")


# --- `animate` with catalog ids -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory):
    from tiny_video_models import build_motion_adapter, save_motion_adapter

    return save_motion_adapter(build_motion_adapter(), tmp_path_factory.mktemp("mm") / "mm")


@pytest.fixture(scope="module")
def motion_lora_file(tmp_path_factory, tiny_sd15_dir, adapter_dir):
    """A random LoRA on the motion modules only, saved as the Hub's diffusers-format motion LoRAs are named."""
    from tiny_video_models import save_motion_lora

    return save_motion_lora(tiny_sd15_dir / "unet", adapter_dir,
                            tmp_path_factory.mktemp("lora") / "diffusion_pytorch_model.safetensors")


def animate(capsys, *args) -> tuple[int, str, str]:
    rc = main(["animate", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def frames_of(folder):
    return [np.asarray(Image.open(p), np.float32) for p in sorted(folder.glob("*.png"))]


@pytest.mark.usefixtures("one_thread_and_a_private_cache")
def test_catalog_ids_run_animate_from_the_cache(tiny_sd15_dir, adapter_dir, motion_lora_file, hub, tmp_path, capsys):
    from asset_studio.core.library import read_job

    entries = motion_entries()
    put_in_cache(hub, entries["animatediff-v1-5-2"].repo,
                 {n: adapter_dir / n for n in entries["animatediff-v1-5-2"].allow_patterns})
    put_in_cache(hub, entries["motion-lora-zoom-in"].repo, {"diffusion_pytorch_model.safetensors": motion_lora_file})
    common = ["a slime", "--model", tiny_sd15_dir, "--motion-adapter", "animatediff-v1-5-2", "--frames", 4,
              "--size", "32x32", "--steps", 1, "--seed", 4]
    results = {}
    for label, extra in (("plain", []), ("zoom", ["--motion-lora", "motion-lora-zoom-in:1.0"])):
        rc, out, err = animate(capsys, *common, *extra, "--out", tmp_path / label)
        assert rc == 0, err
        folder = Path(out.strip())
        results[label] = frames_of(folder)
        assert len(results[label]) == 4
        job = read_job(sorted(folder.glob("*.png"))[0])
        # the job names the catalog ids, not this computer's cache paths: it re-runs anywhere they are downloaded
        assert job.animation.motion_adapter == "animatediff-v1-5-2"
        assert [lora.path for lora in job.animation.motion_loras] == (["motion-lora-zoom-in"] if extra else [])
    assert max(np.abs(a - b).max() for a, b in zip(results["plain"], results["zoom"])) > 1  # the LoRA was applied


@pytest.mark.parametrize("flags, entry_id", [
    (["--motion-adapter", "animatediff-v1-5-3"], "animatediff-v1-5-3"),
    (["--motion-adapter", "MM", "--motion-lora", "motion-lora-pan-left:0.8"], "motion-lora-pan-left"),
])
def test_a_catalog_id_not_downloaded_is_one_sentence(flags, entry_id, tiny_sd15_dir, adapter_dir, hub, tmp_path,
                                                     capsys):
    flags = [str(adapter_dir) if f == "MM" else f for f in flags]
    rc, out, err = animate(capsys, "a slime", "--model", tiny_sd15_dir, *flags, "--frames", 2, "--size", "32x32",
                           "--steps", 1, "--out", tmp_path)
    assert rc == 2 and "Traceback" not in err
    assert f"is not downloaded yet: run `asset-studio models download {entry_id}`" in err
    assert err.strip().count("\n") == 0 and not (tmp_path / "00001").exists()
    assert not any(hub.iterdir())  # nothing was fetched


def test_models_download_says_how_to_use_a_motion_entry(monkeypatch, capsys):
    from asset_studio.core import models

    monkeypatch.setattr(models, "download_entry", lambda entry, **kw: "/cache/snapshot")
    assert main(["models", "download", "motion-lora-tilt-up"]) == 0
    assert "--motion-lora motion-lora-tilt-up:1.0" in capsys.readouterr().out
    assert main(["models", "download", "animatediff-sdxl-beta"]) == 0
    assert "--motion-adapter animatediff-sdxl-beta" in capsys.readouterr().out


# --- the Animate tab's "Get one…" ----------------------------------------------------------------------


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, hub):
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ASSET_STUDIO_SETTINGS", str(tmp_path / "settings.ini"))
    from asset_studio.gui.app import create_app
    from asset_studio.gui.main_window import MainWindow
    from scripted_backend import ScriptedBackend

    create_app([])
    (tmp_path / "models").mkdir(exist_ok=True)
    w = MainWindow(output_dir=tmp_path / "out", models_dir=tmp_path / "models",
                   backend_factory=lambda device: ScriptedBackend())
    qtbot.addWidget(w)
    yield w
    w.close()


def test_get_one_opens_the_models_page_on_the_matching_entry(window, tmp_path):
    tab = window.animate_tab
    window.tabs.setCurrentWidget(tab)
    tab.get_adapter_btn.click()
    assert window.tabs.currentWidget() is window.model_manager
    assert window.model_manager._selected_entry().id == "animatediff-v1-5-2"
    assert "animatediff-v1-5-2" in window.statusBar().currentMessage()
    assert "Licence: apache-2.0" in window.model_manager.description.text()

    window.form.model = "/models/my-sdxl-model.safetensors"  # an SDXL model gets the SDXL adapter
    window.tabs.setCurrentWidget(tab)
    tab.get_adapter_btn.click()
    assert window.model_manager._selected_entry().id == "animatediff-sdxl-beta"

    window.tabs.setCurrentWidget(tab)
    tab.get_lora_btn.click()
    assert window.tabs.currentWidget() is window.model_manager
    assert window.model_manager._selected_entry().kind == "motion_lora"
    window.model_manager.grab().save(str(tmp_path / "models-motion-lora.png"))


def test_add_offers_the_downloaded_motion_loras_by_id(window, hub, tmp_path):
    from asset_studio.gui.ui.animate_tab import downloaded_motion_loras

    assert downloaded_motion_loras() == []
    lora = tmp_path / "diffusion_pytorch_model.safetensors"
    lora.write_bytes(b"not read here")
    put_in_cache(hub, "guoyww/animatediff-motion-lora-pan-left", {lora.name: lora})
    assert downloaded_motion_loras() == [("motion-lora-pan-left", "Motion LoRA: pan left")]
    window.animate_tab._add_lora_ref("motion-lora-pan-left")
    [added] = window.animate_form.motion_loras
    assert (added.path, added.weight, added.name) == ("motion-lora-pan-left", 1.0, "motion-lora-pan-left")
    assert window.animate_tab.motion_lora_list.item(0).text().startswith("motion-lora-pan-left")


@pytest.mark.usefixtures("one_thread_and_a_private_cache")
def test_download_flag_fetches_a_missing_catalog_adapter_first(tiny_sd15_dir, adapter_dir, hub, tmp_path, capsys,
                                                                monkeypatch):
    from asset_studio.core import models

    fetched = []

    def download_entry(entry, **kwargs):  # what the real one leaves behind, without the network
        fetched.append(entry.id)
        return str(put_in_cache(hub, entry.repo, {n: adapter_dir / n for n in entry.allow_patterns}))

    monkeypatch.setattr(models, "download_entry", download_entry)
    args = ["a slime", "--model", tiny_sd15_dir, "--motion-adapter", "animatediff-v1-5-3", "--frames", 2,
            "--size", "32x32", "--steps", 1, "--seed", 1, "--out", tmp_path]
    rc, out, err = animate(capsys, *args)
    assert rc == 2 and "models download animatediff-v1-5-3" in err and fetched == []  # not asked: nothing fetched
    rc, out, err = animate(capsys, *args, "--download")
    assert rc == 0, err
    assert fetched == ["animatediff-v1-5-3"] and len(list(Path(out.strip()).glob("*.png"))) == 2
    rc, out, err = animate(capsys, *args, "--download")  # now cached: not fetched again
    assert rc == 0 and fetched == ["animatediff-v1-5-3"]

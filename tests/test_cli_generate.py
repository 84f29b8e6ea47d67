"""`asset-studio generate` and `rerun` as a user runs them: files, printed paths, embedded jobs,
exact re-runs, and one clear line with exit code 2 for every bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from asset_studio.cli import build_parser, main
from asset_studio.core.library import read_job, read_parameters

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread_and_a_private_cache")  # see conftest


def tiny_args(model, out, *extra):
    return ["generate", "a gold coin", "--model", str(model), "--size", "64x64", "--steps", "2", "--device", "cpu",
            "--out", str(out), *extra]


def test_generate_writes_count_pngs_and_prints_their_paths(tiny_sd15_dir, tmp_path, capsys):
    assert main(tiny_args(tiny_sd15_dir, tmp_path, "--count", "2", "--seed", "7", "--negative", "blurry",
                          "--sampler", "dpmpp_2m_karras", "--cfg", "6.5")) == 0
    printed = capsys.readouterr().out.split()
    files = sorted(tmp_path.glob("*.png"))
    assert [Path(p) for p in printed] == files
    assert [f.name for f in files] == ["00001-7-a-gold-coin.png", "00002-8-a-gold-coin.png"]
    job = read_job(files[1])
    s = job.sampling
    assert (s.seed, s.count, job.prompt.negative, s.sampler, s.cfg_scale) == (8, 1, "blurry", "DPM++ 2M Karras", 6.5)
    assert job.model.checkpoint == str(tiny_sd15_dir.resolve())
    assert read_parameters(files[1]).splitlines() == [
        "a gold coin",
        "Negative prompt: blurry",
        "Steps: 2, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 8, Size: 64x64, Model: tiny-sd15, "
        "Version: asset-studio 0.1.0",
    ]


def test_random_seed_is_announced_and_recorded(tiny_sd15_dir, tmp_path, capsys):
    assert main(tiny_args(tiny_sd15_dir, tmp_path)) == 0
    err = capsys.readouterr().err
    seed = int(err.split("seed:")[1].split()[0])
    assert read_job(next(tmp_path.glob("*.png"))).sampling.seed == seed


def test_rerun_reproduces_the_pixels(tiny_sdxl_dir, tmp_path, capsys):
    init = tmp_path / "init.png"
    Image.new("RGB", (64, 64), (20, 200, 60)).save(init)
    out = tmp_path / "out"
    assert main(tiny_args(tiny_sdxl_dir, out, "--seed", "3", "--init", str(init), "--denoise", "0.6",
                          "--clip-skip", "2")) == 0
    original = Path(capsys.readouterr().out.strip())
    again_dir = tmp_path / "again"
    assert main(["rerun", str(original), "--out", str(again_dir), "--device", "cpu"]) == 0
    rerun = Path(capsys.readouterr().out.strip())
    assert rerun.parent == again_dir and rerun.name.startswith("00001-3-")
    assert np.array_equal(np.asarray(Image.open(original)), np.asarray(Image.open(rerun)))
    assert read_job(rerun) == read_job(original)


def test_single_file_checkpoint_through_the_cli(tiny_sd15_dir, tmp_path, capsys):
    from ldm_convert import save_single_file

    checkpoint = save_single_file(tiny_sd15_dir, tmp_path / "model.safetensors")
    out = tmp_path / "out"
    assert main(tiny_args(checkpoint, out, "--model-config", str(tiny_sd15_dir), "--seed", "1")) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.is_file() and read_job(path).model.config == str(tiny_sd15_dir.resolve())
    assert "Model: model," in read_parameters(path)


def test_sdxl_defaults_to_1024_and_explicit_flags_are_known(tiny_sdxl_dir, tiny_sd15_dir):
    from dataclasses import asdict

    from asset_studio.commands.generate import build_request
    from asset_studio.core.request import prepare

    parser = build_parser()
    args = parser.parse_args(["generate", "x", "--model", str(tiny_sdxl_dir), "--seed", "1"])
    s = prepare(build_request(args)).sampling
    assert (s.width, s.height, s.steps, s.cfg_scale, s.sampler) == (1024, 1024, 25, 7.0, "Euler a")
    assert prepare(build_request(parser.parse_args(["generate", "x", "--model", str(tiny_sd15_dir)]))).sampling.width == 512
    set_by_hand = lambda args: {k: v for k, v in asdict(build_request(args).overrides).items()  # noqa: E731
                                if v not in (None, {}, False)}
    assert set_by_hand(args) == {"seed": 1}
    args = parser.parse_args(["generate", "x", "--model", "m", "--steps", "9", "--size", "640x384", "--clip-skip", "2"])
    assert set_by_hand(args) == {"steps": 9, "width": 640, "height": 384, "clip_skip": 2}


def test_style_and_template_go_through_prepare(monkeypatch, tmp_path):
    """With --style the positional is the subject and only typed flags become overrides."""
    import asset_studio.core.request as request_module
    from asset_studio.commands import generate
    from asset_studio.core.request import Overrides

    seen = {}

    def fake_prepare(request, out_dir=None, **kw):
        seen["request"] = request
        raise SystemExit(0)

    monkeypatch.setattr(request_module, "prepare", fake_prepare)
    args = build_parser().parse_args(["generate", "health potion", "--style", "pixel-rpg", "--template", "icon",
                                      "--field", "color=red", "--steps", "12"])
    with pytest.raises(SystemExit):
        generate.run(args)
    request = seen["request"]
    assert (request.subject, request.style, request.template, request.model) == (
        "health potion", "pixel-rpg", "icon", None)
    assert request.fields == {"color": "red"} and request.overrides == Overrides(steps=12)


def _bad(capsys, argv) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("asset-studio: error: "), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[0]


def test_every_bad_input_is_one_line_and_exit_2(tiny_sd15_dir, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(os.urandom(2048))
    pickle = tmp_path / "model.ckpt"
    pickle.write_bytes(b"\x80\x04 pickle")
    out = tmp_path / "out"
    assert "was not found" in _bad(capsys, tiny_args(tmp_path / "missing.safetensors", out))
    assert "not a valid .safetensors file" in _bad(capsys, tiny_args(corrupt, out))
    assert "pickle file" in _bad(capsys, tiny_args(pickle, out))
    assert "multiples of 8" in _bad(capsys, tiny_args(tiny_sd15_dir, out, "--size", "100x64"))
    assert "is not WIDTHxHEIGHT" in _bad(capsys, tiny_args(tiny_sd15_dir, out, "--size", "big"))
    assert "Unknown sampler 'Euler z'" in _bad(capsys, tiny_args(tiny_sd15_dir, out, "--sampler", "Euler z"))
    assert "is not a file" in _bad(capsys, tiny_args(tiny_sd15_dir, out, "--init", str(tmp_path / "no.png")))
    assert "is not a file" in _bad(capsys, tiny_args(tiny_sd15_dir, out, "--init", str(tmp_path)))
    assert "denoise" in _bad(capsys, tiny_args(tiny_sd15_dir, out, "--init", str(corrupt), "--denoise", "0"))
    assert "--model is required" in _bad(capsys, ["generate", "a coin"])
    assert "needs a layout to follow" in _bad(capsys, tiny_args(tiny_sd15_dir, out, "--controlnet", "x"))
    layout = tmp_path / "l.json"
    layout.write_text('{"width": 64, "height": 64, "elements": []}')
    assert "only followed through a ControlNet" in _bad(capsys, tiny_args(tiny_sd15_dir, out, "--layout", str(layout)))
    big = ["--seed", "18446744073709551615", "--count", "2"]
    assert "seed 18446744073709551615 leaves no room for 2 images" in _bad(capsys, tiny_args(tiny_sd15_dir, out, *big))
    assert "no Asset Studio job" in _bad(capsys, ["rerun", str(_plain_png(tmp_path))])
    assert not out.exists() or not list(out.glob("*.png"))


def _plain_png(folder: Path) -> Path:
    path = folder / "plain.png"
    Image.new("RGB", (8, 8)).save(path)
    return path


def test_console_script_help_is_fast_because_torch_stays_unloaded():
    script = REPO / ".venv" / "bin" / "asset-studio"
    exe = str(script) if script.exists() else None
    if exe is None:
        pytest.skip("the console script is not installed in .venv (pip install -e . makes it)")
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "generate" in result.stdout and "rerun" in result.stdout
    probe = (
        "import sys; from asset_studio.cli import build_parser; "
        "build_parser().parse_args(['generate', 'x', '--model', 'm']); "
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'PySide6') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_prompt_longer_than_clip_reads_is_one_note(tiny_sd15_dir, tmp_path, capsys):
    long_prompt = ", ".join(f"word{i}" for i in range(120))
    assert main(["generate", long_prompt, "--model", str(tiny_sd15_dir), "--size", "64x64", "--steps", "1",
                 "--device", "cpu", "--seed", "1", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if "tokens long" in line]
    assert len(notes) == 1 and notes[0].startswith("asset-studio: note: The prompt is ")
    assert "word119" not in err  # diffusers' own warning (which repeats the cut text) is silenced
    assert len(err) < 500


def test_output_problems_are_found_before_the_model_loads(tiny_sd15_dir, tmp_path, capsys):
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    line = _bad(capsys, tiny_args(tiny_sd15_dir, a_file))
    assert "is a file; the output folder (--out) must be a folder" in line
    assert "must be positive" in _bad(capsys, tiny_args(tiny_sd15_dir, tmp_path, "--size=-64x64"))

"""One path from request to job: the CLI's flags and the Create tab build the same AssetRequest and
prepare() decides every rule once, so the same inputs give the same job."""

from __future__ import annotations

from pathlib import Path

import pytest

from asset_studio.cli import build_parser
from asset_studio.commands.generate import build_request
from asset_studio.core.request import prepare


def cli_job(argv, out):
    args = build_parser().parse_args(["generate", *argv, "--out", str(out)])
    return prepare(build_request(args), out)


def form_job(out, *, style, template, subject, fields, model, negative, size=None, seed=7, layout=None,
             controlnet=None):
    from asset_studio.gui.model.create_form import CreateForm

    form = CreateForm()
    form.style_id, form.template_id = style, template
    form.subject, form.model, form.negative = subject, model, negative
    for name, value in fields.items():
        form.set_field(name, value)
    if size is not None:
        form.set_size(*size)
    form.seed, form.seed_locked = seed, True
    if layout is not None:
        from asset_studio.core.layout import load_layout

        form.layout.set_layout(load_layout(layout))
        form.layout.follow, form.layout.controlnet = True, controlnet
    return prepare(form.to_request(), out)


@pytest.mark.parametrize("style, template, size", [
    ("pixel-art", "icon", None),
    ("hand-painted-fantasy", "ui-banner", None),
    ("flat-vector-icon", "ui-button", (768, 256)),
])
def test_cli_and_create_tab_make_the_same_job(style, template, size, tmp_path, tiny_sd15_dir, qapp):
    fields = {"text": "PLAY"} if template.startswith("ui-") else {}
    argv = ["wooden thing", "--style", style, "--template", template, "--model", str(tiny_sd15_dir),
            "--seed", "7", "--negative", "blurry hands", *[f"--field={k}={v}" for k, v in fields.items()]]
    if size:
        argv += ["--size", f"{size[0]}x{size[1]}"]
    from_cli = cli_job(argv, tmp_path)
    from_form = form_job(tmp_path, style=style, template=template, subject="wooden thing", fields=fields,
                         model=str(tiny_sd15_dir), negative="blurry hands", size=size)
    assert from_form.to_dict() == from_cli.to_dict()
    # The rules decided once: the artist's negative is added to the style's; the model path is absolute.
    assert from_cli.prompt.negative.endswith("blurry hands") and "," in from_cli.prompt.negative
    assert from_cli.model.checkpoint == str(tiny_sd15_dir.resolve())


def test_with_a_layout_both_check_the_aspect_and_save_the_same_control_image(tmp_path, tiny_sd15_dir, qapp):
    import json

    layout = tmp_path / "button.json"
    layout.write_text(json.dumps({"width": 768, "height": 256, "elements": [
        {"type": "text", "text": "PLAY", "size": 120, "box": [40, 40, 688, 176]}]}))
    cn = str(tmp_path / "some-controlnet")
    argv = ["stone button", "--style", "pixel-art", "--template", "ui-button", "--field", "text=PLAY",
            "--model", str(tiny_sd15_dir), "--seed", "7", "--negative", "moss", "--layout", str(layout),
            "--controlnet", cn]
    from_cli = cli_job(argv, tmp_path / "out")
    from_form = form_job(tmp_path / "out", style="pixel-art", template="ui-button", subject="stone button",
                         fields={"text": "PLAY"}, model=str(tiny_sd15_dir), negative="moss", layout=layout,
                         controlnet=cn)
    assert from_form.to_dict() == from_cli.to_dict()
    [unit] = from_cli.controls
    assert unit.type == "lineart"  # the ui-button template's recommendation, on both paths
    assert Path(unit.image).parent == tmp_path / "out" / ".controls"  # beside the outputs, out of the gallery
    from asset_studio.errors import UserError

    with pytest.raises(UserError, match="layout is 768x256 but the image is 512x512; use the size"):
        cli_job([*argv, "--size", "512x512"], tmp_path / "out")
    with pytest.raises(UserError, match="layout is 768x256 but the image is 512x512; use the size"):
        form_job(tmp_path / "out", style="pixel-art", template="ui-button", subject="stone button",
                 fields={"text": "PLAY"}, model=str(tiny_sd15_dir), negative="moss", layout=layout,
                 controlnet=cn, size=(512, 512))

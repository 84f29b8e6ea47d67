"""Every bundled style pack × template prepares and runs end to end on the tiny models.

This is what keeps a setting no stage implements from shipping: a template or style that asks
for something the local backend cannot do fails here, by name, instead of in an artist's hands.
"""

from __future__ import annotations

import pytest
from PIL import Image

from asset_studio.core.request import AssetRequest, Overrides, prepare
from asset_studio.core.stylepack import list_styles
from asset_studio.core.templates import list_templates

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread_and_a_private_cache")]

STYLES = sorted(pack.id for pack in list_styles())
TEMPLATES = sorted(tpl.id for tpl in list_templates())


@pytest.fixture(scope="module")
def backend():
    from asset_studio.engine.backend import LocalBackend

    return LocalBackend(device="cpu")


def test_the_bundle_is_what_this_test_walks():
    assert len(STYLES) >= 4 and len(TEMPLATES) >= 7


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("style", STYLES)
def test_style_and_template_run(style, template, backend, tiny_sd15_dir, tiny_sdxl_dir, tmp_path):
    from asset_studio.core.stylepack import find_style
    from asset_studio.core.templates import find_template
    from asset_studio.engine.background import model_file
    from asset_studio.service import run_job

    pack, tpl = find_style(style), find_template(template)
    model = tiny_sdxl_dir if pack.family == "sdxl" else tiny_sd15_dir
    fields = {name: "GO" for name, spec in {**pack.fields, **tpl.fields}.items() if spec.default is None}
    request = AssetRequest("health potion", style=pack, template=tpl, fields=fields, model=str(model),
                           overrides=Overrides(width=64, height=64, steps=1))
    job = prepare(request, tmp_path)
    if job.finishing.remove_background and job.finishing.method != "key" and model_file(job.finishing.bg_model) is None:
        pytest.skip(f"rembg's {job.finishing.bg_model}.onnx is not here (../shared/models/rembg is absent)")
    result = run_job(job, backend, tmp_path)
    [saved] = result.saved
    assert not result.cancelled and saved.raw.is_file()
    with Image.open(saved.raw) as raw:
        assert raw.size == (64, 64)
    assert (saved.sprite is not None) == job.finishing.active
    if saved.sprite is not None:
        with Image.open(saved.sprite) as sprite:
            assert sprite.mode == "RGBA"

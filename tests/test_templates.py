"""Asset templates as data: the bundled set and the strict template schema."""

from __future__ import annotations

import pytest

from asset_studio.core.templates import CONTROL_TYPES, find_template, list_templates, load_template
from asset_studio.errors import UserError

EXPECTED = {"icon", "item-sprite", "character-sprite", "environment-tile", "ui-button", "ui-banner", "portrait"}


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))


def test_bundled_templates_cover_the_asset_types():
    templates = {t.id: t for t in list_templates()}
    assert EXPECTED <= set(templates)
    for tpl in templates.values():
        assert "{subject}" in tpl.prompt and tpl.negative
        assert tpl.controlnet in CONTROL_TYPES
        assert tpl.width % 8 == 0 and tpl.height % 8 == 0
        # the default size has the template's aspect
        assert tpl.width / tpl.height == pytest.approx(tpl.aspect_ratio, rel=0.05)
    tile = templates["environment-tile"]
    assert tile.tiling == "both" and tile.postprocess.remove_background is False
    assert templates["icon"].postprocess.remove_background is True
    for text_asset in ("ui-button", "ui-banner"):
        assert templates[text_asset].fields["text"].default is None  # the label is required
        assert templates[text_asset].controlnet == "lineart"
    assert templates["ui-banner"].aspect_ratio > 1


def test_user_template_shadows_bundled(tmp_path):
    user = tmp_path / "home" / "templates"
    user.mkdir(parents=True)
    (user / "icon.toml").write_text('id = "icon"\nname = "My icon"\nprompt = "{subject}, my icon"\n')
    assert find_template("icon").name == "My icon"


@pytest.mark.parametrize(
    "text, message",
    [
        ('id = "t"\nname = "T"\nprompt = "{subject}"\nwidth = 100\n', "t.toml: width must be a multiple of 8."),
        ('id = "t"\nname = "T"\nprompt = "{subject}"\naspect = "wide"\n', 't.toml: aspect must look like "3:1".'),
        ('id = "t"\nname = "T"\nprompt = "{subject}"\ncontrolnet = "magic"\n', "t.toml: controlnet must be one of"),
        ('id = "t"\nname = "T"\nprompt = "{subject} {0.__class__}"\n', "t.toml: prompt has a stray '{'"),
        ('id = "t"\nname = "T"\nprompt = "{subject} {label}"\n', "t.toml: prompt uses {label}, which is not declared"),
        ('id = "t"\nname = "T"\nprompt = "no subject"\n', "t.toml: prompt must contain {subject}."),
        ('id = "t"\nname = "T"\nprompt = "{subject}"\nsize = 5\n', "t.toml: size is not a known setting."),
    ],
)
def test_template_schema_errors_name_the_field(tmp_path, text, message):
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(UserError) as err:
        load_template(path)
    assert message in str(err.value)


def test_unknown_template_lists_the_known_ones():
    with pytest.raises(UserError, match=r"No asset template 'sword'; the templates are: .*icon"):
        find_template("sword")

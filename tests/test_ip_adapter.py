"""IP-Adapter references with tiny random adapters and image encoders built from the real classes.

The adapter state dicts follow diffusers' own tests (tests/models/unets/test_models_unet_2d_condition.py:
create_ip_adapter_state_dict / create_ip_adapter_plus_state_dict): "ip_adapter" holds to_k_ip /
to_v_ip per cross-attention layer numbered 1, 3, 5 …, "image_proj" the projection in the original
IP-Adapter key names. They are saved as the single .safetensors files h94/IP-Adapter ships and loaded
through the same functions a user's files go through.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from asset_studio.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread_and_a_private_cache")

ENC_HIDDEN, ENC_PROJ = 24, 16


def _ip_layers(unet) -> dict:
    import torch
    from diffusers.models.attention_processor import IPAdapterAttnProcessor

    out, key_id = {}, 1
    for name in unet.attn_processors.keys():
        cross = None if name.endswith("attn1.processor") else unet.config.cross_attention_dim
        if name.startswith("mid_block"):
            hidden = unet.config.block_out_channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(unet.config.block_out_channels))[int(name[len("up_blocks.")])]
        else:
            hidden = unet.config.block_out_channels[int(name[len("down_blocks.")])]
        if cross is not None:
            sd = IPAdapterAttnProcessor(hidden_size=hidden, cross_attention_dim=cross, scale=1.0).state_dict()
            # Random, not diffusers' zero-free init: a reference must visibly change the image.
            out[f"{key_id}.to_k_ip.weight"] = torch.randn_like(sd["to_k_ip.0.weight"])
            out[f"{key_id}.to_v_ip.weight"] = torch.randn_like(sd["to_v_ip.0.weight"])
            key_id += 2
    return out


def _base_proj(cross: int) -> dict:
    from diffusers.models.embeddings import ImageProjection

    sd = ImageProjection(cross_attention_dim=cross, image_embed_dim=ENC_PROJ, num_image_text_embeds=4).state_dict()
    return {"proj.weight": sd["image_embeds.weight"], "proj.bias": sd["image_embeds.bias"],
            "norm.weight": sd["norm.weight"], "norm.bias": sd["norm.bias"]}


def _plus_proj(cross: int) -> dict:
    """diffusers' create_ip_adapter_plus_state_dict key renaming (the original IP-Adapter names)."""
    import torch
    from diffusers.models.embeddings import IPAdapterPlusImageProjection

    # diffusers rebuilds the resampler from the file with its defaults (depth 4, 64-wide heads).
    proj = IPAdapterPlusImageProjection(embed_dims=ENC_HIDDEN, output_dims=cross, hidden_dims=64, depth=4,
                                        dim_head=64, heads=1, num_queries=4)
    out = {}
    for k, v in proj.state_dict().items():
        if "2.to" in k:
            k = k.replace("2.to", "0.to")
        elif any(f"layers.{n}.ln" in k for n in range(4)):
            k = k.replace(".ln0", ".0.norm1").replace(".ln1", ".0.norm2")
        elif "to_q" in k:
            parts = k.split(".")
            parts[2] = "attn"
            k = ".".join(parts)
        elif "to_out.0" in k:
            parts = k.split(".")
            parts[2] = "attn"
            k = ".".join(parts).replace("to_out.0", "to_out")
        else:
            for n in range(4):
                k = k.replace(f"{n}.ff.0", f"{n}.1.0").replace(f"{n}.ff.1.net.0.proj", f"{n}.1.1")
                k = k.replace(f"{n}.ff.1.net.2", f"{n}.1.3")
        if "to_k" in k:
            parts = k.split(".")
            parts[2] = "attn"
            out[".".join(parts).replace("to_k", "to_kv")] = torch.cat([v, v], dim=0)
        elif "to_v" in k:
            continue
        else:
            out[k] = v
    return out


def save_adapter(unet, path, plus=False):
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(1)
    cross = unet.config.cross_attention_dim
    flat = {f"ip_adapter.{k}": v for k, v in _ip_layers(unet).items()}
    flat.update({f"image_proj.{k}": v.contiguous() for k, v in (_plus_proj(cross) if plus else _base_proj(cross)).items()})
    save_file({k: v.contiguous() for k, v in flat.items()}, str(path))
    return path


def save_encoder(folder, projection_dim=ENC_PROJ, hidden=ENC_HIDDEN):
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(2)
    config = CLIPVisionConfig(hidden_size=hidden, projection_dim=projection_dim, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=37, image_size=32, patch_size=8)
    CLIPVisionModelWithProjection(config).save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from tiny_models import build_tiny_sd15, build_tiny_sdxl

    d = tmp_path_factory.mktemp("ip")
    sd15, sdxl = build_tiny_sd15(), build_tiny_sdxl()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(d / "knight.png")
    Image.fromarray(rng.integers(0, 255, (40, 40, 4), dtype=np.uint8), "RGBA").save(d / "sprite.png")
    return SimpleNamespace(
        dir=d, sd15=sd15, sdxl=sdxl,
        base=save_adapter(sd15.unet, d / "ip-adapter_tiny.safetensors"),
        plus=save_adapter(sd15.unet, d / "ip-adapter-plus_tiny.safetensors", plus=True),
        xl=save_adapter(sdxl.unet, d / "ip-adapter_tiny_sdxl.safetensors"),
        encoder=save_encoder(d / "image_encoder"),
        wide_encoder=save_encoder(d / "wide_encoder", projection_dim=20, hidden=20),
        ref=d / "knight.png", ref2=d / "sprite.png",
    )


def _run(pipe, embeds=None, cfg=2.0):
    import torch

    kwargs = {"ip_adapter_image_embeds": embeds} if embeds is not None else {}
    out = pipe("a knight", num_inference_steps=2, height=64, width=64, guidance_scale=cfg, output_type="np",
               generator=torch.Generator().manual_seed(7), **kwargs)
    return out.images[0]


def test_reference_changes_the_image_and_strength_zero_equals_none(files):
    from asset_studio.engine import ip_adapter as ipa

    pipe = files.sd15
    ipa.unload_ip_adapter(pipe)
    plain = _run(pipe)
    refs = [ipa.Reference(files.ref, 0.0)]
    adapter = ipa.load_ip_adapter(pipe, str(files.base), str(files.encoder), len(refs))
    assert not adapter.plus and adapter.image_width == ENC_PROJ
    ipa.set_reference_scales(pipe, refs)
    embeds = ipa.reference_embeds(pipe, refs, adapter, do_cfg=True)
    assert embeds[0].shape[0] == 2  # negative half + positive half
    np.testing.assert_allclose(_run(pipe, embeds), plain, atol=1e-5)
    refs = [ipa.Reference(files.ref, 1.0)]
    ipa.set_reference_scales(pipe, refs)
    full = _run(pipe, ipa.reference_embeds(pipe, refs, adapter, do_cfg=True))
    assert np.abs(full - plain).mean() > 1e-3
    style = [ipa.Reference(files.ref, 1.0, "style")]
    ipa.set_reference_scales(pipe, style)
    styled = _run(pipe, ipa.reference_embeds(pipe, style, adapter, do_cfg=True))
    assert np.abs(styled - plain).mean() > 1e-4 and np.abs(styled - full).mean() > 1e-4
    ipa.unload_ip_adapter(pipe)


def test_two_references_each_with_its_strength_and_plus_adapter(files):
    from asset_studio.engine import ip_adapter as ipa

    pipe = files.sd15
    ipa.unload_ip_adapter(pipe)
    plain = _run(pipe)
    refs = [ipa.Reference(files.ref, 0.8), ipa.Reference(files.ref2, 0.0)]
    adapter = ipa.load_ip_adapter(pipe, str(files.plus), str(files.encoder), len(refs))
    assert adapter.plus and adapter.image_width == ENC_HIDDEN
    assert len(pipe.unet.encoder_hid_proj.image_projection_layers) == 2
    ipa.set_reference_scales(pipe, refs)
    both = _run(pipe, ipa.reference_embeds(pipe, refs, adapter, do_cfg=True))
    only_first = [ipa.Reference(files.ref, 0.8), ipa.Reference(files.ref2, 0.0)]
    assert np.abs(both - plain).mean() > 1e-3
    # The second reference at strength 0 adds nothing: swapping its picture leaves the image as it is.
    swapped = [only_first[0], ipa.Reference(files.ref, 0.0)]
    ipa.set_reference_scales(pipe, swapped)
    np.testing.assert_allclose(_run(pipe, ipa.reference_embeds(pipe, swapped, adapter, do_cfg=True)), both, atol=1e-5)
    ipa.unload_ip_adapter(pipe)
    np.testing.assert_allclose(_run(pipe), plain, atol=1e-5)


def test_sdxl_adapter_loads_on_sdxl_and_is_refused_on_sd15(files):
    from asset_studio.engine import ip_adapter as ipa

    refs = [ipa.Reference(files.ref, 1.0)]
    adapter = ipa.load_ip_adapter(files.sdxl, str(files.xl), str(files.encoder), 1)
    ipa.set_reference_scales(files.sdxl, refs)
    image = _run(files.sdxl, ipa.reference_embeds(files.sdxl, refs, adapter, do_cfg=True))
    assert image.shape == (64, 64, 3) and np.isfinite(image).all()
    ipa.unload_ip_adapter(files.sdxl)
    with pytest.raises(UserError, match="text conditioning.*do not mix"):
        ipa.load_ip_adapter(files.sd15, str(files.xl), str(files.encoder), 1)


def test_wrong_encoder_bad_files_and_pickles_are_one_sentence(files, tmp_path):
    from asset_studio.engine import ip_adapter as ipa

    with pytest.raises(UserError, match=r"gives 20-wide image embeddings but the IP-Adapter .* takes 16") as err:
        ipa.load_ip_adapter(files.sd15, str(files.base), str(files.wide_encoder), 1)
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="gives 20-wide patch embeddings"):
        ipa.load_ip_adapter(files.sd15, str(files.plus), str(files.wide_encoder), 1)
    (tmp_path / "ip-adapter_sd15.bin").write_bytes(b"pickle")
    with pytest.raises(UserError, match="is a pickle"):
        ipa.resolve_adapter(str(tmp_path / "ip-adapter_sd15.bin"))
    from safetensors.torch import save_file
    import torch

    save_file({"lora_unet_x.weight": torch.zeros(2)}, str(tmp_path / "lora.safetensors"))
    with pytest.raises(UserError, match="is not an IP-Adapter"):
        ipa.inspect_adapter(tmp_path / "lora.safetensors")
    with pytest.raises(UserError, match="needs config.json and model.safetensors"):
        ipa.load_ip_adapter(files.sd15, str(files.base), str(tmp_path), 1)
    with pytest.raises(UserError, match="1 to 4 reference"):
        ipa.load_ip_adapter(files.sd15, str(files.base), str(files.encoder), 5)


def test_embedding_cache_keys_on_content_and_cfg(files, tmp_path):
    from asset_studio.engine import ip_adapter as ipa

    pipe = files.sd15
    adapter = ipa.load_ip_adapter(pipe, str(files.base), str(files.encoder), 1)
    cache = ipa.EmbeddingCache()
    copy = tmp_path / "copy.png"
    copy.write_bytes(files.ref.read_bytes())
    a = ipa.reference_embeds(pipe, [ipa.Reference(files.ref)], adapter, True, cache)[0]
    b = ipa.reference_embeds(pipe, [ipa.Reference(copy)], adapter, True, cache)[0]  # same bytes, other name
    assert b is a and (cache.hits, cache.misses) == (1, 1)
    c = ipa.reference_embeds(pipe, [ipa.Reference(copy)], adapter, False, cache)[0]
    assert cache.misses == 2 and c.shape[0] == 1 and a.shape[0] == 2
    import torch

    assert torch.equal(a[1], c[0]) and not torch.equal(a[0], a[1])  # positive half equal; negative differs
    Image.new("RGB", (40, 40), "red").save(copy)
    ipa.reference_embeds(pipe, [ipa.Reference(copy)], adapter, True, cache)
    assert cache.misses == 3
    with pytest.raises(UserError, match="not a readable image"):
        (tmp_path / "bad.png").write_bytes(b"nope")
        ipa.reference_embeds(pipe, [ipa.Reference(tmp_path / "bad.png")], adapter, True, cache)
    ipa.unload_ip_adapter(pipe)


def test_style_scales_follow_instantstyle_on_real_unet_layouts():
    from asset_studio.engine.ip_adapter import style_scale

    attn = lambda n: SimpleNamespace(attentions=[object()] * n)  # noqa: E731
    plain = SimpleNamespace(attentions=None)
    sdxl = SimpleNamespace(up_blocks=[attn(3), attn(3), plain])
    sd15 = SimpleNamespace(up_blocks=[plain, attn(3), attn(3), attn(3)])
    assert style_scale(sdxl, 0.7) == {"up": {"block_0": [0.0, 0.7, 0.0]}}  # InstantStyle's SDXL setting
    assert style_scale(sd15, 0.7) == {"up": {"block_1": [0.0, 0.7, 0.0]}}
    with pytest.raises(UserError):
        style_scale(SimpleNamespace(up_blocks=[plain]), 1.0)


@pytest.mark.usefixtures("one_thread_and_a_private_cache")
def test_references_run_through_the_stage_plan_and_come_off_afterwards(files, tiny_sd15_dir):
    """A job's references go through the plan's References stage: strength 0 equals no reference,
    a reference changes the image, and the next job finds the model without the adapter."""
    from asset_studio.core.job import Reference
    from asset_studio.engine.backend import LocalBackend
    from jobs import make_job

    backend = LocalBackend(device="cpu")

    def job(*refs):
        j = make_job(tiny_sd15_dir, "a knight", width=64, height=64, steps=2, seed=7, cfg_scale=2.0)
        j.references = list(refs)
        j.model.ip_adapter, j.model.image_encoder = str(files.base), str(files.encoder)
        return j

    [plain] = backend.generate(job())
    [zero] = backend.generate(job(Reference(str(files.ref), 0.0)))
    [full] = backend.generate(job(Reference(str(files.ref), 1.0)))
    as_array = lambda r: np.asarray(r.image, dtype=float)  # noqa: E731
    assert np.abs(as_array(zero) - as_array(plain)).max() <= 1
    assert np.abs(as_array(full) - as_array(plain)).mean() > 0.5
    assert full.job.references == [Reference(str(files.ref), 1.0)]
    assert getattr(backend.load(job()).pipe, "_asset_studio_ip_adapter", None) is None  # taken off again
    [again] = backend.generate(job())
    assert np.array_equal(as_array(again), as_array(plain))
    bad = job(Reference(str(files.ref), 1.0))
    bad.model.image_encoder = str(files.wide_encoder)
    with pytest.raises(UserError, match="image encoder"):
        backend.check(bad)

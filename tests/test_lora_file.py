"""Reading LoRA files from their header alone: layouts, ranks, alphas, counts, trigger words, inspect."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from asset_studio.core.lora_file import parse_lora_file
from asset_studio.errors import UserError

UNET = "down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
TE = "text_model_encoder_layers_0_self_attn_q_proj"


def write(path, tensors, metadata=None):
    save_file({k: np.asarray(v) for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


def kohya(prefix, name, rank, in_f, out_f, alpha=None, conv=False):
    shape_down = (rank, in_f, 3, 3) if conv else (rank, in_f)
    out = {f"{prefix}{name}.lora_down.weight": np.zeros(shape_down, np.float32),
           f"{prefix}{name}.lora_up.weight": np.zeros((out_f, rank, 1, 1) if conv else (out_f, rank), np.float32)}
    if alpha is not None:
        out[f"{prefix}{name}.alpha"] = np.array(alpha, np.float16)
    return out


def test_kohya_sd15_file_with_locon_and_text_encoder(tmp_path):
    tensors = {**kohya("lora_unet_", UNET, 8, 768, 320, alpha=4),
               **kohya("lora_unet_", "down_blocks_0_resnets_0_conv1", 4, 320, 320, alpha=1, conv=True),
               **kohya("lora_te_", TE, 8, 768, 768, alpha=4),
               **kohya("lora_te_", "text_model_encoder_layers_0_mlp_fc1", 8, 768, 3072, alpha=4)}
    meta = {"ss_network_dim": "8", "ss_tag_frequency": json.dumps({"5_pix": {"pixel art": 20, " chest": 3},
                                                                    "1_b": {"pixel art": 2, "barrel": 9}})}
    lora = parse_lora_file(write(tmp_path / "k.safetensors", tensors, meta))
    assert lora.layout == "kohya / LyCORIS LoCon"
    assert lora.counts() == {"unet": 2, "text_encoder": 2}
    assert lora.ranks() == [4, 8]
    assert sorted(lora.alpha(m) for m in lora.modules) == [1.0, 4.0, 4.0, 4.0]
    assert lora.trigger_words() == ["pixel art", "barrel", "chest"]
    assert lora.training_metadata()["ss_network_dim"] == "8"


def test_files_without_alpha_and_bf16_alphas(tmp_path):
    lora = parse_lora_file(write(tmp_path / "a.safetensors", kohya("lora_unet_", UNET, 4, 768, 320)))
    assert lora.layout == "kohya / AUTOMATIC1111 LoRA" and lora.alpha(lora.modules[0]) is None
    # bfloat16 2.5 is 0x4020: numpy has no bfloat16, so write the raw bits and relabel the dtype
    path = write(tmp_path / "b.safetensors", {**kohya("lora_unet_", UNET, 4, 768, 320),
                                              f"lora_unet_{UNET}.alpha": np.array(0x4020, np.uint16)})
    raw = bytearray(path.read_bytes())
    length = int.from_bytes(raw[:8], "little")
    header = raw[8:8 + length].replace(b'"U16"', b'"BF16"')
    path.write_bytes(len(header).to_bytes(8, "little") + bytes(header) + bytes(raw[8 + length:]))
    lora = parse_lora_file(path)
    assert lora.alpha(lora.modules[0]) == 2.5


def test_diffusers_sdxl_loha_lokr_and_dora_layouts(tmp_path):
    peft = {"unet.mid_block.attentions.0.proj_in.lora_A.weight": np.zeros((4, 64), np.float32),
            "unet.mid_block.attentions.0.proj_in.lora_B.weight": np.zeros((64, 4), np.float32),
            "text_encoder_2.text_model.encoder.layers.0.mlp.fc1.lora_A.weight": np.zeros((4, 48), np.float32),
            "text_encoder_2.text_model.encoder.layers.0.mlp.fc1.lora_B.weight": np.zeros((37, 4), np.float32)}
    meta = {"lora_adapter_metadata": json.dumps({"unet.r": 4, "unet.lora_alpha": 8, "text_encoder_2.lora_alpha": 2})}
    lora = parse_lora_file(write(tmp_path / "p.safetensors", peft, meta))
    assert lora.layout == "diffusers / peft LoRA"
    assert lora.counts() == {"unet": 1, "text_encoder_2": 1}
    assert {m.component: lora.alpha(m) for m in lora.modules} == {"unet": 8.0, "text_encoder_2": 2.0}
    assert {m.component: lora.scale(m) for m in lora.modules} == {"unet": 2.0, "text_encoder_2": 0.5}
    meta = {"lora_adapter_metadata": json.dumps({"unet.lora_alpha": 8, "unet.use_rslora": True,
                                                 "unet.alpha_pattern": {"proj_in": 6}})}
    lora = parse_lora_file(write(tmp_path / "rs.safetensors", peft, meta))
    assert {m.component: lora.scale(m) for m in lora.modules} == {"unet": 3.0, "text_encoder_2": 1.0}

    dora = {**peft, "unet.mid_block.attentions.0.proj_in.lora_magnitude_vector": np.ones(64, np.float32),
            "text_encoder_2.text_model.encoder.layers.0.mlp.fc1.lora_magnitude_vector": np.ones(37, np.float32)}
    assert parse_lora_file(write(tmp_path / "d.safetensors", dora)).layout == "diffusers / peft LoRA with DoRA"
    half = dict(peft, **{"unet.mid_block.attentions.0.proj_in.lora_magnitude_vector": np.ones(64, np.float32)})
    with pytest.raises(UserError, match="uses DoRA on only some of its layers"):
        parse_lora_file(write(tmp_path / "h.safetensors", half))

    loha = {f"lora_te1_{TE}.hada_{p}": np.zeros(s, np.float32)
            for p, s in (("w1_a", (32, 4)), ("w1_b", (4, 32)), ("w2_a", (32, 4)), ("w2_b", (4, 32)))}
    loha[f"lora_te1_{TE}.alpha"] = np.array(2.0, np.float32)
    lora = parse_lora_file(write(tmp_path / "h2.safetensors", loha))
    assert (lora.layout, lora.ranks(), lora.counts()) == ("LyCORIS LoHa", [4], {"text_encoder": 1})

    lokr = {f"lora_unet_{UNET}.lokr_w1": np.zeros((4, 4), np.float32),
            f"lora_unet_{UNET}.lokr_w2": np.zeros((80, 192), np.float32)}
    lora = parse_lora_file(write(tmp_path / "k.safetensors", lokr))
    assert (lora.layout, lora.ranks()) == ("LyCORIS LoKr", [])
    lokr[f"lora_unet_{UNET}.dora_scale"] = np.ones((320, 1), np.float32)
    assert parse_lora_file(write(tmp_path / "kd.safetensors", lokr)).layout == "LyCORIS LoKr with DoRA"
    lokr[f"lora_unet_{UNET}.dora_scale"] = np.ones((1, 768), np.float32)
    with pytest.raises(UserError, match=r"magnitudes per input channel \(LyCORIS wd_on_out=False\)"):
        parse_lora_file(write(tmp_path / "ki.safetensors", lokr))


@pytest.mark.parametrize("tensors, message", [
    ({"lora_unet_x.oft_blocks": np.zeros((4, 2, 2))}, "is a LyCORIS OFT / BOFT file, a layout the studio cannot apply"),
    ({"lora_unet_x.diff": np.zeros((4, 4))}, "LyCORIS full-weight"),
    ({"model.diffusion_model.input_blocks.0.0.weight": np.zeros((4, 4))}, "is not a LoRA layout the studio knows"),
    ({"lora_unet_x.lora_down.weight": np.zeros((4, 4))}, "is an incomplete LoRA"),
    ({**{f"lora_unet_x.hada_{p}": np.zeros((4, 4)) for p in ("w1_a", "w1_b", "w2_a", "w2_b")},
      "lora_unet_y.lora_down.weight": np.zeros((4, 4)), "lora_unet_y.lora_up.weight": np.zeros((4, 4))},
     "mixes LoRA and LyCORIS LoHa layers"),
    ({"lora_unet_x.lora_down.weight": np.zeros((4, 4)), "lora_unet_x.lora_up.weight": np.zeros((4, 4)),
      "lora_unet_x.alpha": np.array(np.nan, np.float32)}, "NaN or infinite alpha"),
])
def test_layouts_that_cannot_be_applied_are_named(tmp_path, tensors, message):
    with pytest.raises(UserError, match=message):
        parse_lora_file(write(tmp_path / "f.safetensors", tensors))


def test_inspect_prints_the_layout_family_ranks_and_trigger_words(tmp_path, capsys):
    from asset_studio.cli import main
    from asset_studio.core.lora_sidecar import Sidecar, write_sidecar

    tensors = {**kohya("lora_unet_", UNET, 8, 2048, 640, alpha=4),
               **kohya("lora_te1_", TE, 8, 768, 768, alpha=4),
               **kohya("lora_te2_", TE, 8, 1280, 1280, alpha=4)}
    path = write(tmp_path / "pix.safetensors", tensors, {"ss_base_model_version": "sdxl_base_v1-0"})
    write_sidecar(path, Sidecar(trained_words=["pixel sprite", "outline"], base_model="SDXL 1.0", version_id=7))
    assert main(["lora", "inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Layout:        kohya / AUTOMATIC1111 LoRA" in out
    assert "Family:        SDXL (from its layer sizes)" in out
    assert "Rank:          8\n" in out and "Alpha:         4\n" in out
    assert "Modules:       UNet 1, text encoder 1, text encoder 2 1" in out
    assert "Trigger words: pixel sprite, outline" in out
    assert "ss_base_model_version = sdxl_base_v1-0" in out
    assert main(["lora", "inspect", "--json", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["family"] == "sdxl"
    assert main(["lora", "inspect", str(tmp_path / "x.ckpt")]) == 2
    assert "only .safetensors weights are accepted" in capsys.readouterr().err

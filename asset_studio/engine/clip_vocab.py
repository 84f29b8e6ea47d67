"""CLIP tokenizer files (vocab.json, merges.txt) built offline from CLIP's own BPE merges.

Single-file checkpoints carry no tokenizer, and we never download one behind the user's back.
open_clip ships OpenAI's `bpe_simple_vocab_16e6.txt.gz`; the Hugging Face CLIP tokenizer files
are a deterministic re-encoding of it (the same construction as CLIP's simple_tokenizer.py).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from functools import lru_cache
from pathlib import Path

from asset_studio.errors import UserError

N_MERGES = 49152 - 256 - 2  # CLIP uses the first 48,894 merges


def bpe_file() -> Path:
    # Locate the data file without importing open_clip (which imports torch and timm).
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("The package open_clip_torch is missing; reinstall Asset Studio.")
    path = Path(list(spec.submodule_search_locations)[0]) / "bpe_simple_vocab_16e6.txt.gz"
    if not path.is_file():
        raise UserError(f"CLIP's vocabulary file is missing from open_clip: {path}.")
    return path


def bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


@lru_cache(maxsize=1)
def clip_vocab_and_merges() -> tuple[dict[str, int], list[str]]:
    lines = gzip.open(bpe_file()).read().decode("utf-8").split("\n")
    merges = lines[1 : N_MERGES + 1]
    vocab = list(bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(vocab)}, merges


def write_clip_tokenizer(folder: Path, pad_token: str = "<|endoftext|>") -> Path:
    """Write a Hugging Face CLIPTokenizer folder. pad_token is "!" for OpenCLIP (SD 2.x, SDXL's second)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = clip_vocab_and_merges()
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "do_lower_case": True,
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": pad_token,
        "errors": "replace",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    special = {k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")
    return folder

"""How many CLIP tokens a prompt takes, counted without torch or transformers.

CLIP reads 75 tokens of a prompt (77 with its start and end marks) and ignores the rest. The
count uses CLIP's own byte-pair merges (open_clip's bpe_simple_vocab_16e6.txt.gz, which the
project ships for its offline tokenizers, engine/clip_vocab.py) with the word-splitting rule of
CLIP's simple_tokenizer, so it matches what the pipeline's tokenizer counts. Where the file is
missing the count falls back to a word-based estimate and says so.
"""

from __future__ import annotations

import gzip
import html
import re
import threading
from dataclasses import dataclass
from functools import lru_cache

CLIP_READS = 75  # tokens of the prompt itself (77 minus the start and end marks)
# CLIP's simple_tokenizer pattern (letters, digits one by one, runs of other symbols).
_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


@dataclass(frozen=True)
class TokenCount:
    count: int
    exact: bool  # False: a word-based estimate

    def label(self) -> str:
        prefix = "" if self.exact else "≈"
        text = f"{prefix}{self.count} / {CLIP_READS} tokens"
        return text if self.exact else text + " (estimate)"

    @property
    def over(self) -> bool:
        return self.count > CLIP_READS


class ClipCounter:
    def __init__(self, merges: list[str]):
        import regex

        self._ranks = {tuple(m.split()): i for i, m in enumerate(merges)}
        self._byte_map = _bytes_to_unicode()
        self._pattern = regex.compile(_PATTERN, regex.IGNORECASE)
        self._cache: dict[str, int] = {}

    def count(self, text: str) -> int:
        text = " ".join(html.unescape(html.unescape(text)).split()).lower()
        total = 0
        for word in self._pattern.findall(text):
            n = self._cache.get(word)
            if n is None:
                n = self._cache[word] = len(self._bpe("".join(self._byte_map[b] for b in word.encode("utf-8"))))
            total += n
        return total

    def _bpe(self, token: str) -> list[str]:
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            pairs = {(a, b) for a, b in zip(word, word[1:])}
            best = min(pairs, key=lambda p: self._ranks.get(p, float("inf")))
            if best not in self._ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return word


def _bytes_to_unicode() -> dict[int, str]:
    from asset_studio.engine.clip_vocab import bytes_to_unicode  # plain Python: no torch in that module

    return bytes_to_unicode()


_loading_lock = threading.Lock()
_loader: threading.Thread | None = None


def preload() -> None:
    """Read CLIP's merges on a background thread (most of a second), so the form never waits."""
    global _loader
    with _loading_lock:
        if _loader is None:
            _loader = threading.Thread(target=clip_counter, name="clip-vocab", daemon=True)
            _loader.start()


def ready() -> bool:
    return clip_counter.cache_info().currsize > 0


@lru_cache(maxsize=1)
def clip_counter() -> ClipCounter | None:
    """CLIP's counter, or None where its vocabulary file (or the regex package) is missing."""
    try:
        from asset_studio.engine.clip_vocab import N_MERGES, bpe_file

        lines = gzip.open(bpe_file()).read().decode("utf-8").split("\n")
        return ClipCounter(lines[1:N_MERGES + 1])
    except Exception:  # noqa: BLE001 - any failure means the estimate, never a broken form
        return None


def estimate(text: str) -> int:
    """About 1.3 tokens per word and one per punctuation mark: CLIP's usual ratio on English prompts."""
    words = re.findall(r"\w+", text)
    marks = re.findall(r"[^\w\s]", text)
    return round(len(words) * 1.3) + len(marks)


def count_tokens(text: str, wait: bool = True) -> TokenCount:
    """The count of TEXT; with wait=False, an estimate until preload() has read the vocabulary."""
    counter = clip_counter() if wait or ready() else None
    if counter is None:
        return TokenCount(estimate(text), exact=False)
    return TokenCount(counter.count(text), exact=True)

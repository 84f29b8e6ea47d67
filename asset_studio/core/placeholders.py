"""The `{name}` substitution used by style prompts and asset templates.

Deliberately not str.format: a template from a shared style pack or a field value typed by a user
must never reach Python attributes (`{0.__class__}`), indexing or format specs (`{x:>99999}`).
Grammar: `{name}` with name = a letter or `_`, then letters, digits, `_`; `{{` and `}}` are literal
braces; any other brace is an error the template's author sees. Substitution is one pass: a value
that itself contains `{…}` is inserted as it is, never expanded again.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|[{}]")


class PlaceholderError(ValueError):
    """A template string with a brace that is neither `{name}`, `{{` nor `}}`."""


def _scan(text: str):
    """Yield (literal_text, name_or_None) pieces of a template."""
    pos = 0
    for match in _TOKEN.finditer(text):
        literal = text[pos:match.start()]
        token = match.group(0)
        pos = match.end()
        if token == "{{":
            yield literal + "{", None
        elif token == "}}":
            yield literal + "}", None
        elif match.group(1) is not None:
            yield literal, match.group(1)
        else:
            snippet = text[max(0, match.start() - 10):match.end() + 10]
            raise PlaceholderError(
                f"has a stray '{token}' near '{snippet}'; write {{name}} for a field, {{{{ or }}}} for a brace"
            )
    yield text[pos:], None


def names(text: str) -> list[str]:
    """The placeholder names of a template, in order of first use. Raises PlaceholderError."""
    seen: list[str] = []
    for _, name in _scan(text):
        if name is not None and name not in seen:
            seen.append(name)
    return seen


def fill(text: str, values: dict[str, str]) -> str:
    """Replace each `{name}` with ``values[name]`` literally. Raises KeyError for a missing name."""
    out = []
    for literal, name in _scan(text):
        out.append(literal)
        if name is not None:
            out.append(str(values[name]))
    return "".join(out)

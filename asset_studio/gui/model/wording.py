"""The core's sentences in the window's words.

prepare() and the service speak to the command line too, naming flags ("pass --model PATH_OR_ID",
"(--layout)"). In the window the artist has boxes and tabs instead; this table says where.
Flags with no counterpart in the window are left as they are.
"""

from __future__ import annotations

import re

# (pattern, replacement): the most specific first.
_RULES = [
    (r"\s*\(on the command line, [^)]*\)", ""),
    (r"; pass --model PATH_OR_ID\.", "; choose a model in the Model box of the Create tab (or get one on the Models page)."),
    (r"\(--field (\w+)=VALUE\)", r"(the \1 box of the Create tab)"),
    (r"--field (\w+)=VALUE", r"the \1 box of the Create tab"),
    (r"\(--template\)", "(the Template box)"),
    (r"\(--layout\)", "(the Layout tab)"),
    (r"\(--controlnet\)", "(the ControlNet box of the Layout tab)"),
    (r"\(--crisp-text\)", "(crisp text)"),
    (r"\(--max-size\)", "(Max page size)"),
    (r"\(--out\)", "(the sheet file)"),
    (r"\(--no-postprocess\)", "(Finishing off)"),
    (r"\(--ip-adapter\)", "(the Adapter box under References)"),
    (r"pass --image-encoder", "choose one in the Encoder box under References"),
    (r"--no-style-references", "untick \"Use the style's references\""),
    # the animate command's sentences, in the Animate tab's words
    (r"\(--motion-adapter\), or --image and --svd", "(the Adapter box of the Animate tab), or Picture to video"),
    (r"OpenPose ControlNet: add --controlnet\.", "OpenPose ControlNet: choose one in the ControlNet box of the Animate tab."),
    (r"follows a pose sequence here: add --pose-set\.", "follows a pose sequence here: choose a pose set."),
    (r"the picture \(--image\) and the model \(--svd\)", "the picture and the SVD model"),
    (r"--model is required unless a style pack recommends one\.", "Choose a model in the Model box, or a style pack that recommends one."),
    (r"--model PATH_OR_ID", "a model in the Model box"),
    (r"leave out --count", "set the batch count to 1"),
    (r"\(--pose or --pose-set\)", "(Use this pose on the Pose tab)"),
    (r"pass --force to replace it", "agree to replace it"),
    # transparent generation (LayerDiffuse): the switch and the cut-out are in the Create tab's Finishing box
    (r"leave out --transparent and cut the sprite out with --remove-bg",
     "switch Transparent off and tick \"Remove the background\" in Finishing"),
    (r"cut the sprite out with --remove-bg", "tick \"Remove the background\" in Finishing"),
    (r"run `asset-studio models download ([\w.-]+)`", r"download \1 on the Models page"),
]


def gui_words(message: str) -> str:
    for pattern, replacement in _RULES:
        message = re.sub(pattern, replacement, message)
    return message

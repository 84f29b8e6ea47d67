"""Asset Studio: consistent game sprites from style packs, through diffusers, out as sprite sheets."""

__version__ = "0.1.0"

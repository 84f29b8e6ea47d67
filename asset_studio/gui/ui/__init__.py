"""Widgets bound to the gui.model objects: they show a model's state and write the artist's edits back."""

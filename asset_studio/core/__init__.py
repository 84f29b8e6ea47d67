"""Pure data and transformations: style packs, templates, layouts, jobs, library, sheets.

Never imports torch or Qt, so it stays fast to import and easy to test.
"""

"""The one exception type that carries a sentence meant for the user."""


class UserError(Exception):
    """Bad input the user can fix. Its message is one clear sentence, shown as-is.

    The CLI prints it on stderr and exits 2; the GUI shows it in a dialog. Anything else
    that escapes is a bug.
    """

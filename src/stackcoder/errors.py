"""Errors that are the user's to fix: the CLI prints them as one line and exits non-zero."""


class UserError(Exception):
    """Bad input (a missing path, a malformed recipe, a corrupt archive...): no traceback shown."""

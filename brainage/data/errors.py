"""Errors of the data stage: each names the subject, the file and what was expected."""


class DataError(ValueError):
    """Bad input data. The message says which subject/file and what was expected."""

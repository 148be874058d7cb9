"""Exceptions that mean "the user's input is wrong"; the CLI turns them into one-line messages."""


class MiniclipError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


class DataError(MiniclipError):
    """A captions file or image folder that cannot be used."""


class CheckpointError(MiniclipError):
    """A checkpoint file that is missing, corrupt or of another architecture."""

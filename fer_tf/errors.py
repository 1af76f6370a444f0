"""The one exception type the command line turns into a one-line message and a non-zero exit."""


class FerTfError(Exception):
    """A problem the user can fix: the message names the file, line or flag, and the fix."""

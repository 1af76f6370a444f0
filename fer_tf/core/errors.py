"""The one exception type the command line turns into a one-line message and a non-zero exit."""


class FerTfError(Exception):
    """A problem the user can fix: the message names the file, line or flag, and the fix."""


class UsageError(FerTfError):
    """A bad flag or --hparams value: one line naming the flag and what is allowed, exit 2."""
    exit_status = 2

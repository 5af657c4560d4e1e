"""The one exception family a user sees.

The CLI prints an ``AudiobenchError`` as one line on stderr and exits with its ``exit_code`` (2, or 3 for a
source that cannot be reached); anything else is a bug and keeps its traceback. Messages say what was wrong,
where (file and line, clip id, host) and what to do.
"""


class AudiobenchError(Exception):
    """A problem the user can act on (bad input, missing stage output, refused option)."""

    exit_code = 2  # what the command line exits with

    def __init__(self, *args: object, exit_code: int | None = None) -> None:
        super().__init__(*args)
        if exit_code is not None:  # a stage's own status passed on (a pipeline stopping where fetch stopped)
            self.exit_code = exit_code


class InputFormatError(AudiobenchError):
    """A published list or user file that does not parse; the message names file and line."""


class SourceUnreachable(AudiobenchError):
    """A download host (or the proxy before it) does not answer: nothing was marked, rerun when it does.

    Its own exit status (3) lets a script tell "no network, try later" from bad input (2).
    """

    exit_code = 3

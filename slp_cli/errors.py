"""One exception type for every user-facing failure.

Stages raise ``SlpError`` with a single line that names the file or sample, the problem and
what to do; the CLI prints that line and exits non-zero (never a traceback for bad input).
"""


class SlpError(Exception):
    """A problem with the user's input or environment, reported as one clear line."""

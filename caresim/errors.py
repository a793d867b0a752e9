"""The one exception type for user mistakes.

The CLI prints a `CaresimError` without a traceback and exits with status 2; anything
else is a bug and keeps its traceback.
"""


class CaresimError(Exception):
    """A user mistake: bad scenario, missing file, output folder in the way, bad option."""

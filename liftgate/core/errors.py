"""The failures the platform expects, each carrying the exit code a command ends with.

A `LiftgateError` is a failure the code can explain in one message: the command line prints
the message and exits with `exit_code` (`liftgate.app.cli.common` does it for every
command). Two kinds cover almost everything:

- `InputError` (exit 2): the input is wrong: a file, a column, a value, an unknown name.
  `parameter` names the input at fault in the raiser's own words (a function parameter,
  say ``window``) and leads the message; the command line puts the flag the user typed
  (``--window``) there instead.
- `CheckFailed` (exit 1): the input is fine, but a check on it failed or the request is
  refused in the current state (a gate, an approval, a rollout that is not paused).

`InputError` is a `ValueError`, so callers that catch bad values keep catching it.

>>> error = InputError("expected a time span like 1h; got 'soon'", parameter="window")
>>> error.exit_code, error.parameter, str(error)
(2, 'window', "window: expected a time span like 1h; got 'soon'")
>>> error.message
"expected a time span like 1h; got 'soon'"
>>> CheckFailed("the validation gate failed").exit_code
1
>>> LiftgateError("no previous champion", exit_code=2).exit_code
2
"""

from __future__ import annotations

#: A failed check, or a request refused in the current state.
CHECK_FAILED = 1
#: Bad input: a file, a column, a value, an unknown name.
BAD_INPUT = 2


class LiftgateError(Exception):
    """An expected failure: `str(error)` says what is wrong, `exit_code` how a command ends."""

    exit_code: int = CHECK_FAILED

    def __init__(self, message: str, *, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class InputError(LiftgateError, ValueError):
    """The input is wrong; `parameter` names which input, in the raiser's words."""

    exit_code = BAD_INPUT

    def __init__(self, message: str, *, parameter: str | None = None):
        super().__init__(f"{parameter}: {message}" if parameter else message)
        self.message = message
        self.parameter = parameter


class CheckFailed(LiftgateError):
    """The input is fine, but a check on it failed or the request is refused."""

    exit_code = CHECK_FAILED

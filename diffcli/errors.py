"""The errors diffcli reports to people: one line saying what went wrong and what to do.

Every user mistake (a bad file, a bad value, a missing model) raises one of these; the CLI prints
`diffcli: error: <message>` on stderr and exits with `exit_code`, never with a traceback, and the
Python API lets them propagate.

Below the CLI, a message names a parameter by its Python name in backticks ("`steps` must be at least
1"), which is what a library user passed; the CLI rewrites each backticked name into its flag
("--steps must be at least 1"), see cli/flags.py.
"""

from __future__ import annotations


class DiffcliError(Exception):
    """A failure the user can act on. `hint` says what to do about it."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message and its hint as one line."""
        if self.hint:
            return f"{self.message}; {self.hint}"
        return self.message

    def __str__(self) -> str:
        return self.one_line()


class UsageError(DiffcliError):
    """An option or argument with a value the command cannot use (exit code 2, like click)."""

    exit_code = 2


class InterruptedRun(DiffcliError):
    """The user pressed Ctrl-C; whatever could be saved was saved (exit code 130, like a shell).

    `saved` names what was kept (a checkpoint path) and `model` the model to resume, so each front end
    can say how to continue in its own words."""

    exit_code = 130

    def __init__(
        self, message: str, hint: str | None = None, *, model: str | None = None, saved: str | None = None
    ) -> None:
        super().__init__(message, hint)
        self.model = model
        self.saved = saved

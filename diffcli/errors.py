"""The errors diffcli reports to people: one line saying what went wrong and what to do.

Every user mistake (a bad file, a bad option, a missing model) raises one of these; the CLI prints
`diffcli: error: <message>` on stderr and exits with `exit_code`, never with a traceback.
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


class UsageError(DiffcliError):
    """An option or argument with a value the command cannot use (exit code 2, like click)."""

    exit_code = 2


class InterruptedRun(DiffcliError):
    """The user pressed Ctrl-C; whatever could be saved was saved (exit code 130, like a shell)."""

    exit_code = 130

"""Errors a user can cause. The CLI turns these into one clear line and exit code 2."""


class UserError(Exception):
    """A problem with the user's input (file, option, data), not a bug in mmftraj."""


def choice_error(kind: str, value: str, valid) -> UserError:
    """An error naming the bad value and every valid choice, e.g. for an unknown task."""
    return UserError(f"unknown {kind} {value!r}; valid choices: {', '.join(sorted(valid))}")

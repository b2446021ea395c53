"""Errors a user can cause. The CLI turns these into one clear line and exit code 2."""


class UserError(Exception):
    """A problem with the user's input (file, option, data), not a bug in mmftraj."""


def choice_error(kind: str, value: str, valid) -> UserError:
    """An error naming the bad value and every valid choice, e.g. for an unknown task."""
    return UserError(f"unknown {kind} {value!r}; valid choices: {', '.join(sorted(valid))}")


# numpy's legacy RandomState (Push-T's starts) takes seeds below 2**32, torch's below 2**64
MAX_SEED = 2**32 - 1


def check_seed(seed: int | None, what: str = "--seed") -> None:
    """Refuse a seed numpy, torch or gymnasium would fail on, before any work starts."""
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise UserError(f"{what} must be 0 to {MAX_SEED} (2**32 - 1), got {seed}")

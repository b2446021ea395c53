"""Stopping a training run cleanly: SIGINT and SIGTERM wait for the step in flight, a second
signal or a step past its grace period stops at once. The exceptions carry the exit status a
shell expects (128 + the signal's number)."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


class Interrupted(KeyboardInterrupt):
    """Training stopped by SIGINT or SIGTERM after finishing its step and saving; `code` is the
    exit status a shell expects (130, 143)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.code = signum, 128 + signum


class Aborted(KeyboardInterrupt):
    """Training stopped by a signal without saving: a second signal, or a step still running
    `signal_grace_s` after the first. `code` is 128 + the signal's number."""

    def __init__(self, signum: int, why: str):
        super().__init__(why)
        self.signum, self.code = signum, 128 + signum


@contextmanager
def deferred_signals(grace_s: float = 0.0):
    """SIGINT and SIGTERM only set a flag, which the loop reads between steps, so the checkpoint it
    then saves is a whole step's state. A second signal, or the end of `grace_s` seconds after the
    first (a SIGALRM timer; 0: no limit), raises Aborted at once (no save). Main thread only;
    the loop calls state["settled"]() once it has seen the flag, which stops the timer."""
    state = {"signum": None, "settled": lambda: None}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def stop_timer():
        signal.setitimer(signal.ITIMER_REAL, 0)

    def handler(signum, frame):
        if state["signum"] is not None:
            stop_timer()
            raise Aborted(signum, f"a second signal ({signal.Signals(signum).name})")
        state["signum"] = signum
        if grace_s > 0:
            signal.setitimer(signal.ITIMER_REAL, grace_s)

    def expired(signum, frame):
        raise Aborted(state["signum"], f"the step did not finish within {grace_s:g} s of the signal")

    state["settled"] = stop_timer
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, expired)
    try:
        yield state
    finally:
        stop_timer()
        for s, h in previous.items():
            signal.signal(s, h)

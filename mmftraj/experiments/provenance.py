"""Seeds that choose never report: which training and evaluation seeds chose each preset.

`configs/provenance.yaml` records, per preset, what was chosen and on which training seeds and
evaluation seeds it was measured. A report asks `overlaps` whether its own seeds meet any of
them; its report.md then says so next to its numbers (they are not held out from the choice).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import load_yaml
from ..errors import UserError
from ..resources import resource_path

REGISTRY = "provenance.yaml"


@dataclass(frozen=True)
class Choice:
    preset: str  # "<task>-<preset>" or "report-<name>"
    chose: str
    training_seeds: frozenset[int]
    eval_seeds: tuple[tuple[int, int], ...]  # inclusive ranges
    source: str

    def eval_overlap(self, seeds: range) -> list[tuple[int, int]]:
        """The parts of `seeds` (a report's evaluation seeds) inside this choice's ranges."""
        out = []
        for first, last in self.eval_seeds:
            lo, hi = max(first, seeds.start), min(last, seeds.stop - 1)
            if lo <= hi:
                out.append((lo, hi))
        return out


def load_choices() -> dict[str, Choice]:
    """Every recorded choice by preset name; a malformed entry is one line naming it."""
    raw = load_yaml(resource_path("configs", REGISTRY)) or {}
    choices = {}
    for name, entry in raw.items():
        try:
            ranges = tuple((int(a), int(b)) for a, b in entry["eval_seeds"])
            choices[name] = Choice(name, str(entry["chose"]), frozenset(int(s) for s in entry["training_seeds"]),
                                   ranges, str(entry["source"]))
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"configs/{REGISTRY}: entry {name!r} needs chose, training_seeds, eval_seeds "
                            f"([[first, last], ...]) and source ({e})") from None
    return choices


def overlaps(presets: list[str], training_seeds, eval_seeds: range,
             choices: dict[str, Choice] | None = None) -> list[str]:
    """One sentence per preset whose choice used any of these seeds, or that has no record."""
    choices = load_choices() if choices is None else choices
    notes = []
    for preset in presets:
        choice = choices.get(preset)
        if choice is None:
            notes.append(f"`{preset}`: no record of which seeds chose its settings (configs/{REGISTRY})")
            continue
        trained = sorted(set(training_seeds) & choice.training_seeds)
        scored = choice.eval_overlap(eval_seeds)
        if trained or scored:
            seeds = f"training seed{'s' if len(trained) > 1 else ''} {', '.join(map(str, trained))}"
            parts = ([seeds] if trained else []) + [
                f"evaluation seeds {a}–{b}" if a != b else f"evaluation seed {a}" for a, b in scored]
            notes.append(f"`{preset}` chose {choice.chose} on {' and '.join(parts)}, which this report uses "
                         f"too (see {choice.source})")
    return notes

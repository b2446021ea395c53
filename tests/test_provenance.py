"""Seeds that chose a preset are named when a report uses them (configs/provenance.yaml)."""

import pytest

from mmftraj.errors import UserError
from mmftraj.experiments import provenance
from mmftraj.experiments.provenance import Choice, load_choices, overlaps
from mmftraj.experiments.report import held_out_note, load_report_config

CHOICES = {"maze2d-umaze": Choice("maze2d-umaze", "the planner", frozenset({0}), ((0, 99), (1000, 1099)), "doc")}


def test_a_report_on_the_tuning_seeds_is_named_and_one_on_fresh_seeds_is_not():
    hit = overlaps(["maze2d-umaze"], [0, 1, 2], range(1000, 1050), CHOICES)
    assert hit == ["`maze2d-umaze` chose the planner on training seed 0 and evaluation seeds 1000–1049, which this "
                   "report uses too (see doc)"]
    assert overlaps(["maze2d-umaze"], [3, 4], range(20000, 20300), CHOICES) == []
    edge = overlaps(["maze2d-umaze"], [5], range(1099, 1200), CHOICES)  # the ranges are inclusive
    assert edge and "evaluation seed 1099," in edge[0] and "training" not in edge[0]
    assert "no record" in overlaps(["maze2d-large"], [0], range(1), CHOICES)[0]


def test_every_recorded_choice_loads_and_a_malformed_one_is_one_line(tmp_path, monkeypatch):
    choices = load_choices()
    assert {"maze2d-umaze", "report-standard", "pusht"} <= set(choices)
    assert all(a <= b for c in choices.values() for a, b in c.eval_seeds)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "provenance.yaml").write_text("x:\n  chose: y\n  training_seeds: [1]\n")
    monkeypatch.setattr(provenance, "resource_path", lambda *parts: tmp_path.joinpath(*parts))
    with pytest.raises(UserError, match="entry 'x' needs"):
        load_choices()


def test_the_standard_report_says_it_is_not_held_out_and_a_fresh_one_says_it_is():
    standard = load_report_config("standard")
    assert held_out_note(standard).startswith("**Not held out from tuning:** `maze2d-umaze`")
    fresh = load_report_config("standard", overrides=["eval_seed=40000", "seeds=[3,4,5]"])
    assert held_out_note(fresh).startswith("**Held out:**")

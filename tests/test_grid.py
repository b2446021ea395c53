"""The grid runner the report and the studies share: shards split the cells, a stored record is
never made again, records are stored as they finish, and a cell trains through the real runs."""

import json
import tempfile

import pytest

from mmftraj.errors import UserError
from mmftraj.experiments.grid import parse_shard, read_record, run_grid, train_cell, write_record

TINY = ["train.threads=1", "eval.n_samples=64", "eval.steps=[1]", "train.steps=2"]


def test_parse_shard_counts_from_zero_or_one():
    assert parse_shard(None) == (0, 1)
    assert parse_shard("1/3") == (1, 3)
    assert parse_shard("1/2", first=1) == (0, 2) and parse_shard("2/2", first=1) == (1, 2)  # pusht_grid.py's --shard
    for text, first, message in (("2/2", 0, "need 0 <= I < N"), ("0/2", 1, "need 1 <= I <= N"),
                                 ("a/2", 0, "takes I/N")):
        with pytest.raises(UserError, match=message):
            parse_shard(text, first)


def test_shards_share_a_grid_of_real_runs_and_stored_cells_are_not_made_again(tmp_path, monkeypatch):
    cells = [("fm", 0), ("mmf", 0), ("meanflow-tmodel", 0)]
    store, made = tmp_path / "store", []

    def path(cell):
        return store / f"{cell[0]}-s{cell[1]}.json"

    def make(cell, stored):
        assert stored is None
        made.append(cell)
        assert not path(cell).exists()
        results, wall = train_cell("toy2d", cell[0], cell[1], f"{cell[0]}-s{cell[1]}", tmp_path / "runs",
                                   overrides=TINY)
        return {"label": cell[0], "tangent": results["tangent"], "steps": results["steps"], "wall_s": wall}

    def grid(shard, train=True):
        return run_grid(cells, make, load=lambda c: read_record(path(c)),
                        save=lambda c, r: write_record(path(c), r), shard=shard, train=train)

    records, missing = grid((0, 2))
    assert made == [cells[0], cells[2]] and missing == [cells[1]] and set(records) == {cells[0], cells[2]}
    assert json.loads(path(cells[2]).read_text())["tangent"] == "model"  # the label's own option was applied
    records, missing = grid((1, 2))
    # the other shard's cells read
    assert made == [cells[0], cells[2], cells[1]] and missing == [] and len(records) == 3
    records, missing = grid((0, 1), train=False)
    assert made == [cells[0], cells[2], cells[1]] and missing == [] and records[cells[1]]["steps"] == 2
    # a finished run folder is resumed, not refused; without a runs folder nothing is left behind
    assert train_cell("toy2d", "fm", 0, "fm-s0", tmp_path / "runs", overrides=TINY)[0]["steps"] == 2
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    assert train_cell("toy2d", "fm", 1, "fm-s1", overrides=TINY)[0]["steps"] == 2
    assert list((tmp_path / "tmp").iterdir()) == []


def test_an_incomplete_record_is_made_again_from_what_it_holds(tmp_path):
    write_record(tmp_path / "a.json", {"scores": {"x": 1}})
    complete = lambda cell, record: "y" in record["scores"]  # noqa: E731
    records, _ = run_grid(["a"], lambda cell, stored: {"scores": {**stored["scores"], "y": 2}},
                          load=lambda c: read_record(tmp_path / f"{c}.json"),
                          save=lambda c, r: write_record(tmp_path / f"{c}.json", r, sort_keys=True), complete=complete)
    assert records["a"] == {"scores": {"x": 1, "y": 2}} == read_record(tmp_path / "a.json")
    assert (tmp_path / "a.json").read_text() == '{\n "scores": {\n  "x": 1,\n  "y": 2\n }\n}\n'
    assert read_record(tmp_path / "missing.json") is None

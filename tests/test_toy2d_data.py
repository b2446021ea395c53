"""toy2d's finite training sets and held-out modes (the generalization study's data)."""

import math

import pytest
import torch

from mmftraj.data.toy2d import CHUNK, draw, mode_of, sample_data, training_set
from mmftraj.errors import UserError
from mmftraj.tasks import toy2d


def test_modes_are_the_eight_squares_and_the_eight_centres():
    corners = torch.tensor([[-1.5, 0.5], [-1.5, -1.5], [-0.5, 1.5], [-0.5, -0.5], [0.5, 0.5], [0.5, -1.5],
                            [1.5, 1.5], [1.5, -0.5], [-1.5, -0.5], [2.5, 0.5]])
    assert mode_of("checkerboard", corners).tolist() == [1, 0, 3, 2, 5, 4, 7, 6, -1, -1]  # empty square, off board
    angles = torch.arange(8) * math.pi / 4
    centres = 2 * torch.stack([torch.cos(angles), torch.sin(angles)], 1) + 0.1
    assert mode_of("eight_gaussians", centres).tolist() == list(range(8))
    x = sample_data("checkerboard", 8000, torch.Generator().manual_seed(0))
    counts = torch.bincount(mode_of("checkerboard", x), minlength=8)
    assert counts.min() > 850 and (mode_of("checkerboard", x) >= 0).all()  # every point in one of 8 squares


def test_fixed_training_sets_nest_and_leave_out_held_out_modes():
    for hold_out in ([], [5], [0, 7]):
        small = training_set("checkerboard", 100, seed=3, hold_out=hold_out)
        large = training_set("checkerboard", CHUNK + 500, seed=3, hold_out=hold_out)
        assert small.shape == (100, 2) and large.shape == (CHUNK + 500, 2)
        assert torch.equal(small, large[:100])
        assert not torch.isin(mode_of("checkerboard", large), torch.tensor(hold_out or [-2])).any()
    assert not torch.equal(training_set("checkerboard", 100, 3), training_set("checkerboard", 100, 4))
    batch = draw("eight_gaussians", 1000, torch.Generator().manual_seed(0), [2, 3])
    assert batch.shape == (1000, 2) and not torch.isin(mode_of("eight_gaussians", batch), torch.tensor([2, 3])).any()


def test_unchanged_defaults_draw_the_same_points():
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(draw("two_moons", 64, g1), sample_data("two_moons", 64, g2))


@pytest.mark.parametrize("data, message", [
    (dict(hold_out=[8]), "checkerboard has modes 0-7, got \\[8\\]"),
    (dict(hold_out=list(range(8))), "leaves no mode"),
    (dict(distribution="two_moons", hold_out=[0]), "needs a distribution with numbered modes"),
    (dict(size=-1), "data.size must be 0"),
])
def test_bad_data_settings_are_one_line_errors(tmp_path, data, message):
    cfg = toy2d.default_config()
    for k, v in data.items():
        setattr(cfg.data, k, v)
    cfg.train.steps = 2
    with pytest.raises(UserError, match=message):
        toy2d.train(cfg, tmp_path / "run", progress=False)


def test_a_short_run_on_a_fixed_set_with_a_held_out_square_reports_both_measures(tmp_path):
    cfg = toy2d.default_config("checkerboard")
    cfg.data.size, cfg.data.hold_out = 300, [5]
    cfg.train.steps, cfg.train.ckpt_every, cfg.train.threads = 20, 0, 1
    cfg.eval.n_samples, cfg.eval.steps = 400, [1, 2]
    out = toy2d.train(cfg, tmp_path / "run", progress=False)
    assert set(out["held_out_share"]) == set(out["swd_whole"]) == {"1-step", "2-step"}
    assert all(0 <= v <= 1 for v in out["held_out_share"].values())
    assert out["held_out_share_whole"] == pytest.approx(1 / 8, abs=0.05)  # the whole board, for scale
    assert 0 < out["swd_training_set"] < 0.5 and out["swd_data_floor"] < 0.5

"""Strict typed configs: YAML overlays and --set overrides."""

import pytest

from mmftraj.config import apply_overrides, from_dict, load_yaml, merge_dict, to_dict
from mmftraj.errors import UserError
from mmftraj.tasks.toy2d import Config


def test_overrides_are_typed_and_nested():
    cfg = apply_overrides(Config(), ["train.lr=3e-4", "objective.variant=meanflow", "eval.steps=[1, 8]"])
    assert cfg.train.lr == 3e-4 and isinstance(cfg.train.lr, float)
    assert cfg.objective.variant == "meanflow" and cfg.eval.steps == [1, 8]


def test_bad_values_are_refused():
    with pytest.raises(UserError, match="is not one of"):
        apply_overrides(Config(), ["objective.variant=ddpm"])
    with pytest.raises(UserError, match="expected true/false"):
        apply_overrides(Config(), ["train.compile=3"])
    with pytest.raises(UserError, match="must look like"):
        apply_overrides(Config(), ["train.lr"])


def test_yaml_roundtrip_and_merge(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  steps: 17\nmodel:\n  hidden: 8\n")
    cfg = merge_dict(Config(), load_yaml(path))
    assert cfg.train.steps == 17 and cfg.model.hidden == 8
    assert from_dict(Config, to_dict(cfg)) == cfg
    path.write_text("train:\n  stepz: 1\n")
    with pytest.raises(UserError, match="train.stepz"):
        merge_dict(Config(), load_yaml(path))
    path.write_text("train: [1, 2\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_yaml(path)


def test_resume_applies_training_settings_and_refuses_model_changes():
    from mmftraj.run_request import RunRequest, resume_config

    def asked(overrides=(), **options):
        return RunRequest("toy2d", overrides=overrides, **options)

    saved = apply_overrides(Config(), ["model.hidden=32", "train.threads=1"])
    cfg = resume_config(saved, asked(["model.hidden=32", "train.threads=2", "eval.n_samples=50"], steps=900,
                                     device="cpu", seed=7))
    assert (cfg.train.threads, cfg.eval.n_samples, cfg.train.steps) == (2, 50, 900)
    assert cfg.train.seed == saved.train.seed  # the seed names the run: a resume never reseeds it
    assert cfg.model.hidden == 32 and saved.train.threads == 1  # the saved config itself is left alone
    with pytest.raises(UserError, match=r"changes model\.hidden"):
        resume_config(saved, asked(["model.hidden=64"]))
    with pytest.raises(UserError, match=r"objective\.variant"):
        resume_config(saved, asked(["objective.variant=fm"]))
    with pytest.raises(UserError, match=r"objective\.variant"):
        resume_config(saved, asked(objective="fm"))
    resolved = resume_config(saved, asked(objective=saved.objective.variant)).objective
    assert resolved.tangent == "model"  # a config saved with tangent "auto" resumes with its variant's own
    resolved.tangent = saved.objective.tangent
    assert resolved == saved.objective

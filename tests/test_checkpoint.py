"""Checkpoints: exact round trip, atomic writes, and a clear CheckpointError for every bad file."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from discrete_transformer import fileio
from discrete_transformer.config import ModelConfig, TrainConfig
from discrete_transformer.model import DataSpec, DiscreteTransformer, SelectMode
from discrete_transformer.rundir import RunDir
from discrete_transformer.training import checkpoint as ck
from discrete_transformer.training.checkpoint import CheckpointError, load_checkpoint, save_run_checkpoint

SPEC = DataSpec(input_names=("a", "b"), output_names=("y",), input_rms=(3.0, 1.5), target_rms=4.0, T=6)
MODEL_CFG = ModelConfig(n_layers=2, n_heads=2, n_mlps=1, mlp_hidden=8, mlp_bilinear=2)
TRAIN_CFG = TrainConfig(steps=10, population=1, restarts=1)


def _model(population: int = 1, seed: int = 3) -> DiscreteTransformer:
    m = DiscreteTransformer(MODEL_CFG, SPEC, population=population, seed=seed)
    with torch.no_grad():  # make every tensor, buffers included, differ from a fresh model
        g = torch.Generator().manual_seed(seed + 100)
        for p in m.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.3)
        m.ms.mul_(1.7)
        m.ms_seen.fill_(True)
        m.stats_frozen.fill_(True)
    return m.eval()


def _predict(m: DiscreteTransformer, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        try:
            mode = SelectMode(hard=True, hard_attention=True)
        except TypeError:
            mode = SelectMode(hard=True)
        return m(x, mode, 0.02)


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, DiscreteTransformer]:
    m = _model()
    save_run_checkpoint(tmp_path, m, MODEL_CFG, TRAIN_CFG, SPEC, {"seed": 3, "note": "unit test"})
    return tmp_path, m


def _rewrite_json(d: Path, edit) -> None:
    doc = json.loads((d / "model.json").read_text())
    edit(doc)
    (d / "model.json").write_text(json.dumps(doc))


def _one_line_error(excinfo: pytest.ExceptionInfo, filename: str) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    assert filename in msg
    return msg


def test_round_trip_identical_state_and_predictions(saved: tuple[Path, DiscreteTransformer]) -> None:
    d, m = saved
    loaded, mcfg, tcfg, spec, meta = load_checkpoint(d)
    assert (mcfg, tcfg, spec) == (MODEL_CFG, TRAIN_CFG, SPEC)
    assert meta == {"seed": 3, "note": "unit test"}
    assert not loaded.training
    want, got = m.state_dict(), loaded.state_dict()
    assert want.keys() == got.keys()
    for k in want:
        assert want[k].dtype == got[k].dtype and torch.equal(want[k], got[k]), k
    x = torch.randint(-4, 5, (32, SPEC.T, SPEC.n_in)).float()
    assert torch.equal(_predict(m, x), _predict(loaded, x))


def test_round_trip_population_and_float64(tmp_path: Path) -> None:
    m = _model(population=3).double()
    save_run_checkpoint(tmp_path, m, MODEL_CFG, TRAIN_CFG, SPEC, {})
    loaded, *_ = load_checkpoint(tmp_path)
    assert loaded.population == 3
    assert next(loaded.parameters()).dtype == torch.float64
    x = torch.rand(8, SPEC.T, SPEC.n_in, dtype=torch.float64)
    assert torch.equal(_predict(m, x), _predict(loaded, x))


def test_files_and_format_fields(saved: tuple[Path, DiscreteTransformer]) -> None:
    d, _ = saved
    assert sorted(p.name for p in d.iterdir()) == ["model.json", "model.safetensors"]  # no temp files
    doc = json.loads((d / "model.json").read_text())
    assert doc["format"] == "dtx-checkpoint" and doc["version"] == 1
    assert doc["package_version"]
    assert doc["data_spec"]["input_names"] == ["a", "b"]
    assert doc["model_config"]["n_layers"] == 2
    # The weights file is a real safetensors file, readable without this package.
    from safetensors import safe_open

    with safe_open(str(d / "model.safetensors"), "pt") as f:
        assert f.metadata()["format"] == "dtx-checkpoint"
        assert "readout.theta" in f.keys()  # noqa: SIM118 (safe_open has no __contains__)


def test_overwrite_is_atomic_and_leaves_no_temp_files(saved: tuple[Path, DiscreteTransformer], monkeypatch) -> None:
    d, m = saved
    before = (d / "model.json").read_bytes(), (d / "model.safetensors").read_bytes()

    def boom(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(fileio.os, "replace", boom)
    with pytest.raises(OSError):
        save_run_checkpoint(d, _model(seed=9), MODEL_CFG, TRAIN_CFG, SPEC, {})
    monkeypatch.undo()
    assert ((d / "model.json").read_bytes(), (d / "model.safetensors").read_bytes()) == before
    assert sorted(p.name for p in d.iterdir()) == ["model.json", "model.safetensors"]
    load_checkpoint(d)  # still valid


def test_missing_directory_and_files(tmp_path: Path, saved: tuple[Path, DiscreteTransformer]) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope")
    d, _ = saved
    (d / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="not found") as e:
        load_checkpoint(d)
    _one_line_error(e, "model.safetensors")
    (d / "model.json").unlink()
    with pytest.raises(CheckpointError, match="not found") as e:
        load_checkpoint(d)
    _one_line_error(e, "model.json")


def test_version_mismatch(saved: tuple[Path, DiscreteTransformer]) -> None:
    d, _ = saved
    _rewrite_json(d, lambda doc: doc.update(version=2))
    with pytest.raises(CheckpointError, match="version 2") as e:
        load_checkpoint(d)
    _one_line_error(e, "model.json")


def test_wrong_format_marker(saved: tuple[Path, DiscreteTransformer]) -> None:
    d, _ = saved
    _rewrite_json(d, lambda doc: doc.update(format="something-else"))
    with pytest.raises(CheckpointError, match="not a discrete-transformer checkpoint"):
        load_checkpoint(d)


@pytest.mark.parametrize("text", ['{"format": "dtx-checkpoint", "version": 1', "", "[1, 2]", "\x00\xff garbage"])
def test_corrupt_json(saved: tuple[Path, DiscreteTransformer], text: str) -> None:
    d, _ = saved
    (d / "model.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(d)
    _one_line_error(e, "model.json")


def test_corrupted_tensor_bytes_detected(saved: tuple[Path, DiscreteTransformer]) -> None:
    d, _ = saved
    p = d / "model.safetensors"
    blob = bytearray(p.read_bytes())
    blob[-5] ^= 0x40  # one bit in the tensor data: safetensors alone would not notice
    p.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="SHA-256") as e:
        load_checkpoint(d)
    _one_line_error(e, "model.safetensors")


def test_truncated_safetensors(saved: tuple[Path, DiscreteTransformer]) -> None:
    d, _ = saved
    p = d / "model.safetensors"
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(d)
    _one_line_error(e, "model.safetensors")


@pytest.mark.parametrize("cut", [0, 5, 100, -7])
def test_truncated_or_garbled_safetensors_without_checksum(saved: tuple[Path, DiscreteTransformer], cut: int) -> None:
    """Even with the checksum removed from model.json, the safetensors parser's error is wrapped."""
    d, _ = saved
    p = d / "model.safetensors"
    p.write_bytes(p.read_bytes()[:cut])
    _rewrite_json(d, lambda doc: doc["weights"].pop("sha256"))
    with pytest.raises(CheckpointError, match="safetensors") as e:
        load_checkpoint(d)
    _one_line_error(e, "model.safetensors")


def test_shape_mismatch_with_config(saved: tuple[Path, DiscreteTransformer]) -> None:
    d, _ = saved
    _rewrite_json(d, lambda doc: doc["model_config"].update(mlp_hidden=9))
    with pytest.raises(CheckpointError, match="shape") as e:
        load_checkpoint(d)
    _one_line_error(e, "model.safetensors")


def test_missing_tensor_for_config(saved: tuple[Path, DiscreteTransformer]) -> None:
    d, _ = saved
    _rewrite_json(d, lambda doc: doc["model_config"].update(n_layers=3))
    with pytest.raises(CheckpointError, match="missing tensor"):
        load_checkpoint(d)


def test_invalid_config_in_json(saved: tuple[Path, DiscreteTransformer]) -> None:
    d, _ = saved
    _rewrite_json(d, lambda doc: doc["train_config"].update(no_such_field=1))
    with pytest.raises(CheckpointError, match="no_such_field") as e:
        load_checkpoint(d)
    _one_line_error(e, "model.json")


def test_pickle_file_is_rejected_never_unpickled(saved: tuple[Path, DiscreteTransformer], monkeypatch) -> None:
    """A pickle in place of the weights (even with a matching checksum) is an error, and no
    unpickling function is ever called while loading."""
    d, m = saved
    evil = pickle.dumps({k: v.numpy() for k, v in m.state_dict().items()})
    (d / "model.safetensors").write_bytes(evil)
    import hashlib

    _rewrite_json(d, lambda doc: doc["weights"].update(sha256=hashlib.sha256(evil).hexdigest()))

    def forbidden(*a, **k):
        raise AssertionError("unpickling was attempted")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(np, "load", forbidden)
    with pytest.raises(CheckpointError, match="safetensors") as e:
        load_checkpoint(d)
    _one_line_error(e, "model.safetensors")


def test_module_never_uses_pickle() -> None:
    src = Path(ck.__file__).read_text()
    assert "torch.load(" not in src and "import pickle" not in src and "np.load(" not in src


def test_checkpoint_error_is_value_error() -> None:
    assert issubclass(CheckpointError, ValueError)
    assert RunDir(Path("run")).weights_path.name == "model.safetensors"


def test_a_config_saved_before_periodic_units_loads_as_it_was_trained() -> None:
    """Runs saved before `mlp_periods` existed had no periodic units: their config, which lacks
    the field, must rebuild that model (not today's default), or their weights would not load."""
    from discrete_transformer.config import ModelConfig, from_dict, to_dict

    old = to_dict(ModelConfig())
    old.pop("mlp_periods")
    assert from_dict(ModelConfig, old).mlp_periods == 0
    assert from_dict(ModelConfig, to_dict(ModelConfig())).mlp_periods == ModelConfig().mlp_periods


def test_a_config_saved_before_summing_heads_loads_as_it_was_trained() -> None:
    from discrete_transformer.config import ModelConfig, from_dict, to_dict

    old = to_dict(ModelConfig())
    old.pop("attention_sum")
    assert from_dict(ModelConfig, old).attention_sum is False
    assert from_dict(ModelConfig, to_dict(ModelConfig(attention_sum=True))).attention_sum is True


def test_a_config_saved_before_bos_offsets_loads_as_it_was_trained(tmp_path: Path) -> None:
    from discrete_transformer.config import from_dict, to_dict

    old = to_dict(ModelConfig())
    old.pop("attention_bos_bias")
    assert from_dict(ModelConfig, old).attention_bos_bias is False
    # with the option on, the learned offsets travel in the safetensors file like every weight
    cfg = ModelConfig(n_layers=1, n_heads=2, n_mlps=1, mlp_hidden=8, mlp_bilinear=2, attention_bos_bias=True)
    m = DiscreteTransformer(cfg, SPEC, population=1, seed=0)
    with torch.no_grad():
        m.layers[0]["attn"].w_bos.fill_(-0.7)
    save_run_checkpoint(tmp_path, m.eval(), cfg, TRAIN_CFG, SPEC, {})
    loaded, mcfg, *_ = load_checkpoint(tmp_path)
    assert mcfg.attention_bos_bias and torch.equal(loaded.layers[0]["attn"].w_bos, m.layers[0]["attn"].w_bos)
    x = torch.randint(-4, 5, (8, SPEC.T, SPEC.n_in)).float()
    assert torch.equal(_predict(m, x), _predict(loaded, x))


def test_a_config_saved_before_the_periodic_mixture_loads_with_the_value_path() -> None:
    """Runs saved before `mlp_periodic_mix` existed fed their periodic units the mixed value, and
    runs saved before `mlp_periodic_mix_tau` mixed features for the whole search: a stored config
    resumes as it was trained, whatever today's defaults are."""
    from discrete_transformer.config import from_dict, to_dict

    before_both = to_dict(ModelConfig())
    before_both.pop("mlp_periodic_mix"), before_both.pop("mlp_periodic_mix_tau")
    cfg = from_dict(ModelConfig, before_both)
    assert (cfg.mlp_periodic_mix, cfg.mlp_periodic_mix_tau) == ("value", 0.0)
    before_tau = to_dict(ModelConfig(mlp_periodic_mix="features"))
    before_tau.pop("mlp_periodic_mix_tau")
    assert from_dict(ModelConfig, before_tau).mlp_periodic_mix_tau == 0.0
    today = from_dict(ModelConfig, to_dict(ModelConfig()))
    assert (today.mlp_periodic_mix, today.mlp_periodic_mix_tau) == (
        ModelConfig().mlp_periodic_mix,
        ModelConfig().mlp_periodic_mix_tau,
    )


def test_a_config_saved_before_the_portfolio_loads_with_the_plain_search() -> None:
    """Runs saved before TrainConfig.portfolio existed ran every restart with the plain search: a
    stored config without the field resumes that way, whatever today's default portfolio is."""
    from discrete_transformer.config import TrainConfig, from_dict, to_dict

    old = to_dict(TrainConfig())
    old.pop("portfolio")
    assert from_dict(TrainConfig, old).portfolio == ("plain",)
    both = TrainConfig(portfolio=("plain", "arithmetic"))
    assert from_dict(TrainConfig, to_dict(both)).portfolio == ("plain", "arithmetic")
    with pytest.raises(ValueError, match="portfolio"):
        TrainConfig(portfolio=("plain", "sparkly"))


def test_the_arithmetic_variant_adds_its_masks_to_the_configured_ones() -> None:
    from discrete_transformer.config import ModelConfig, TrainConfig, restart_configs

    base = ModelConfig(forbid_reads=(("readout", "x"),))
    train = TrainConfig(portfolio=("plain", "arithmetic"))
    m0, t0, n0 = restart_configs(base, train, 0)
    m1, t1, n1 = restart_configs(base, train, 1)
    assert (n0, n1) == ("plain", "arithmetic") and m0 == base and t0 == train
    assert m1.forbid_reads == (("readout", "x"), ("L*.H*.q", "pos"), ("L*.H*.k", "pos"))
    assert m1.attention_sum and m1.readout_gain and t1.attention_st_from == 0.2
    assert restart_configs(m1, t1, 1)[0] == m1  # applying a variant twice changes nothing


def test_the_long_arithmetic_restart_runs_twice_the_configured_steps() -> None:
    from discrete_transformer.config import ModelConfig, TrainConfig, restart_configs

    train = TrainConfig(steps=300, portfolio=("arithmetic_long", "plain"))
    _, t0, _ = restart_configs(ModelConfig(), train, 0)
    assert (t0.steps, t0.total_steps, t0.search_steps) == (300, 600, 390)  # its anneal twice as slow
    assert restart_configs(ModelConfig(), train, 1)[1].total_steps == 300
    assert restart_configs(ModelConfig(), t0, 0)[1].total_steps == 600  # applied twice: the same
    assert restart_configs(ModelConfig(), TrainConfig(steps=300), 0)[1].total_steps == 300  # the default


def test_the_lags_variant_adds_the_shift_group_to_the_configured_patterns() -> None:
    from discrete_transformer.config import ModelConfig, TrainConfig, restart_configs

    train = TrainConfig(portfolio=("arithmetic", "plain", "arithmetic", "lags"))
    names = [restart_configs(ModelConfig(), train, i)[2] for i in range(4)]
    m3 = restart_configs(ModelConfig(), train, 3)[0]
    assert names == ["arithmetic", "plain", "arithmetic", "lags"]
    assert m3.attention_patterns == (*ModelConfig().attention_patterns, "shifts")
    assert restart_configs(m3, train, 3)[0] == m3  # applied twice: the same
    assert restart_configs(ModelConfig(attention_patterns=("prefix",)), train, 3)[0].attention_patterns == (
        "prefix",
        "shifts",
    )


def test_under_positional_routing_the_arithmetic_variant_leaves_queries_and_keys_their_pos() -> None:
    from discrete_transformer.config import ModelConfig, TrainConfig, restart_configs

    base = ModelConfig(attention_routing="positional", forbid_reads=(("readout", "pos"),))
    m, _, name = restart_configs(base, TrainConfig(), 2)
    assert name == "arithmetic" and m.attention_sum and m.attention_routing == "positional"
    assert m.forbid_reads == (("readout", "pos"),)  # q/k may still read pos, the one thing they route by


def test_data_spec_round_trips_and_older_specs_load_without_target_levels() -> None:
    from discrete_transformer.model import DataSpec
    from discrete_transformer.training.checkpoint import spec_from_dict, spec_to_dict

    spec = DataSpec(("a", "b"), ("y",), (1.0, 2.0), 3.0, 7, target_levels=5)
    assert spec_from_dict(spec_to_dict(spec)) == spec
    old = spec_to_dict(spec)
    # a spec written while ModelConfig.target_scale existed (retired) also recorded the steps' RMS
    assert spec_from_dict({**old, "target_step_rms": 0.5}) == spec
    del old["target_levels"]
    assert spec_from_dict(old).target_levels == 0

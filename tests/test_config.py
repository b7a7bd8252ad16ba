"""seq2seq/config.py: defaults < YAML < command line, values converted to the declared types,
and unknown keys or bad values refused with a message that says what to do."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from seq2seq.config import TranslationConfig
from seq2seq.core.config import (
    add_config_arguments,
    config_from_dict,
    load_yaml,
    resolve_config,
    save_config,
    update_config,
)


def parse(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    add_config_arguments(parser, TranslationConfig)
    return parser.parse_args(argv)


def resolve(tmp_path, yaml_text: str | None, argv=()):
    path = None
    if yaml_text is not None:
        path = tmp_path / "config.yaml"
        path.write_text(yaml_text, encoding="utf-8")
        path = str(path)
    return resolve_config(TranslationConfig, path, parse(list(argv)))


def test_defaults_then_yaml_then_command_line(tmp_path):
    config = resolve(
        tmp_path,
        "cell: gru\nhidden_size: 128\nlearning_rate: 0.01\n",
        ["--hidden-size", "64", "--dropout", "0.5"],
    )
    assert config.cell == "gru"  # from YAML
    assert config.hidden_size == 64  # the command line wins over YAML
    assert config.learning_rate == 0.01  # YAML wins over the default
    assert config.dropout == 0.5  # command line over the default
    assert config.embedding_size == TranslationConfig().embedding_size  # untouched default
    # both spellings of a flag
    assert resolve(tmp_path, None, ["--hidden_size", "32"]).hidden_size == 32
    assert resolve(tmp_path, None).hidden_size == TranslationConfig().hidden_size


def test_values_are_converted_to_the_declared_types(tmp_path):
    config = resolve(
        tmp_path,
        "learning_rate: 1e-3\nmax_steps: 2e3\nbidirectional: no\nadam_betas: [0.9, 0.98]\n"
        "clip_grad_norm: 5\n",
        ["--input-feeding", "true", "--batch-tokens", "4096", "--label-smoothing", "0"],
    )
    assert config.learning_rate == 0.001 and isinstance(config.learning_rate, float)
    assert config.max_steps == 2000 and isinstance(config.max_steps, int)
    assert config.bidirectional is False
    assert config.input_feeding is True
    assert config.adam_betas == (0.9, 0.98)
    assert config.clip_grad_norm == 5.0 and isinstance(config.clip_grad_norm, float)
    assert config.batch_tokens == 4096
    assert config.label_smoothing == 0.0
    assert resolve(tmp_path, None, ["--adam-betas", "0.8,0.9"]).adam_betas == (0.8, 0.9)
    for text, value in (("1", True), ("off", False), ("YES", True), ("False", False)):
        assert resolve(tmp_path, None, ["--progress", text]).progress is value


@pytest.mark.parametrize("key", ["hiden_size", "hidden-sise", "lerning_rate"])
def test_unknown_yaml_keys_are_refused_with_a_suggestion(tmp_path, key):
    expected = "hidden_size" if "hid" in key else "learning_rate"
    with pytest.raises(ValueError) as error:
        resolve(tmp_path, f"{key}: 3\n")
    message = str(error.value)
    assert "config.yaml" in message
    assert f"unknown config key {key.replace('-', '_')!r}" in message
    assert f"did you mean {expected!r}" in message


def test_an_unknown_key_far_from_any_gives_no_suggestion():
    with pytest.raises(ValueError, match=r"unknown config key 'zzzz'$"):
        update_config(TranslationConfig(), {"zzzz": 1}, "test")


@pytest.mark.parametrize(
    "values, expected",
    [
        ({"cell": "transformer"}, "cell must be one of lstm, gru, rnn, got 'transformer'"),
        ({"optimizer": "adagrad"}, "optimizer must be one of adam, sgd, rmsprop"),
        ({"bidirectional": "maybe"}, "bidirectional: cannot use 'maybe' (expected true or false)"),
        ({"hidden_size": "big"}, "hidden_size: cannot use 'big'"),
        ({"hidden_size": 2.5}, "hidden_size: cannot use 2.5 (expected an integer)"),
        ({"hidden_size": "2.5"}, "hidden_size: cannot use '2.5'"),
        ({"learning_rate": "fast"}, "learning_rate: cannot use 'fast'"),
        ({"adam_betas": "a,b"}, "adam_betas: cannot use"),
    ],
)
def test_bad_values_are_refused(values, expected):
    with pytest.raises(ValueError) as error:
        update_config(TranslationConfig(), values, "my.yaml")
    assert str(error.value).startswith("my.yaml: ")
    assert expected in str(error.value)


def test_bad_command_line_values_name_the_command_line(tmp_path):
    with pytest.raises(ValueError, match="command line: cell must be one of"):
        resolve(tmp_path, None, ["--cell", "lsm"])


def test_yaml_file_problems(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("cell: [lstm\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.yaml: not valid YAML"):
        load_yaml(str(path))
    path.write_text("- cell\n- lstm\n", encoding="utf-8")
    with pytest.raises(ValueError, match="a config is a mapping of keys to values"):
        load_yaml(str(path))
    path.write_text("# only a comment\n", encoding="utf-8")
    assert load_yaml(str(path)) == {}
    with pytest.raises(ValueError, match="missing.yaml: cannot read config"):
        load_yaml(str(tmp_path / "missing.yaml"))


def test_saved_config_reads_back_identically(tmp_path):
    config = update_config(
        TranslationConfig(),
        {"cell": "gru", "adam_betas": (0.8, 0.95), "learning_rate": 3e-4, "progress": False},
        "test",
    )
    path = tmp_path / "config.yaml"
    save_config(config, str(path))
    assert not (tmp_path / "config.yaml.tmp").exists()
    assert config_from_dict(TranslationConfig, load_yaml(str(path)), str(path)) == config
    # what a checkpoint stores (dataclasses.asdict) reads back too
    assert config_from_dict(TranslationConfig, dataclasses.asdict(config), "checkpoint") == config


def test_every_key_has_help_text_and_a_flag():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, TranslationConfig)
    flags = {action.dest: action for action in parser._actions}
    for field in dataclasses.fields(TranslationConfig):
        assert field.metadata.get("help"), field.name
        assert field.name in flags
        assert "--" + field.name.replace("_", "-") in flags[field.name].option_strings


SHIPPED_CONFIGS = sorted(
    (Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"), key=lambda p: p.name
)


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads_without_unknown_keys(path):
    from classify.config import ClassifierConfig
    from generate.config import LanguageModelConfig

    data = load_yaml(str(path))
    if "horizon" in data:  # a forecaster: a fixed number of updates, the last 20% held out
        from forecast.config import ForecastConfig

        config = update_config(ForecastConfig(), data, str(path))
        assert config.max_steps and config.test_fraction == 0.2
        return
    config_class = LanguageModelConfig if "level" in data else TranslationConfig
    if "pooling" in data:
        config_class = ClassifierConfig
    config = update_config(config_class(), data, str(path))
    # the budget of the published figures: 30 minutes, 10 for the classifier
    assert config.max_minutes == (10 if config_class is ClassifierConfig else 30)
    if config.lr_schedule == "cosine":
        assert config.min_learning_rate < config.learning_rate


def test_the_published_configs_are_shipped():
    names = {p.name for p in SHIPPED_CONFIGS}
    assert {"bible-es-en.yaml", "shakespeare-char.yaml", "shakespeare-subword.yaml"} <= names

"""``python -m seq2seq.train`` end to end (seq2seq/train.py, translation_task.py, evaluate.py):
a tiny model memorises a tiny corpus (BLEU 100 through the exported bundle and through torch),
the run directory holds what the design promises, and command-line mistakes exit with code 2
and a message that says what to fix."""

from __future__ import annotations

import json

import pytest
from conftest import read_metrics, train_argv, write_corpus

from export.runtime import Translator
from seq2seq.scoring import corpus_scores
from seq2seq.torch_translator import TorchTranslator
from seq2seq.train import main as train_main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run of 150 updates on the 16-pair corpus, exported to run/bundle."""
    directory = tmp_path_factory.mktemp("memorize")
    corpus = write_corpus(directory / "data")
    run = directory / "run"
    argv = train_argv(corpus, run, max_steps=150, log_every=10)
    code = train_main(argv)
    assert code == 0
    with open(corpus["src"], encoding="utf-8") as f:
        sources = f.read().splitlines()
    with open(corpus["tgt"], encoding="utf-8") as f:
        references = f.read().splitlines()
    return run, corpus, sources, references


@pytest.mark.slow
def test_a_tiny_model_memorizes_its_training_data(trained):
    run, _, sources, references = trained
    assert all(6 <= len(s.split()) <= 10 for s in sources)
    translator = Translator.load(str(run / "bundle"))
    for beam in (1, 5):
        hypotheses = [t.text for t in translator.translate(sources, beam=beam)]
        assert corpus_scores(hypotheses, references)["bleu"] == pytest.approx(100.0)
        assert hypotheses == references
    # the torch model from best.pt translates exactly as the bundle does
    torch_translator = TorchTranslator.from_checkpoint(str(run / "best.pt"))
    assert [t.text for t in torch_translator.translate(sources, beam=5)] == references
    # the training loss went down, and the final dev evaluation saw the memorised corpus
    losses = [row["loss"] for row in read_metrics(run)]
    assert len(losses) == 15 and losses[-1] < 0.1 * losses[0]
    (dev,) = read_metrics(run, "valid")
    assert dev["step"] == 150 and dev["bleu"] == pytest.approx(100.0)


def test_the_run_directory_holds_config_metrics_curves_checkpoints_and_bundle(trained):
    run, corpus, _, _ = trained
    names = {p.name for p in run.iterdir()}
    assert {"config.yaml", "metrics.jsonl", "curves.png", "last.pt", "best.pt", "bundle"} <= names
    assert not [name for name in names if name.endswith(".tmp") or name.startswith(".bundle")]
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest = Translator.load(str(run / "bundle")).manifest
    source, target = manifest["tokenizers"]["source"], manifest["tokenizers"]["target"]
    assert source["kind"] == "sentencepiece"
    # the joint model is written once; the target side keeps the pieces its training text uses
    assert target == {
        "kind": "sentencepiece_subset",
        "file": source["file"],
        "pieces": "target.pieces.json",
    }
    assert sorted(manifest["files"]) == [
        "decoder_step.onnx",
        "encoder.onnx",
        "target.pieces.json",
        source["file"],
    ]
    assert (run / "spm" / "target.pieces.json").is_file()
    joint_size = manifest["model"]["source_vocab_size"]
    assert 4 < manifest["model"]["target_vocab_size"] < joint_size
    assert manifest["training"]["step"] == 150
    assert manifest["config"]["train_src"] == corpus["src"]
    for row in read_metrics(run):
        assert {"step", "epoch", "loss", "nll", "ppl", "tokens_per_s", "lr"} <= set(row)


def test_evaluate_command_scores_the_bundle(trained, capsys, tmp_path):
    from seq2seq.evaluate import main as evaluate_main

    run, corpus, _, references = trained
    hypotheses = tmp_path / "hyp.txt"
    argv = [
        "--bundle",
        str(run / "bundle"),
        "--src",
        corpus["src"],
        "--ref",
        corpus["tgt"],
        "--beam",
        "3",
        "--hypotheses",
        str(hypotheses),
    ]
    assert evaluate_main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["bleu"] == pytest.approx(100.0) and result["chrf"] == pytest.approx(100.0)
    assert result["sentences"] == len(references) and result["beam"] == 3
    assert "nrefs:1" in result["bleu_signature"]
    assert hypotheses.read_text(encoding="utf-8").splitlines() == references


def test_dev_nll_is_the_per_token_nll_of_the_dev_set(trained):
    """The dev NLL the trainer logs is what the model assigns to the references."""
    import numpy as np
    import torch

    from export.runtime.tokenizers import BOS_ID, EOS_ID

    run, _, sources, references = trained
    translator = TorchTranslator.from_checkpoint(str(run / "best.pt"))
    model = translator.model
    total, tokens = 0.0, 0
    with torch.no_grad():
        for source, reference in zip(sources, references):
            src = [*translator.source_tokenizer.encode(source), EOS_ID]
            tgt = translator.target_tokenizer.encode(reference)
            encoded = model.encode(torch.tensor([src]), torch.tensor([len(src)]))
            state = encoded.state
            for previous, token in zip([BOS_ID, *tgt], [*tgt, EOS_ID]):
                log_probs, state = model.decode_step(
                    torch.tensor([previous]), state, encoded.memory, encoded.keys, encoded.mask
                )
                total -= float(log_probs[0, token])
                tokens += 1
    (dev,) = read_metrics(run, "valid")
    assert dev["nll"] == pytest.approx(total / tokens, rel=1e-3, abs=1e-5)
    assert np.isfinite(dev["ppl"])


# ----------------------------------------------------------------------------- CLI errors


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("cli-data"))


def test_missing_out_is_an_error(corpus, capsys):
    argv = [a for a in train_argv(corpus, "x") if a not in ("--out", "x")]
    assert train_main(argv) == 2
    assert "error: --out RUN_DIR is required" in capsys.readouterr().err


def test_without_validation_files_a_tail_is_held_out(corpus, tmp_path, capsys):
    argv = train_argv(corpus, tmp_path / "run", max_steps=2, valid_fraction=0.25)
    argv = [a for i, a in enumerate(argv) if not _is_valid_flag(argv, i)]
    assert train_main(argv + ["--no-export"]) == 0
    out = capsys.readouterr().out
    assert "the last 4 of the 16 training pairs are held out" in out
    assert "kept all 12 pairs" in out


def _is_valid_flag(argv: list[str], i: int) -> bool:
    """``--valid-src X`` / ``--valid-tgt X``: the flag or its value."""
    flags = ("--valid-src", "--valid-tgt")
    return argv[i] in flags or (i > 0 and argv[i - 1] in flags)


def test_missing_training_files_are_named(corpus, tmp_path, capsys):
    argv = ["--train-src", corpus["src"], "--out", str(tmp_path), "--max-steps", "1"]
    assert train_main(argv) == 2
    assert "error: missing --train-tgt" in capsys.readouterr().err


def test_a_size_that_cannot_work_is_refused_before_any_work(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_main(train_argv(corpus, run) + ["--hidden-size", "-3"]) == 2
    assert "hidden_size must be at least 1, got -3" in capsys.readouterr().err
    assert not (run / "spm").exists()  # refused before a tokenizer was trained
    assert train_main(train_argv(corpus, run) + ["--hidden-size", "33"]) == 2
    assert "even hidden_size" in capsys.readouterr().err


def test_old_key_names_are_read_with_a_notice(corpus, tmp_path, capsys):
    argv = train_argv(corpus, tmp_path / "run", max_steps=1)
    argv = [{"--valid-src": "--dev-src", "--valid-tgt": "--dev-tgt"}.get(a, a) for a in argv]
    assert train_main(argv + ["--no-export", "--tie-output-embeddings", "false"]) == 0
    err = capsys.readouterr().err
    assert "dev_src is now called valid_src" in err
    assert "tie_output_embeddings is now called tie_embeddings" in err


def test_mismatched_files_are_an_error(corpus, tmp_path, capsys):
    short = tmp_path / "short.tgt"
    short.write_text("one line\n", encoding="utf-8")
    argv = train_argv(dict(corpus, tgt=str(short)), tmp_path / "run")
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert f"{corpus['src']} has 16 lines but {short} has 1" in err
    assert not (tmp_path / "run" / "last.pt").exists()


def test_unknown_config_key_is_an_error_with_a_suggestion(corpus, tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("hiden_size: 64\n", encoding="utf-8")
    argv = train_argv(corpus, tmp_path / "run") + ["--config", str(config)]
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'hiden_size'; did you mean 'hidden_size'?" in err
    # an unknown flag is argparse's usage error, also exit code 2
    with pytest.raises(SystemExit) as exit_info:
        train_main(train_argv(corpus, tmp_path / "run") + ["--hiden-size", "64"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --hiden-size" in capsys.readouterr().err


def test_bad_config_value_is_an_error(corpus, tmp_path, capsys):
    assert train_main(train_argv(corpus, tmp_path / "run", cell="lsmt")) == 2
    assert "command line: cell must be one of lstm, gru, rnn" in capsys.readouterr().err


def test_an_existing_run_needs_resume_and_resume_needs_a_run(trained, tmp_path, capsys, corpus):
    run = trained[0]
    assert train_main(train_argv(corpus, run)) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err
    assert train_main(["--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "--resume: " in capsys.readouterr().err


def test_shared_embeddings_need_the_whole_joint_vocabulary_on_both_sides(corpus, tmp_path, capsys):
    argv = train_argv(corpus, tmp_path / "run", share_embeddings="true")
    assert train_main(argv) == 2
    assert "share_embeddings needs one vocabulary for both sides" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before any work
    argv = train_argv(
        corpus, tmp_path / "run", share_embeddings="true", target_pieces="all", max_steps=2
    )
    assert train_main(argv + ["--no-export"]) == 0
    assert not (tmp_path / "run" / "spm" / "target.pieces.json").exists()

"""export/exporter.py on translation models: the graphs pass the ONNX checker, compute what the
torch model computes, and the runtime (export.runtime.Translator) decodes exactly as the torch
translator does, for any batch size, with or without IO binding, and quantized."""

from __future__ import annotations

import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import SENTENCES, export_random_model

from export.runtime import Translator
from export.runtime.tokenizers import BOS_ID, EOS_ID, PAD_ID
from seq2seq.torch_translator import TorchTranslator

VARIANTS = {
    "gru": dict(cell="gru"),
    "rnn": dict(cell="rnn", encoder_layers=1, decoder_layers=1),
    "lstm-input-feeding": dict(cell="lstm", input_feeding=True),
    "gru-input-feeding-concat": dict(cell="gru", input_feeding=True, attention="concat"),
    "lstm-forward-dot-tied": dict(
        cell="lstm",
        bidirectional=False,
        attention="dot",
        tie_embeddings=True,
        encoder_layers=1,
    ),
}

# 17 sentences of 1 to 12 words, some with words the vocabulary lacks
MANY = SENTENCES + [
    "el gato y el perro",
    "la mesa roja",
    "un perro come hoy",
    "casa",
    "el perro pequeño duerme sobre la mesa grande con el gato azul",
    "muy muy grande",
    "una casa azul y una mesa roja",
    "corre",
    "el gato bebe",
]


@pytest.fixture(scope="module", params=["lstm", *VARIANTS])
def exported(request, exported_lstm, tmp_path_factory):
    if request.param == "lstm":
        return exported_lstm
    return export_random_model(
        tmp_path_factory.mktemp(request.param), seed=1, **VARIANTS[request.param]
    )


def encode_batch(model, sentences):
    ids = [model.source.encode(s) for s in sentences]
    lengths = np.array([len(i) + 1 for i in ids], dtype=np.int64)
    src = np.full((len(ids), lengths.max()), PAD_ID, dtype=np.int64)
    for row, tokens in enumerate(ids):
        src[row, : len(tokens) + 1] = [*tokens, EOS_ID]
    return src, lengths


def test_graphs_pass_the_onnx_checker_and_the_manifest_describes_them(exported):
    manifest = Translator.load(exported.bundle).manifest
    graphs = manifest["graphs"]
    for name in (graphs["encoder"], graphs["decoder_step"]):
        onnx.checker.check_model(os.path.join(exported.bundle, name), full_check=True)
    config = exported.config
    assert manifest["kind"] == "translation"
    assert manifest["special_ids"] == {"pad": 0, "unk": 1, "bos": 2, "eos": 3}
    assert manifest["model"]["cell"] == config.cell
    assert manifest["model"]["input_feeding"] == config.input_feeding
    expected_state = (["h", "c"] if config.cell == "lstm" else ["h"]) + (
        ["feed"] if config.input_feeding else []
    )
    assert graphs["state_names"] == expected_state
    assert graphs["quantized"] is None
    assert manifest["max_source_length"] == config.max_length
    # every batch and length axis is symbolic, the states' batch axis included
    step = onnx.load(os.path.join(exported.bundle, graphs["decoder_step"]))
    for value in [*step.graph.input, *step.graph.output]:
        first = value.type.tensor_type.shape.dim[0]
        assert first.dim_param and not first.dim_value, value.name


def test_onnx_log_probabilities_match_torch_over_several_steps(exported):
    model = exported.model
    directory = exported.bundle
    encoder = ort.InferenceSession(os.path.join(directory, "encoder.onnx"))
    step = ort.InferenceSession(os.path.join(directory, "decoder_step.onnx"))
    state_names = Translator.load(directory).state_names
    src, lengths = encode_batch(exported, [SENTENCES[4], SENTENCES[0], SENTENCES[2]])
    memory, keys, mask, *state = encoder.run(None, {"src": src, "src_lengths": lengths})
    with torch.no_grad():
        encoded = model.encode(torch.from_numpy(src), torch.from_numpy(lengths))
    real = mask[:, :, None]
    assert (mask == encoded.mask.numpy()).all()
    assert np.abs((memory - encoded.memory.numpy()) * real).max() <= 1e-4
    assert np.abs((keys - encoded.keys.numpy()) * real).max() <= 1e-4

    torch_state = encoded.state
    t_memory, t_keys, t_mask = encoded.memory, encoded.keys, encoded.mask
    # step 1: every sentence from BOS; step 2: expand to beams (rows 0,0,1,2,2); then reorder
    origins = [[0, 1, 2], [0, 0, 1, 2, 2], [1, 0, 2, 3, 4], [4, 3, 2, 1, 0], [0, 2, 4, 1, 3]]
    sentence_of_row = np.arange(3)
    for number, origin in enumerate(origins):
        origin = np.asarray(origin, dtype=np.int64)
        vocab = exported.target.vocab_size
        tokens = (np.arange(len(origin)) * 5 + number) % (vocab - 4) + 4  # some real tokens
        tokens = np.full(3, BOS_ID) if number == 0 else tokens
        tokens = tokens.astype(np.int64)
        sentence_of_row = sentence_of_row[origin]
        feeds = {
            "tokens": tokens,
            "origin": origin,
            "memory": memory[sentence_of_row],
            "keys": keys[sentence_of_row],
            "mask": mask[sentence_of_row],
            **dict(zip(state_names, state)),
        }
        log_probs, *state = step.run(None, feeds)
        index = torch.from_numpy(origin)
        rows = torch.from_numpy(sentence_of_row)
        gathered = tuple(s.index_select(1 if s.dim() == 3 else 0, index) for s in torch_state)
        with torch.no_grad():
            expected, torch_state = model.decode_step(
                torch.from_numpy(tokens), gathered, t_memory[rows], t_keys[rows], t_mask[rows]
            )
        assert log_probs.shape == (len(origin), exported.target.vocab_size)
        assert np.abs(log_probs - expected.numpy()).max() <= 1e-4, f"step {number + 1}"


@pytest.mark.parametrize(
    "options",
    [
        dict(beam=1),
        dict(beam=4),
        dict(beam=5, n_best=3, length_penalty=0.6),
        dict(sample=True, seed=7, temperature=0.8, top_p=0.9),
    ],
    ids=["greedy", "beam", "n-best", "sampling"],
)
def test_runtime_and_torch_translator_agree(exported, options):
    onnx_translator = Translator.load(exported.bundle)
    torch_translator = TorchTranslator.from_checkpoint(exported.checkpoint)
    ours = onnx_translator.translate(SENTENCES, max_length=(1.5, 3), batch_size=4, **options)
    theirs = torch_translator.translate(SENTENCES, max_length=(1.5, 3), batch_size=4, **options)
    assert [t.text for t in ours] == [t.text for t in theirs]
    for a, b in zip(ours, theirs):
        assert [text for text, _ in a.hypotheses] == [text for text, _ in b.hypotheses]
        assert a.score == pytest.approx(b.score, abs=1e-4)
    assert len({t.text for t in ours}) > 1  # the model does not say the same thing every time


def test_a_sentence_translates_the_same_alone_and_in_a_padded_batch(exported):
    translator = Translator.load(exported.bundle)
    middle = SENTENCES[3]  # 7 words: the batch holds longer and shorter sentences
    for beam in (1, 3):
        (alone,) = translator.translate([middle], beam=beam)
        batch = translator.translate(SENTENCES, beam=beam, batch_size=len(SENTENCES))
        assert batch[3].text == alone.text
        assert batch[3].score == pytest.approx(alone.score, abs=1e-5)


def test_batch_sizes_1_3_and_17_run_from_one_exported_file(exported_lstm):
    translator = Translator.load(exported_lstm.bundle)
    assert len(MANY) == 17
    for beam in (1, 3):
        results = [
            translator.translate(MANY, beam=beam, batch_size=size, max_length=(1.0, 4))
            for size in (1, 3, 17)
        ]
        texts = [[t.text for t in result] for result in results]
        assert texts[0] == texts[1] == texts[2]
        for a, b in zip(results[0], results[2]):
            assert a.score == pytest.approx(b.score, abs=1e-5)


def test_io_binding_path_gives_the_same_output_as_plain_runs(exported):
    plain = Translator.load(exported.bundle, io_binding=False)
    bound = Translator.load(exported.bundle, io_binding=True)
    assert bound.io_binding and not plain.io_binding
    for options in (dict(beam=1), dict(beam=4, n_best=2)):
        a = plain.translate(SENTENCES, batch_size=3, max_length=(1.0, 2), **options)
        b = bound.translate(SENTENCES, batch_size=3, max_length=(1.0, 2), **options)
        assert [t.hypotheses for t in a] == [t.hypotheses for t in b]


def test_int8_quantized_bundle_loads_and_translates(tmp_path):
    quantized = export_random_model(tmp_path, quantize="int8")
    translator = Translator.load(quantized.bundle)
    assert translator.manifest["graphs"]["quantized"] == "int8"
    operators = {
        node.op_type
        for node in onnx.load(os.path.join(quantized.bundle, "decoder_step.onnx")).graph.node
    }
    assert operators & {"DynamicQuantizeLinear", "MatMulInteger", "DynamicQuantizeLSTM"}
    results = translator.translate(SENTENCES, beam=3, max_length=(1.0, 4))
    assert len(results) == len(SENTENCES)
    assert all(isinstance(t.text, str) and np.isfinite(t.score) for t in results)
    assert any(t.text for t in results)


def test_a_joint_vocabulary_is_written_once(tmp_path):
    from conftest import checkpoint_payload, random_model, tiny_config, word_tokenizers

    from export.translation import export_translation

    source, _ = word_tokenizers()
    config = tiny_config()
    model = random_model(config, source, source)
    manifest = export_translation(
        checkpoint_payload(config, model, source, source), str(tmp_path / "bundle")
    )
    assert manifest["tokenizers"]["source"] == manifest["tokenizers"]["target"]
    assert sorted(manifest["files"]) == ["decoder_step.onnx", "encoder.onnx", "vocab.vocab.json"]
    assert Translator.load(str(tmp_path / "bundle")).translate(["el gato"])[0].text is not None


def test_a_failed_export_leaves_the_previous_bundle_untouched(
    tmp_path, exported_lstm, monkeypatch, capsys
):
    import shutil

    import export.graphs
    from export.__main__ import main as export_main

    bundle = tmp_path / "bundle"
    shutil.copytree(exported_lstm.bundle, bundle)
    before = {p.name: p.read_bytes() for p in bundle.iterdir()}

    def broken(path):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export.graphs, "quantize_int8", broken)
    argv = ["--checkpoint", exported_lstm.checkpoint, "--out", str(bundle), "--quantize", "int8"]
    assert export_main(argv) == 2
    assert "error: disk full" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no staging directory


def test_export_cli_reports_a_bad_checkpoint(tmp_path, capsys):
    from export.__main__ import main as export_main

    missing = str(tmp_path / "missing.pt")
    assert export_main(["--checkpoint", missing, "--out", str(tmp_path / "b")]) == 2
    assert f"{missing}: no such checkpoint" in capsys.readouterr().err
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert export_main(["--checkpoint", str(junk), "--out", str(tmp_path / "b")]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_the_encoder_never_spins_and_the_step_graph_spins_briefly(exported_lstm):
    """The encoder runs once per batch: spinning workers would steal the cores the step graph
    needs next (scripts/bench_decode.py measured batch-1 decoding 1.5-1.8x slower with
    onnxruntime's default). Spinning or not, the outputs are the same."""
    from export.runtime.sessions import STEP_SPIN_US, create_session

    translator = Translator.load(exported_lstm.bundle, threads=2)
    encoder = translator.encoder.get_session_options()
    step = translator.decoder_step.get_session_options()
    assert encoder.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert step.get_session_config_entry("session.intra_op.spin_duration_us") == str(STEP_SPIN_US)
    path = os.path.join(exported_lstm.bundle, "encoder.onnx")
    src = np.array([[5, 6, 7, EOS_ID]], dtype=np.int64)
    feeds = {"src": src, "src_lengths": np.array([4], dtype=np.int64)}
    outputs = [
        create_session(path, threads=2, spin_us=spin).run(None, feeds) for spin in (None, 0, 500)
    ]
    for other in outputs[1:]:
        for a, b in zip(outputs[0], other):
            np.testing.assert_array_equal(a, b)

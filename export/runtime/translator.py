"""Translation with an exported bundle: ``Translator.load(dir).translate([...], beam=5)``.

:class:`TranslatorBase` holds everything around the model (tokenizing, batching by length,
search, detokenizing) and is shared with the torch model's translator used in training
(``seq2seq.torch_translator``); :class:`Translator` runs the bundle's encoder and decoder-step
graphs with onnxruntime. Decoding goes through :mod:`export.runtime.search`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from export.runtime.bundle import read_manifest, require_keys
from export.runtime.options import DecodingOptions, resolve_options
from export.runtime.search import Hypothesis, beam_search, sample_search
from export.runtime.seeds import RowSeed, row_seed
from export.runtime.sessions import (
    STEP_SPIN_US,
    StepGraph,
    check_graph_inputs,
    create_session,
    io_binding_default,
)
from export.runtime.tokenizers import BOS_ID, EOS_ID, PAD_ID, Tokenizer, load_tokenizer


class SourceTooLong(ValueError):
    """A source sentence longer than the model was trained on (``max_source_length``)."""


@dataclass
class Translation:
    """The result for one source sentence.

    ``score`` is the best hypothesis' log-probability, divided by ``length ** length_penalty``
    for beam search; ``hypotheses`` holds the n-best list as (text, score), best first."""

    text: str
    score: float
    hypotheses: list[tuple[str, float]]


class EncoderDecoderStepper:
    """Adapts an encoder-decoder to the search's step function.

    It tracks which sentence each state row belongs to and asks for the encoder memory to be
    re-gathered only when that changes (beam expansion, sentences finishing); reordering beams
    inside a sentence never touches the memory."""

    def __init__(self, batch_size: int):
        self.row_sentence = np.arange(batch_size)

    def __call__(self, tokens: np.ndarray, origin: np.ndarray) -> np.ndarray:
        rows = self.row_sentence[origin]
        if rows.shape != self.row_sentence.shape or (rows != self.row_sentence).any():
            self.select_memory(rows)
        self.row_sentence = rows
        return self.advance(tokens, origin)

    def select_memory(self, rows: np.ndarray) -> None:
        """Make row ``i`` of the memory that of sentence ``rows[i]``."""
        raise NotImplementedError

    def advance(self, tokens: np.ndarray, origin: np.ndarray) -> np.ndarray:
        """Gather the state rows by ``origin``, feed ``tokens``, return log-probabilities."""
        raise NotImplementedError


class TranslatorBase:
    """Everything around the model: tokenizing, batching by length, search, detokenizing.
    Subclasses provide :meth:`start` (encode a batch, return a step function)."""

    def __init__(
        self, source_tokenizer: Tokenizer, target_tokenizer: Tokenizer, max_source_length: int
    ):
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.max_source_length = max_source_length

    def start(self, src: np.ndarray, src_lengths: np.ndarray) -> EncoderDecoderStepper:
        """Encode ``src`` [batch, src_len] (EOS-terminated, padded) of ``src_lengths`` [batch]."""
        raise NotImplementedError

    def translate(
        self,
        sentences: Sequence[str],
        options: DecodingOptions | None = None,
        *,
        batch_size: int = 32,
        truncate: bool = False,
        **settings,
    ) -> list[Translation]:
        """Translate ``sentences``; one :class:`Translation` each, in order.

        Decoding is set by ``options`` (a :class:`DecodingOptions`) and/or keyword settings of
        the same names: ``beam`` 1 is greedy search; ``sample`` draws from the model instead
        (``temperature``, ``top_k``, ``top_p``, ``seed``); ``n_best``, ``length_penalty``,
        ``min_length``, ``max_length`` (``(ratio, constant)``: at most ``ratio * source tokens
        + constant`` target tokens; an int is a fixed limit), ``no_repeat_ngram`` and
        ``repetition_penalty`` (greedy and sampling). Every invalid value raises ValueError.
        Sentences go through the model ``batch_size`` at a time, sorted by length (beam search
        runs batch x beam rows per step).

        With a ``seed``, sentence ``i`` samples from its own random stream (``[seed, i]``;
        sentence 0 from ``seed`` itself), so its text depends neither on ``batch_size`` nor on
        the other sentences (see :mod:`export.runtime.seeds`).

        An empty (or all-whitespace) sentence translates to "" with score 0, without running
        the model. A sentence longer than the model was trained on (``max_source_length``
        subword tokens) raises ValueError unless ``truncate`` cuts it to that length."""
        options = resolve_options(options, settings, "translation")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if isinstance(sentences, str):
            raise TypeError("sentences is a list of str; wrap a single sentence in a list")
        ids = [self.encode_source(s, number, truncate) for number, s in enumerate(sentences)]
        results: list[Translation | None] = [None] * len(ids)
        order = [i for i in sorted(range(len(ids)), key=lambda i: -len(ids[i])) if ids[i]]
        for i in range(len(ids)):
            if not ids[i]:
                results[i] = self.empty_translation(options)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            # each sentence samples from its own stream, named by its place in the input, so
            # its text depends neither on the batch size nor on the other sentences
            seeds = [row_seed(options.seed, i) for i in batch]
            hypotheses = self.search_batch([ids[i] for i in batch], options, seeds)
            for index, hyps in zip(batch, hypotheses):
                results[index] = self.to_translation(hyps)
        return results

    def encode_source(self, sentence: str, number: int = 0, truncate: bool = False) -> list[int]:
        """Source token ids of ``sentence`` (the ``number``-th of a call, counted from 0, for
        messages); [] for an empty sentence. Longer than ``max_source_length``:
        :class:`SourceTooLong` unless ``truncate``."""
        if not isinstance(sentence, str):
            raise TypeError(f"sentence {number + 1} is a {type(sentence).__name__}, not str")
        tokens = self.source_tokenizer.encode(sentence.strip()) if sentence.strip() else []
        limit = self.max_source_length
        if len(tokens) > limit:
            if not truncate:
                raise SourceTooLong(
                    f"sentence {number + 1} has {len(tokens)} subword tokens; this model was "
                    f"trained on at most {limit}. Split it, or pass truncate=True "
                    "(--truncate) to cut it to the limit."
                )
            tokens = tokens[:limit]
        return tokens

    @staticmethod
    def empty_translation(options: DecodingOptions) -> Translation:
        """What an empty sentence translates to, without running the model."""
        return Translation("", 0.0, [("", 0.0)] * options.n_best)

    def to_translation(self, hypotheses: Sequence[Hypothesis]) -> Translation:
        """Detokenize one sentence's n-best list (best first)."""
        texts = [(self.target_tokenizer.decode(h.tokens), h.normalized_score) for h in hypotheses]
        return Translation(texts[0][0], texts[0][1], texts)

    def search_batch(
        self,
        src_ids: list[list[int]],
        options: DecodingOptions,
        seeds: int | None | Sequence[RowSeed] = None,
    ) -> list[list[Hypothesis]]:
        """Encode a batch of token lists (none empty) and search; per sentence, its ``n_best``
        hypotheses. Sampling: ``seeds`` gives each sentence its random stream (one seed per
        sentence, see :mod:`export.runtime.seeds`), or is one seed for the batch;
        ``options.seed`` is not read here."""
        lengths = np.asarray([len(s) + 1 for s in src_ids], dtype=np.int64)  # + EOS
        src = np.full((len(src_ids), int(lengths.max())), PAD_ID, dtype=np.int64)
        for row, tokens in enumerate(src_ids):
            src[row, : len(tokens)] = tokens
            src[row, len(tokens)] = EOS_ID
        if isinstance(options.max_length, tuple):
            ratio, constant = options.max_length
            limits = (ratio * (lengths - 1) + constant).astype(np.int64)
        else:
            limits = np.full(len(src_ids), int(options.max_length), dtype=np.int64)
        limits = np.maximum(limits, max(1, options.min_length))
        step = self.start(src, lengths)
        start_tokens = np.full(len(src_ids), BOS_ID, dtype=np.int64)
        if options.beam > 1:
            return beam_search(
                step,
                start_tokens,
                limits,
                EOS_ID,
                beam_size=options.beam,
                min_length=options.min_length,
                length_penalty=options.length_penalty,
                n_best=options.n_best,
                no_repeat_ngram=options.no_repeat_ngram,
            )
        found = sample_search(
            step,
            start_tokens,
            limits,
            EOS_ID,
            min_length=options.min_length,
            temperature=options.temperature if options.sample else 0.0,
            top_k=options.top_k,
            top_p=options.top_p,
            seed=seeds,
            no_repeat_ngram=options.no_repeat_ngram,
            repetition_penalty=options.repetition_penalty,
            context=src_ids,
        )
        return [[h] for h in found]


class OnnxStepper(EncoderDecoderStepper):
    """The search's step function over the exported decoder-step graph."""

    def __init__(self, graph: StepGraph, encoded: dict, state_names: Sequence[str]):
        super().__init__(encoded["memory"].shape[0])
        self.graph = graph
        self.encoded = encoded
        graph.set_constants({k: encoded[k] for k in ("memory", "keys", "mask")})
        graph.set_state([encoded[name] for name in state_names])

    def select_memory(self, rows: np.ndarray) -> None:
        self.graph.set_constants({k: self.encoded[k][rows] for k in ("memory", "keys", "mask")})

    def advance(self, tokens: np.ndarray, origin: np.ndarray) -> np.ndarray:
        return self.graph.run({"tokens": tokens, "origin": origin.astype(np.int64)})


class Translator(TranslatorBase):
    """Translate with an exported bundle. ``Translator.load(dir).translate([...], beam=5)``."""

    def __init__(
        self,
        directory: str,
        manifest: dict,
        source_tokenizer: Tokenizer,
        target_tokenizer: Tokenizer,
        encoder,
        decoder_step,
        device: str,
        io_binding: bool,
    ):
        super().__init__(source_tokenizer, target_tokenizer, manifest["max_source_length"])
        self.directory = directory
        self.manifest = manifest
        self.encoder = encoder
        self.state_names = manifest["graphs"]["state_names"]
        self.decoder_step = decoder_step
        self.device = device
        self.io_binding = io_binding

    @classmethod
    def load(
        cls,
        directory: str,
        device: str = "cpu",
        threads: int | None = None,
        io_binding: bool | None = None,
        verify: bool = True,
    ) -> Translator:
        """Load and check a translation bundle. ``device``: "cpu" or "cuda" (needs
        onnxruntime-gpu); ``threads``: CPU threads per graph (default: onnxruntime's);
        ``io_binding``: keep decoder state on the device between steps (default: on cuda).
        A malformed, incomplete or foreign bundle raises :class:`BundleError`."""
        manifest = read_manifest(directory, expected_kind="translation", verify=verify)
        require_keys(
            manifest,
            directory,
            "translation",
            [
                ("graphs", "encoder", str),
                ("graphs", "decoder_step", str),
                ("graphs", "state_names", list),
                ("tokenizers", "source", dict),
                ("tokenizers", "target", dict),
                ("max_source_length", None, int),
            ],
        )
        tokenizers = manifest["tokenizers"]
        source = load_tokenizer(tokenizers["source"], directory)
        target = load_tokenizer(tokenizers["target"], directory)
        graphs = manifest["graphs"]
        state_names = graphs["state_names"]
        encoder = create_session(
            os.path.join(directory, graphs["encoder"]), device, threads, spin_us=0
        )
        check_graph_inputs(
            encoder, os.path.join(directory, graphs["encoder"]), ["src", "src_lengths"]
        )
        step = create_session(
            os.path.join(directory, graphs["decoder_step"]), device, threads, spin_us=STEP_SPIN_US
        )
        check_graph_inputs(
            step,
            os.path.join(directory, graphs["decoder_step"]),
            ["tokens", "origin", "memory", "keys", "mask", *state_names],
        )
        return cls(
            directory,
            manifest,
            source,
            target,
            encoder,
            step,
            device,
            io_binding_default(device, io_binding),
        )

    def start(self, src: np.ndarray, src_lengths: np.ndarray) -> OnnxStepper:
        names = [o.name for o in self.encoder.get_outputs()]
        outputs = self.encoder.run(None, {"src": src, "src_lengths": src_lengths})
        encoded = dict(zip(names, outputs))
        graph = StepGraph(self.decoder_step, self.state_names, self.device, self.io_binding)
        return OnnxStepper(graph, encoded, self.state_names)

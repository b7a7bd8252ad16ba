"""The torch-free runtime: load a bundle, translate or generate. numpy + onnxruntime +
sentencepiece only.

    from export.runtime import Translator, Generator
    Translator.load("bundle/").translate(["Hola, mundo."], beam=5)
    Generator.load("bundle/").stream("Once upon", max_tokens=200, top_p=0.9)

Decoding goes through :mod:`export.search`, the same code the torch model uses in training.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from export.bundle import BundleError, read_manifest
from export.search import beam_search, iter_sample, sample_search
from export.tokenizers import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer, load_tokenizer

# ----------------------------------------------------------------------------- onnxruntime


def create_session(
    path: str, device: str = "cpu", threads: int | None = None, spin_us: int | None = None
):
    """An onnxruntime session for ``path`` on ``device`` ("cpu" or "cuda").

    ``spin_us``: how long the session's idle worker threads busy-wait for the next call before
    they sleep; 0 turns spinning off, None keeps onnxruntime's default. A graph that runs once
    per batch (the encoder) must not spin: its workers would keep burning cores while the step
    graph runs, which on a 2-core machine halved batch-1 decoding speed. A step graph called in
    a tight loop gains from spinning across the short gaps in which the search picks tokens."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if spin_us == 0:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    elif spin_us is not None:
        options.add_session_config_entry("session.intra_op.spin_duration_us", str(int(spin_us)))
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeError(
                "device cuda needs onnxruntime with CUDA support: pip install onnxruntime-gpu "
                f"(available here: {', '.join(ort.get_available_providers())})"
            )
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    elif device == "cpu":
        providers = ["CPUExecutionProvider"]
    else:
        raise ValueError(f"device must be cpu or cuda, got {device!r}")
    try:
        return ort.InferenceSession(path, sess_options=options, providers=providers)
    except Exception as error:  # onnxruntime raises its own exception types
        raise BundleError(f"{path}: onnxruntime cannot load this graph ({error})") from None


# busy-wait between decoding steps: longer than the search's work between two steps (about
# 0.1-0.2 ms), short enough to stop soon after decoding ends (scripts/bench_decode.py)
STEP_SPIN_US = 1000


class StepGraph:
    """Runs a step graph whose recurrent state stays where the graph runs.

    With ``io_binding`` the state outputs of one call are bound as inputs of the next without
    leaving the device (on GPU: no copies between steps); only the log-probabilities come back
    to the host, for the search. Without it, plain ``session.run`` on numpy arrays (on CPU this
    is as fast and simpler). Per-call constant inputs (encoder memory) are bound once per change.
    """

    def __init__(self, session, state_names: Sequence[str], device: str, io_binding: bool):
        self.session = session
        self.state_names = list(state_names)
        self.device = device
        self.io_binding = io_binding
        self.output_names = [o.name for o in session.get_outputs()]
        self.constants: dict = {}
        self.state: list = []

    def set_constants(self, arrays: dict) -> None:
        """Inputs that stay the same from step to step (until set again)."""
        if self.io_binding:
            import onnxruntime as ort

            arrays = {
                k: ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(v), self.device, 0)
                for k, v in arrays.items()
            }
        self.constants = arrays

    def set_state(self, arrays: Sequence[np.ndarray]) -> None:
        self.state = list(arrays)

    def run(self, inputs: dict) -> np.ndarray:
        """Feed ``inputs`` (host arrays) with the constants and the current state; keep the new
        state; return the first output (log-probabilities) as a host array."""
        if not self.io_binding:
            feeds = dict(inputs)
            feeds.update(self.constants)
            feeds.update(zip(self.state_names, self.state))
            outputs = self.session.run(None, feeds)
            self.state = outputs[1:]
            return outputs[0]
        import onnxruntime as ort

        binding = self.session.io_binding()
        for name, array in inputs.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(array))
        for name, value in self.constants.items():
            binding.bind_ortvalue_input(name, value)
        for name, value in zip(self.state_names, self.state):
            if isinstance(value, np.ndarray):
                value = ort.OrtValue.ortvalue_from_numpy(
                    np.ascontiguousarray(value), self.device, 0
                )
            binding.bind_ortvalue_input(name, value)
        binding.bind_output(self.output_names[0], "cpu")
        for name in self.output_names[1:]:
            binding.bind_output(name, self.device)
        self.session.run_with_iobinding(binding)
        outputs = binding.get_outputs()
        self.state = list(outputs[1:])
        return outputs[0].numpy()


# ----------------------------------------------------------------------------- translation


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
        beam: int = 1,
        sample: bool = False,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
        n_best: int = 1,
        length_penalty: float = 1.0,
        min_length: int = 0,
        max_length: tuple[float, int] | int = (2.0, 10),
        no_repeat_ngram: int = 0,
        batch_size: int = 32,
        truncate: bool = False,
    ) -> list[Translation]:
        """Translate ``sentences``; one :class:`Translation` each, in order.

        ``beam`` 1 is greedy search; ``sample`` draws from the model instead (``temperature``,
        ``top_k``, ``top_p``, ``seed``). ``max_length`` is ``(ratio, constant)``: at most
        ``ratio * source tokens + constant`` target tokens; an int is a fixed limit.
        ``min_length`` counts target tokens. Sentences go through the model ``batch_size`` at
        a time, sorted by length (beam search runs batch x beam rows per step).

        An empty (or all-whitespace) sentence translates to "" with score 0, without running
        the model. A sentence longer than the model was trained on (``max_source_length``
        subword tokens) raises ValueError unless ``truncate`` cuts it to that length."""
        if beam < 1:
            raise ValueError(f"beam must be at least 1, got {beam}")
        if sample and beam > 1:
            raise ValueError("choose beam search or sampling, not both")
        if n_best > 1 and beam < n_best:
            raise ValueError(f"n_best {n_best} needs a beam at least as wide (beam {beam})")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        ids = []
        for number, sentence in enumerate(sentences):
            if not isinstance(sentence, str):
                raise TypeError(f"sentence {number + 1} is a {type(sentence).__name__}, not str")
            tokens = self.source_tokenizer.encode(sentence.strip()) if sentence.strip() else []
            limit = self.max_source_length
            if len(tokens) > limit:
                if not truncate:
                    raise ValueError(
                        f"sentence {number + 1} has {len(tokens)} subword tokens; this model was "
                        f"trained on at most {limit}. Split it, or pass truncate=True "
                        "(--truncate) to cut it to the limit."
                    )
                tokens = tokens[:limit]
            ids.append(tokens)
        results: list[Translation | None] = [None] * len(ids)
        order = [i for i in sorted(range(len(ids)), key=lambda i: -len(ids[i])) if ids[i]]
        for i in range(len(ids)):
            if not ids[i]:
                results[i] = Translation("", 0.0, [("", 0.0)] * n_best)
        for batch_number, start in enumerate(range(0, len(order), batch_size)):
            batch = order[start : start + batch_size]
            hypotheses = self._search_batch(
                [ids[i] for i in batch],
                beam,
                sample,
                temperature,
                top_k,
                top_p,
                None if seed is None else seed + batch_number,
                n_best,
                length_penalty,
                min_length,
                max_length,
                no_repeat_ngram,
            )
            for index, hyps in zip(batch, hypotheses):
                texts = [(self.target_tokenizer.decode(h.tokens), h.normalized_score) for h in hyps]
                results[index] = Translation(texts[0][0], texts[0][1], texts)
        return results

    def _search_batch(
        self,
        src_ids,
        beam,
        sample,
        temperature,
        top_k,
        top_p,
        seed,
        n_best,
        length_penalty,
        min_length,
        max_length,
        no_repeat_ngram,
    ):
        lengths = np.asarray([len(s) + 1 for s in src_ids], dtype=np.int64)  # + EOS
        src = np.full((len(src_ids), int(lengths.max())), PAD_ID, dtype=np.int64)
        for row, tokens in enumerate(src_ids):
            src[row, : len(tokens)] = tokens
            src[row, len(tokens)] = EOS_ID
        if isinstance(max_length, (tuple, list)):
            ratio, constant = max_length
            limits = (ratio * (lengths - 1) + constant).astype(np.int64)
        else:
            limits = np.full(len(src_ids), int(max_length), dtype=np.int64)
        limits = np.maximum(limits, max(1, min_length))
        step = self.start(src, lengths)
        start_tokens = np.full(len(src_ids), BOS_ID, dtype=np.int64)
        if beam > 1:
            return beam_search(
                step,
                start_tokens,
                limits,
                EOS_ID,
                beam_size=beam,
                min_length=min_length,
                length_penalty=length_penalty,
                n_best=n_best,
                no_repeat_ngram=no_repeat_ngram,
            )
        found = sample_search(
            step,
            start_tokens,
            limits,
            EOS_ID,
            min_length=min_length,
            temperature=temperature if sample else 0.0,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
            no_repeat_ngram=no_repeat_ngram,
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


def _io_binding_default(device: str, io_binding: bool | None) -> bool:
    return device == "cuda" if io_binding is None else io_binding


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
        ``io_binding``: keep decoder state on the device between steps (default: on cuda)."""
        manifest = read_manifest(directory, expected_kind="translation", verify=verify)
        tokenizers = manifest["tokenizers"]
        source = load_tokenizer(tokenizers["source"], directory)
        target = load_tokenizer(tokenizers["target"], directory)
        graphs = manifest["graphs"]
        encoder = create_session(
            os.path.join(directory, graphs["encoder"]), device, threads, spin_us=0
        )
        step = create_session(
            os.path.join(directory, graphs["decoder_step"]), device, threads, spin_us=STEP_SPIN_US
        )
        return cls(
            directory,
            manifest,
            source,
            target,
            encoder,
            step,
            device,
            _io_binding_default(device, io_binding),
        )

    def start(self, src: np.ndarray, src_lengths: np.ndarray) -> OnnxStepper:
        names = [o.name for o in self.encoder.get_outputs()]
        outputs = self.encoder.run(None, {"src": src, "src_lengths": src_lengths})
        encoded = dict(zip(names, outputs))
        graph = StepGraph(self.decoder_step, self.state_names, self.device, self.io_binding)
        return OnnxStepper(graph, encoded, self.state_names)


# ----------------------------------------------------------------------------- generation


def split_into_streams(
    ids: Sequence[int], start_id: int | None, streams: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lay a text's token ids out as ``streams`` contiguous rows read side by side, for scoring.

    Every token is predicted once, from all the tokens before it in its row; ``start_id`` (a
    line break: the text starts at the beginning of a line) is read before the first token, so
    the first token is predicted too (without one, it is context only). Returns ``inputs``,
    ``targets`` [rows, length] int64 and ``mask`` [rows, length] bool, True where a target is
    real: only the end of the last row is padding, so no padding is ever read before a real
    token."""
    stream = np.asarray(([start_id] if start_id is not None else []) + list(ids), dtype=np.int64)
    predicted = len(stream) - 1
    if predicted < 1:
        raise ValueError(
            "the text has no token to predict (it needs at least two tokens, or "
            "one in a vocabulary with a line break)"
        )
    length = -(-predicted // max(1, min(streams, predicted)))
    rows = -(-predicted // length)
    inputs = np.full(rows * length, PAD_ID, dtype=np.int64)
    targets = np.full(rows * length, PAD_ID, dtype=np.int64)
    mask = np.zeros(rows * length, dtype=bool)
    inputs[:predicted] = stream[:-1]
    targets[:predicted] = stream[1:]
    mask[:predicted] = True
    return inputs.reshape(rows, length), targets.reshape(rows, length), mask.reshape(rows, length)


class _Continuation:
    """The text of one continuation as its tokens arrive.

    Tokens are decoded after the prompt's last token, so what separates prompt and continuation
    (a word tokenizer's space, a sentencepiece word boundary) comes out right. Decoding is local
    (a token's text depends on the token before it at most), so all but the last few tokens are
    decoded once and kept, and a long text costs time linear in its length. The text ends
    before the first stop string that appears; a tail that could still become a stop string is
    held back, so a released piece is never taken back."""

    SETTLE_AFTER = 32  # pending tokens that trigger keeping their text for good

    def __init__(self, tokenizer: Tokenizer, context: list[int], stops: Sequence[str]):
        self.tokenizer = tokenizer
        self.context = context  # the token before the pending ones
        self.settled = ""  # the text of the tokens before the pending ones
        self.pending: list[int] = []
        self.stops = [s for s in stops if s]
        self.text = ""  # released so far
        self.stopped = False

    def _after(self, context: list[int], tokens: list[int]) -> str:
        """The text ``tokens`` add after ``context``."""
        prefix = self.tokenizer.decode(context)
        full = self.tokenizer.decode(context + tokens)
        return full[len(prefix) :] if full.startswith(prefix) else self.tokenizer.decode(tokens)

    def _decode(self) -> str:
        if len(self.pending) > self.SETTLE_AFTER:
            head, self.pending = self.pending[:-1], self.pending[-1:]
            self.settled += self._after(self.context, head)
            self.context = head[-1:]
        return self.settled + self._after(self.context, self.pending)

    def add(self, token: int) -> str:
        """Take the next token; return the newly released text (maybe "")."""
        self.pending.append(token)
        text = self._decode()
        found = [text.find(s) for s in self.stops if s in text]
        if found:
            self.stopped = True
            return self._release(text[: min(found)])
        held = 0
        for s in self.stops:
            for n in range(min(len(s) - 1, len(text)), 0, -1):
                if text.endswith(s[:n]):
                    held = max(held, n)
                    break
        return self._release(text[: len(text) - held])

    def finish(self) -> str:
        """After the last token: release what was held back."""
        return "" if self.stopped else self._release(self._decode())

    def _release(self, text: str) -> str:
        if len(text) <= len(self.text):
            return ""
        piece = text[len(self.text) :]
        self.text = text
        return piece


def _check_sampling(
    max_tokens: int, temperature: float, top_k: int, top_p: float, repetition_penalty: float
) -> None:
    if max_tokens < 0:
        raise ValueError(f"max_tokens must be at least 0, got {max_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be at least 0 (0: greedy), got {temperature}")
    if top_k < 0:
        raise ValueError(f"top_k must be at least 0 (0: off), got {top_k}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if repetition_penalty <= 0:
        raise ValueError(f"repetition_penalty must be positive (1: off), got {repetition_penalty}")


class GeneratorBase:
    """Prompts, sampling, streaming and scoring for a language model that reads token chunks.

    Subclasses say how to run the model: :meth:`read` (a chunk of tokens from a state) and
    :meth:`step_function` (one token per row, for the search). The ONNX :class:`Generator` and
    the torch model's generator (``generate.torch_generator``) share everything else.

    States are lists of arrays [rows, *shape] (``state_shapes`` gives each ``shape``)."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        state_shapes: Sequence[Sequence[int]],
        newline_id: int | None,
        unknown_trained: bool,
    ):
        self.tokenizer = tokenizer
        self.state_shapes = [tuple(shape) for shape in state_shapes]
        self.newline_id = newline_id
        self.unknown_trained = unknown_trained
        # never written: specials the model never saw as targets, and <unk> (a model that
        # learned it predicts "some rare word", which no reader wants to see as text)
        self.banned = np.asarray([PAD_ID, UNK_ID, BOS_ID, EOS_ID], dtype=np.int64)

    # -- the model (subclasses)

    def read(
        self, tokens: np.ndarray, state: list[np.ndarray]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Read ``tokens`` [rows, time] from ``state``; return the log-probabilities [rows,
        vocab] after the last token and the new state."""
        raise NotImplementedError

    def step_function(self, state: list[np.ndarray]):
        """The search's step function (see :mod:`export.search`), starting from ``state``."""
        raise NotImplementedError

    # -- prompts

    def initial_state(self, rows: int) -> list[np.ndarray]:
        """The zero state for ``rows`` rows."""
        return [np.zeros((rows, *shape), dtype=np.float32) for shape in self.state_shapes]

    def encode_prompt(self, prompt: str) -> list[int]:
        """Token ids of ``prompt``. An empty prompt starts at the beginning of a line. Text the
        vocabulary lacks raises ValueError, unless the model learned <unk> in training (word
        level), where it reads as <unk>."""
        if not isinstance(prompt, str):
            raise TypeError(f"a prompt is a str, not {type(prompt).__name__}")
        if prompt == "":
            if self.newline_id is None:
                raise ValueError(
                    "empty prompt: this model has no line-break token to start "
                    "from; give a prompt of at least one token"
                )
            return [self.newline_id]
        if not self.unknown_trained:
            unknown = self.tokenizer.unknown_pieces(prompt)
            if unknown:
                shown = ", ".join(repr(u) for u in unknown[:10])
                more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
                raise ValueError(
                    f"the prompt contains text this model's vocabulary lacks: {shown}{more} "
                    f"({self.tokenizer.kind} vocabulary of {self.tokenizer.vocab_size} tokens)"
                )
        ids = self.tokenizer.encode(prompt)
        if not ids:
            raise ValueError(f"the prompt {prompt!r} encodes to no tokens")
        return ids

    def _prepare(self, prompts: Sequence[str]):
        """Read every prompt but its last token, prompts of equal length in one chunk call;
        returns the last tokens [prompts], the state [prompts, ...] and the prompts' ids."""
        encoded = [self.encode_prompt(p) for p in prompts]
        state = self.initial_state(len(prompts))
        by_length: dict[int, list[int]] = {}
        for i, ids in enumerate(encoded):
            by_length.setdefault(len(ids), []).append(i)
        for length, members in by_length.items():
            if length > 1:
                chunk = np.asarray([encoded[i][:-1] for i in members], dtype=np.int64)
                _, read = self.read(chunk, self.initial_state(len(members)))
                for whole, part in zip(state, read):
                    whole[members] = part
        start = np.asarray([ids[-1] for ids in encoded], dtype=np.int64)
        return start, state, encoded

    def _sampling_step(self, state: list[np.ndarray]):
        step = self.step_function(state)

        def masked(tokens: np.ndarray, origin: np.ndarray) -> np.ndarray:
            log_probs = step(tokens, origin)
            log_probs[:, self.banned] = -np.inf
            return log_probs

        return masked

    # -- generation

    def _continuations(
        self,
        prompts: Sequence[str],
        max_tokens: int,
        temperature: float,
        top_k: int,
        top_p: float,
        repetition_penalty: float,
        stop: Sequence[str] | str | None,
        seed: int | None,
    ) -> Iterator[tuple[int, str]]:
        """Sample continuations of ``prompts`` together; yield ``(prompt index, new text)``
        whenever a piece of text is released."""
        _check_sampling(max_tokens, temperature, top_k, top_p, repetition_penalty)
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        start, state, encoded = self._prepare(prompts)
        texts = [_Continuation(self.tokenizer, ids[-1:], stops) for ids in encoded]
        if max_tokens > 0:
            for rows, chosen, _ in iter_sample(
                self._sampling_step(state),
                start,
                max_tokens,
                eos_id=None,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                seed=seed,
                repetition_penalty=repetition_penalty,
                context=encoded,
            ):
                for row, token in zip(rows.tolist(), chosen.tolist()):
                    if not texts[row].stopped:
                        piece = texts[row].add(token)
                        if piece:
                            yield row, piece
                if all(t.stopped for t in texts):
                    return
        for row, text in enumerate(texts):
            piece = text.finish()
            if piece:
                yield row, piece

    def stream(
        self,
        prompt: str,
        max_tokens: int = 200,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        repetition_penalty: float = 1.0,
        stop: Sequence[str] | str | None = None,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Yield the continuation of ``prompt`` piece by piece as tokens are made.

        ``max_tokens`` tokens at most; ``temperature`` 0 is greedy; ``top_k`` and ``top_p``
        (nucleus) cut the distribution before sampling; ``repetition_penalty`` > 1 makes tokens
        already in the prompt or the text less likely; the text ends before the first ``stop``
        string. The same ``seed`` gives the same text. An empty prompt starts at the beginning
        of a line."""
        for _, piece in self._continuations(
            [prompt], max_tokens, temperature, top_k, top_p, repetition_penalty, stop, seed
        ):
            yield piece

    def generate(
        self,
        prompts: Sequence[str] | str,
        max_tokens: int = 200,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        repetition_penalty: float = 1.0,
        stop: Sequence[str] | str | None = None,
        seed: int | None = None,
    ) -> list[str]:
        """Continuations of a batch of prompts, sampled together (one model call per token for
        the whole batch); arguments as :meth:`stream`. For one prompt and the same seed, the
        text is what :meth:`stream` yields."""
        if isinstance(prompts, str):
            prompts = [prompts]
        if not prompts:
            return []
        texts = [""] * len(prompts)
        for row, piece in self._continuations(
            prompts, max_tokens, temperature, top_k, top_p, repetition_penalty, stop, seed
        ):
            texts[row] += piece
        return texts

    # -- scoring

    def score(self, text: str, streams: int = 16) -> tuple[float, int]:
        """The negative log-likelihood of ``text`` (nats, summed) and the number of tokens it
        covers. The text is read as ``streams`` contiguous rows side by side (see
        :func:`split_into_streams`); every token counts, <unk> included."""
        inputs, targets, mask = split_into_streams(
            self.tokenizer.encode(text), self.newline_id, streams
        )
        state = self.initial_state(len(inputs))
        rows = np.arange(len(inputs))
        total = 0.0
        for t in range(inputs.shape[1]):
            log_probs, state = self.read(inputs[:, t : t + 1], state)
            picked = log_probs[rows, targets[:, t]].astype(np.float64)
            total -= float(picked[mask[:, t]].sum())
        return total, int(mask.sum())


class Generator(GeneratorBase):
    """Generate text with an exported language-model bundle.

    ``Generator.load(dir).stream("Once upon", max_tokens=200, top_p=0.9)`` yields text pieces
    as they are made; ``generate(prompts, ...)`` returns whole texts for a batch of prompts;
    ``score(text)`` gives the text's negative log-likelihood.
    """

    def __init__(
        self,
        directory: str,
        manifest: dict,
        tokenizer: Tokenizer,
        session,
        device: str,
        io_binding: bool,
    ):
        graphs = manifest["graphs"]
        super().__init__(
            tokenizer,
            graphs["state_shapes"],
            manifest.get("newline_id"),
            bool(manifest.get("unknown_trained", False)),
        )
        self.directory = directory
        self.manifest = manifest
        self.session = session
        self.device = device
        self.io_binding = io_binding
        self.state_names = graphs["state_names"]

    @classmethod
    def load(
        cls,
        directory: str,
        device: str = "cpu",
        threads: int | None = None,
        io_binding: bool | None = None,
        verify: bool = True,
    ) -> Generator:
        """Load and check a language-model bundle. ``device``: "cpu" or "cuda" (needs
        onnxruntime-gpu); ``threads``: CPU threads (default: onnxruntime's); ``io_binding``:
        keep the state on the device between steps (default: on cuda)."""
        manifest = read_manifest(directory, expected_kind="language_model", verify=verify)
        for keys in (
            ("graphs", "step"),
            ("graphs", "state_names"),
            ("graphs", "state_shapes"),
            ("tokenizers", "text"),
        ):
            if not isinstance(manifest.get(keys[0]), dict) or keys[1] not in manifest[keys[0]]:
                raise BundleError(
                    f"{directory}: model.json lacks {'.'.join(keys)}; not a "
                    "language-model bundle written by python -m export"
                )
        tokenizer = load_tokenizer(manifest["tokenizers"]["text"], directory)
        graphs = manifest["graphs"]
        session = create_session(
            os.path.join(directory, graphs["step"]), device, threads, spin_us=STEP_SPIN_US
        )
        expected = ["tokens", "origin", *graphs["state_names"]]
        found = [i.name for i in session.get_inputs()]
        if found != expected:
            raise BundleError(
                f"{os.path.join(directory, graphs['step'])}: inputs are {found}, "
                f"expected {expected}"
            )
        return cls(
            directory, manifest, tokenizer, session, device, _io_binding_default(device, io_binding)
        )

    def read(
        self, tokens: np.ndarray, state: list[np.ndarray]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        feeds = {
            "tokens": np.ascontiguousarray(tokens, dtype=np.int64),
            "origin": np.arange(len(tokens), dtype=np.int64),
        }
        feeds.update(zip(self.state_names, state))
        outputs = self.session.run(None, feeds)
        return outputs[0], outputs[1:]

    def step_function(self, state: list[np.ndarray]):
        graph = StepGraph(self.session, self.state_names, self.device, self.io_binding)
        graph.set_state(state)

        def step(tokens: np.ndarray, origin: np.ndarray) -> np.ndarray:
            return graph.run({"tokens": tokens[:, None], "origin": origin.astype(np.int64)})

        return step

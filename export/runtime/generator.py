"""Text generation with an exported language-model bundle:
``Generator.load(dir).stream("Once upon", max_tokens=200, top_p=0.9)``.

:class:`GeneratorBase` holds prompts, sampling, stop strings, streaming and scoring, shared with
the torch model's generator (``generate.torch_generator``); :class:`Generator` runs the bundle's
chunked step graph with onnxruntime.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator, Sequence

import numpy as np

from export.runtime.bundle import read_manifest, require_keys
from export.runtime.options import DecodingOptions, resolve_options
from export.runtime.search import iter_sample
from export.runtime.seeds import RowSeed
from export.runtime.sessions import (
    STEP_SPIN_US,
    StepGraph,
    check_graph_inputs,
    create_session,
    io_binding_default,
)
from export.runtime.tokenizers import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer, load_tokenizer


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


class Continuation:
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
        """The search's step function (see :mod:`export.runtime.search`) from ``state``."""
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

    def continuations(
        self,
        prompts: Sequence[str],
        options: DecodingOptions,
        seeds: Sequence[RowSeed] | None = None,
        cancelled: Callable[[], Collection[int]] | None = None,
    ) -> Iterator[tuple[int, str]]:
        """Sample continuations of ``prompts`` together; yield ``(prompt index, new text)``
        whenever a piece of text is released. Prompt ``i`` samples from its own random stream:
        ``seeds[i]`` when given, else row ``i`` of ``options.seed`` (see
        :mod:`export.runtime.seeds`), so merging prompts of separate calls (each with its own
        seed) changes no text. ``cancelled`` is asked before every token for prompts whose
        reader went away: they stop at once (see :func:`~export.runtime.search.iter_sample`)."""
        start, state, encoded = self._prepare(prompts)
        texts = [Continuation(self.tokenizer, ids[-1:], options.stop) for ids in encoded]
        if options.max_tokens > 0:
            for rows, chosen, _ in iter_sample(
                self._sampling_step(state),
                start,
                options.max_tokens,
                eos_id=None,
                temperature=options.temperature,
                top_k=options.top_k,
                top_p=options.top_p,
                seed=options.seed if seeds is None else seeds,
                no_repeat_ngram=options.no_repeat_ngram,
                repetition_penalty=options.repetition_penalty,
                context=encoded,
                cancelled=cancelled,
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
        self, prompt: str, options: DecodingOptions | None = None, **settings
    ) -> Iterator[str]:
        """Yield the continuation of ``prompt`` piece by piece as tokens are made.

        Settings (a :class:`DecodingOptions` and/or keywords of the same names):
        ``max_tokens`` tokens at most (default 200); ``temperature`` 0 is greedy; ``top_k`` and
        ``top_p`` (nucleus) cut the distribution before sampling; ``repetition_penalty`` > 1
        makes tokens already in the prompt or the text less likely; ``no_repeat_ngram`` forbids
        repeating an n-gram; the text ends before the first ``stop`` string. The same ``seed``
        gives the same text. An empty prompt starts at the beginning of a line. Invalid
        settings raise ValueError before anything is generated."""
        options = resolve_options(options, settings, "language_model")
        return self._stream(prompt, options)

    def _stream(self, prompt: str, options: DecodingOptions) -> Iterator[str]:
        for _, piece in self.continuations([prompt], options):
            yield piece

    def generate(
        self, prompts: Sequence[str] | str, options: DecodingOptions | None = None, **settings
    ) -> list[str]:
        """Continuations of a batch of prompts, sampled together (one model call per token for
        the whole batch); settings as :meth:`stream`. For one prompt and the same seed, the
        text is what :meth:`stream` yields."""
        options = resolve_options(options, settings, "language_model")
        if isinstance(prompts, str):
            prompts = [prompts]
        if not prompts:
            return []
        texts = [""] * len(prompts)
        for row, piece in self.continuations(prompts, options):
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
        require_keys(
            manifest,
            directory,
            "language-model",
            [
                ("graphs", "step", str),
                ("graphs", "state_names", list),
                ("graphs", "state_shapes", list),
                ("tokenizers", "text", dict),
            ],
        )
        tokenizer = load_tokenizer(manifest["tokenizers"]["text"], directory)
        graphs = manifest["graphs"]
        session = create_session(
            os.path.join(directory, graphs["step"]), device, threads, spin_us=STEP_SPIN_US
        )
        check_graph_inputs(
            session,
            os.path.join(directory, graphs["step"]),
            ["tokens", "origin", *graphs["state_names"]],
        )
        return cls(
            directory, manifest, tokenizer, session, device, io_binding_default(device, io_binding)
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

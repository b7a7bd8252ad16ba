"""examples/node: the same bundle decoded from Node.js with onnxruntime-node. The example is
installed with ``npm ci`` into a temporary copy, and its greedy ids must equal the Python
runtime's on 20 sentences (an LSTM bundle, and a GRU with input feeding: another state layout).
Skipped, saying why, where node or npm is missing or the install cannot reach the registry."""

from __future__ import annotations

import random
import shutil
import subprocess

import pytest
from conftest import ROOT, SOURCE_WORDS, export_random_model

from export.runtime import DecodingOptions, Translator

EXAMPLE = ROOT / "examples" / "node"
FILES = ("package.json", "package-lock.json", ".npmrc", "translate_ids.mjs")


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed: the Node.js example cannot run here")
    directory = tmp_path_factory.mktemp("node_example")
    for name in FILES:
        shutil.copy(EXAMPLE / name, directory / name)
    try:
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("npm ci took over 10 minutes (no registry reachable?)")
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"npm ci failed (offline, or no registry reachable?): {last}")
    return directory


def sentences(count: int = 20, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(SOURCE_WORDS, k=rng.randint(1, 12))) for _ in range(count)]


@pytest.mark.parametrize(
    "overrides",
    [{}, {"cell": "gru", "input_feeding": True, "bidirectional": False}],
    ids=["lstm", "gru-input-feeding"],
)
def test_node_greedy_ids_equal_the_python_runtime(example, tmp_path, overrides):
    bundle = export_random_model(tmp_path / "model", seed=3, **overrides).bundle
    translator = Translator.load(bundle)
    source = [translator.source_tokenizer.encode(s) for s in sentences()]
    expected = translator.search_batch(source, DecodingOptions(), None)
    lines = [" ".join(map(str, ids)) for ids in source]
    result = subprocess.run(
        ["node", "translate_ids.mjs", bundle],
        cwd=example,
        input="".join(line + "\n" for line in [*lines, ""]),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    output = [[int(t) for t in line.split()] for line in result.stdout.split("\n")[:-1]]
    assert output == [hypotheses[0].tokens for hypotheses in expected] + [[]]
    assert sum(len(ids) for ids in output) > 20  # real outputs, not empty lines

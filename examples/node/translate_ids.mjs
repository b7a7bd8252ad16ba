// Greedy translation with an rnn-seq-toolkit bundle's ONNX graphs, from Node.js.
//
//   npm ci
//   node translate_ids.mjs path/to/bundle < source_ids.txt > output_ids.txt
//
// Input and output are token ids, one sentence per line, space-separated: no npm package we
// could find reads sentencepiece models in a maintained way, so tokenize on the Python side
// (Translator.load(dir).source_tokenizer.encode(text)) or with your own sentencepiece build.
// The graphs, their inputs and outputs are described in docs/bundle-format.md; this program
// follows export/runtime/translator.py (greedy search, max_length (2.0, 10)) one sentence
// at a time, and prints the same ids as the Python runtime.

import { readFileSync } from "node:fs";
import path from "node:path";
import * as ort from "onnxruntime-node";

const bundle = process.argv[2];
if (!bundle) {
  console.error("usage: node translate_ids.mjs BUNDLE_DIR < source_ids.txt");
  process.exit(2);
}
const manifest = JSON.parse(readFileSync(path.join(bundle, "model.json"), "utf8"));
if (manifest.kind !== "translation") {
  console.error(`error: ${bundle} holds a ${manifest.kind} model, not a translation model`);
  process.exit(2);
}
const { bos: BOS, eos: EOS } = manifest.special_ids;
const { encoder: encoderFile, decoder_step: stepFile, state_names: stateNames } = manifest.graphs;
const [MAX_RATIO, MAX_CONSTANT] = [2.0, 10]; // output tokens <= 2 x source tokens + 10

const int64 = (values, dims) => new ort.Tensor("int64", BigInt64Array.from(values, BigInt), dims);

function argmax(row) {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i; // first of ties
  return best;
}

// One sentence: encode once, then feed the previous token and the state to the step graph
// until it chooses EOS or reaches the length limit.
async function translate(encoder, step, ids) {
  const src = [...ids, EOS];
  const encoded = await encoder.run({
    src: int64(src, [1, src.length]), // [batch, src_len], EOS-terminated
    src_lengths: int64([src.length], [1]), // [batch]
  });
  // memory, keys and mask stay the same for every step; h, c (and feed) are the state
  const memory = { memory: encoded.memory, keys: encoded.keys, mask: encoded.mask };
  let state = Object.fromEntries(stateNames.map((name) => [name, encoded[name]]));
  const origin = int64([0], [1]); // row 0 continues row 0 of the previous state
  const maxLength = Math.max(1, Math.floor(MAX_RATIO * ids.length + MAX_CONSTANT));
  const output = [];
  let token = BOS;
  for (let t = 0; t <= maxLength; t++) {
    const out = await step.run({ tokens: int64([token], [1]), origin, ...memory, ...state });
    token = t >= maxLength ? EOS : argmax(out.log_probs.data); // log_probs: [rows, vocab]
    if (token === EOS) break;
    output.push(token);
    state = Object.fromEntries(stateNames.map((name) => [name, out[`new_${name}`]]));
  }
  return output;
}

const options = { graphOptimizationLevel: "all", intraOpNumThreads: 1 };
const encoder = await ort.InferenceSession.create(path.join(bundle, encoderFile), options);
const step = await ort.InferenceSession.create(path.join(bundle, stepFile), options);
const lines = readFileSync(0, "utf8").split("\n");
if (lines.at(-1) === "") lines.pop();
for (const line of lines) {
  const ids = line.trim() ? line.trim().split(/\s+/).map(Number) : [];
  const output = ids.length ? await translate(encoder, step, ids) : []; // empty in, empty out
  process.stdout.write(output.join(" ") + "\n");
}

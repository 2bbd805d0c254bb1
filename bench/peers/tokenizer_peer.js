#!/usr/bin/env node
// Peer for bench/bench_tokenizer.cpp: HuggingFace tokenizers (Rust, official Node binding) on
// the same corpus (real queries of tests/data/tokenizer/golden.jsonl) and the same tokenizer
// (tests/data/tokenizer/tokenizer.json = bundled bert-base-uncased vocab, BERT pipeline).
// Prints one JSON line: batch MB/s (median of --reps encodeBatch runs over the whole corpus;
// wall-clock and per CPU-second of the process)
// and per-query latency percentiles of sequential encode() calls on ~64-id queries.
// Threads: HF parallelises encodeBatch with rayon; run with RAYON_NUM_THREADS=1
// TOKENIZERS_PARALLELISM=false for one core (run_tokenizer_compare.sh does both).
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('tokenizers');

const repo = path.resolve(__dirname, '..', '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const reps = Number(arg('--reps', 7));
const fixture = path.join(repo, 'tests', 'data', 'tokenizer');

function median(v) {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}
function pct(v, p) {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(p * (s.length - 1))];
}

async function main() {
  const tok = Tokenizer.fromFile(path.join(fixture, 'tokenizer.json'));
  const corpus = fs.readFileSync(path.join(fixture, 'golden.jsonl'), 'utf8').split('\n')
    .filter(Boolean).map((l) => JSON.parse(l))
    .filter((o) => !/^(tricky|invalid_utf8|fuzz)\//.test(o.src))
    .map((o) => o.text);
  const bytes = corpus.reduce((a, s) => a + Buffer.byteLength(s, 'utf8'), 0);

  await tok.encodeBatch(corpus.slice(0, 64));  // warm-up
  const secs = [], cpuSecs = [];
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const out = await tok.encodeBatch(corpus);
    const t1 = process.hrtime.bigint();
    const c = process.cpuUsage(c0);  // all threads of the process, rayon's included
    if (out.length !== corpus.length) throw new Error('encodeBatch lost inputs');
    secs.push(Number(t1 - t0) / 1e9);
    cpuSecs.push((c.user + c.system) / 1e6);
  }

  const q64 = [];
  for (const s of corpus) {
    const n = (await tok.encode(s)).getLength();
    if (n >= 60 && n <= 68) q64.push(s);
  }
  const us = [];
  const rounds = Math.max(1, Math.ceil(20000 / q64.length));
  for (let r = 0; r < rounds; r++) {
    for (const s of q64) {
      const t0 = process.hrtime.bigint();
      const e = await tok.encode(s);
      e.getIds();
      us.push(Number(process.hrtime.bigint() - t0) / 1e3);
    }
  }
  console.log(JSON.stringify({
    peer: 'hf-tokenizers-node',
    version: require('tokenizers/package.json').version,
    rayon_threads: process.env.RAYON_NUM_THREADS || 'default',
    corpus_queries: corpus.length,
    corpus_bytes: bytes,
    batch_mb_s: bytes / median(secs) / 1e6,
    batch_mb_per_cpu_s: bytes / median(cpuSecs) / 1e6,
    batch_us_per_query: (median(secs) * 1e6) / corpus.length,
    query64_count: q64.length,
    query64_p50_us: pct(us, 0.5),
    query64_p99_us: pct(us, 0.99),
  }));
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });

#!/usr/bin/env node
// ONNX Runtime (npm onnxruntime-node, CPU EP) peer for bench/bench_encoder.cpp: loads an ONNX
// model from export_onnx.py (input_ids int64 [batch, seq] -> pooled [batch, dim]), feeds the
// ids bench_encoder's make_ids() builds, and times --iters calls after --warmup calls.
// Prints one line:
//   ort: model=... threads=N spin=on|off batch=B seq=T iters=I p50_ms=... p99_ms=... seq_per_s=...
// --check REF.json (written by export_onnx.py) instead compares the model's output with PyTorch
// eager's on the same weights and prints the max abs difference.
// Install: cd bench/peers && npm ci   (.npmrc sets onnxruntime-node-install=skip: its install script
// otherwise tries to download CUDA binaries; the CPU library ships inside the npm package).
'use strict';
const ort = require('onnxruntime-node');

function parse(argv) {
  const a = { model: '', batch: 1, seq: 64, threads: 1, iters: 30, warmup: 3, spin: 'on', check: '', min_time: 0 };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i].replace(/^--/, '');
    if (!(k in a)) throw new Error(`unknown flag ${argv[i]}`);
    const v = argv[++i];
    a[k] = typeof a[k] === 'number' ? Number(v) : v;
  }
  if (!a.model) throw new Error('usage: ort_peer.js --model M.onnx [--batch B --seq T --threads N --iters I --min_time S --warmup W --spin on|off] [--check REF.json]');
  return a;
}

function makeIds(batch, seq) {  // bench_encoder.cpp make_ids()
  const ids = new BigInt64Array(batch * seq);
  for (let i = 0; i < ids.length; i++) ids[i] = BigInt(1000 + ((i * 7919) % 20000));
  for (let b = 0; b < batch; b++) {
    ids[b * seq] = 101n;
    ids[b * seq + seq - 1] = 102n;
  }
  return ids;
}

async function main() {
  const a = parse(process.argv);
  const session = await ort.InferenceSession.create(a.model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    intraOpNumThreads: a.threads,
    interOpNumThreads: 1,
    extra: { session: { intra_op: { allow_spinning: a.spin === 'on' ? '1' : '0' } } },
  });
  if (a.check) {
    const ref = JSON.parse(require('fs').readFileSync(a.check, 'utf8'));
    const ids = new BigInt64Array(ref.batch * ref.seq).fill(BigInt(ref.id));
    const out = await session.run({ input_ids: new ort.Tensor('int64', ids, [ref.batch, ref.seq]) });
    const got = out.pooled.data;
    let maxAbs = 0, maxRef = 0;
    for (let i = 0; i < ref.pooled.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(got[i] - ref.pooled[i]));
      maxRef = Math.max(maxRef, Math.abs(ref.pooled[i]));
    }
    console.log(`check: model=${a.model} n=${got.length}/${ref.pooled.length} max_abs_diff=${maxAbs.toExponential(3)} max_abs_ref=${maxRef.toFixed(3)}`);
    return;
  }
  const feeds = { input_ids: new ort.Tensor('int64', makeIds(a.batch, a.seq), [a.batch, a.seq]) };
  for (let i = 0; i < a.warmup; i++) await session.run(feeds);
  const ts = [];
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < a.iters || Number(process.hrtime.bigint() - t0) / 1e9 < a.min_time; i++) {
    const t = process.hrtime.bigint();
    const out = await session.run(feeds);
    ts.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (out.pooled.dims[0] !== a.batch) throw new Error('bad output shape');
  }
  const total = Number(process.hrtime.bigint() - t0) / 1e9;
  ts.sort((x, y) => x - y);
  const name = require('path').basename(a.model);
  console.log(`ort: model=${name} threads=${a.threads} spin=${a.spin} batch=${a.batch} seq=${a.seq} iters=${ts.length} ` +
    `p50_ms=${ts[ts.length >> 1].toFixed(3)} mean_ms=${(total * 1e3 / ts.length).toFixed(3)} p99_ms=${ts[Math.min(ts.length - 1, Math.floor(ts.length * 0.99))].toFixed(3)} ` +
    `seq_per_s=${(a.batch * ts.length / total).toFixed(1)}`);
}

main().catch((e) => { console.error(e); process.exit(1); });

#!/usr/bin/env node
// Records how HuggingFace tokenizers' BertNormalizer / BertPreTokenizer treat every code point,
// one JSON line per code point whose behaviour is not the identity:
//   {"cp":N, "c":<clean_text output>, "k":<chinese-char padding>, "s":<NFD + strip Mn>,
//    "l":<lowercase>, "p":<number of pieces "a"+ch+"a" pre-tokenizes into>}
// tools/gen_unicode_tables.py --hf-probe <file> turns the differences from Python's Unicode
// database into tools/unicode/hf_overrides.json (HF uses older Unicode categories via the
// unicode_categories crate and Rust std's newer case mappings).
// Usage: node probe_unicode.js <out.jsonl>
'use strict';
const fs = require('fs');
const t = require('tokenizers');

const out = process.argv[2];
if (!out) { console.error('usage: node probe_unicode.js <out.jsonl>'); process.exit(2); }
const only = (o) => t.bertNormalizer(Object.assign(
  { cleanText: false, handleChineseChars: false, stripAccents: false, lowercase: false }, o));
const clean = only({ cleanText: true });
const cjk = only({ handleChineseChars: true });
const strip = only({ stripAccents: true });
const lower = only({ lowercase: true });
const pre = t.bertPreTokenizer();
const lines = [];
for (let cp = 0; cp <= 0x10FFFF; cp++) {
  if (cp >= 0xD800 && cp <= 0xDFFF) continue;  // not representable in a JS string on its own
  const ch = String.fromCodePoint(cp);
  const r = {};
  const c = clean.normalizeString(ch); if (c !== ch) r.c = c;
  const k = cjk.normalizeString(ch); if (k !== ch) r.k = k;
  const s = strip.normalizeString(ch); if (s !== ch) r.s = s;
  const l = lower.normalizeString(ch); if (l !== ch) r.l = l;
  const p = pre.preTokenizeString('a' + ch + 'a').length;
  if (p !== 1) r.p = p;
  if (Object.keys(r).length) lines.push(JSON.stringify(Object.assign({ cp }, r)));
}
fs.writeFileSync(out, lines.join('\n') + '\n');
console.log(`probe_unicode: ${lines.length} code points with non-identity behaviour -> ${out}`);

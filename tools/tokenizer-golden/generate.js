#!/usr/bin/env node
// Builds the WordPiece parity fixture for routenlp with HuggingFace tokenizers (Node binding).
//
//   cd tools/tokenizer-golden && npm install && node generate.js [--data DIR] [--out DIR]
//
// --data: the reference data folder (routellm/, routerbench/, llmrouter/), default ../../../shared/data
// --out:  default ../../tests/data/tokenizer
// Writes, in --out:
//   tokenizer.json  bert-base-uncased as a HF tokenizer.json: BertNormalizer (clean text, CJK,
//                   strip accents, lowercase), BertPreTokenizer, WordPiece ([UNK], "##", 100
//                   chars), BertProcessing ([CLS] 101 / [SEP] 102); built from data/vocab.
//   golden.jsonl    one JSON object a line: {"src", "text", "ids"} with ids = HF encode(text)
//                   (src: tricky/*, fuzz/* (seeded random multi-script strings), invalid_utf8/*,
//                   then the real queries by source)
//                   WITHOUT truncation (specials included); "ids_trunc64" = HF with truncation
//                   to 64 for some long queries. Invalid-UTF-8 cases carry "bytes_b64" instead
//                   of "text"; their ids are HF's for the bytes decoded with U+FFFD replacement
//                   (the Node binding only accepts valid strings).
'use strict';
const fs = require('fs');
const path = require('path');
const t = require('tokenizers');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const here = __dirname;
const repo = path.resolve(here, '..', '..');
const dataDir = path.resolve(opt('--data', path.join(repo, '..', 'shared', 'data')));
const outDir = path.resolve(opt('--out', path.join(repo, 'tests', 'data', 'tokenizer')));
const vocabPath = path.join(repo, 'data', 'vocab', 'bert-base-uncased-vocab.txt');
const MAX_FIXTURE_BYTES = 2.95e6;

// Minimal RFC 4180 CSV reader: returns rows as arrays of fields.
function parseCsv(text) {
  const rows = [];
  let row = [], field = '', i = 0, quoted = false;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') { field += '"'; i += 2; continue; }
        quoted = false; i++; continue;
      }
      field += c; i++; continue;
    }
    if (c === '"') { quoted = true; i++; continue; }
    if (c === ',') { row.push(field); field = ''; i++; continue; }
    if (c === '\r' && text[i + 1] === '\n') { i++; continue; }
    if (c === '\n') { row.push(field); rows.push(row); row = []; field = ''; i++; continue; }
    field += c; i++;
  }
  if (field !== '' || row.length) { row.push(field); rows.push(row); }
  return rows;
}

function csvColumn(file, column) {
  const rows = parseCsv(fs.readFileSync(file, 'utf8'));
  const col = rows[0].indexOf(column);
  if (col < 0) throw new Error(`${file}: no column ${column}`);
  return rows.slice(1).map((r) => r[col]).filter((x) => typeof x === 'string' && x.length);
}

// Every k-th item so that about n are taken, deterministic.
function spread(items, n) {
  if (items.length <= n) return items;
  const out = [];
  const step = items.length / n;
  for (let k = 0; k < n; k++) out.push(items[Math.floor(k * step)]);
  return out;
}

function collectQueries() {
  const q = [];
  const add = (src, texts) => texts.forEach((text) => q.push({ src, text }));
  const mmluDir = path.join(dataDir, 'routellm', 'mmlu');
  for (const f of fs.readdirSync(mmluDir).filter((x) => x.endsWith('.csv')).sort())
    add('routellm/' + f.replace(/\.csv$/, ''), spread(csvColumn(path.join(mmluDir, f), 'prompt'), 15));
  add('routellm/gsm8k', spread(csvColumn(path.join(dataDir, 'routellm', 'gsm8k_responses.csv'), 'prompt'), 300));
  for (const f of ['gsm8k_contaminated_prompts.jsonl', 'mmlu_contaminated_prompts.jsonl']) {
    const lines = fs.readFileSync(path.join(dataDir, 'routellm', f), 'utf8').split('\n').filter(Boolean);
    for (const l of lines) {
      const o = JSON.parse(l);
      add('routellm/contaminated', [o.train_prompt, o.eval_prompt].filter(Boolean));
    }
  }
  // ARC prompts are long few-shot prompts (~2 KB): fewer of them.
  for (const [f, n] of [['arc_challenge_train.csv', 80], ['mbpp_train.csv', 300], ['winograde_train.csv', 300]])
    add('routerbench/' + f.replace(/_train\.csv$/, ''), spread(csvColumn(path.join(dataDir, 'routerbench', f), 'prompt'), n));
  const lr = fs.readFileSync(path.join(dataDir, 'llmrouter', 'default_query_train.jsonl'), 'utf8')
    .split('\n').filter(Boolean).map((l) => JSON.parse(l).query).filter(Boolean);
  add('llmrouter/default_query_train', spread(lr, 900));
  // De-duplicate, skip very long prompts, then interleave the sources round-robin so that the
  // size budget, if it bites, trims every source alike.
  const seen = new Set();
  const groups = new Map();
  for (const x of q) {
    if (seen.has(x.text) || x.text.length > 2200) continue;
    seen.add(x.text);
    const g = x.src.split('/')[0] + '/' + (x.src.startsWith('routellm/mmlu') ? 'mmlu' : x.src);
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push(x);
  }
  const out = [];
  const lists = [...groups.values()];
  for (let k = 0; out.length < seen.size && lists.some((l) => k < l.length); k++)
    for (const l of lists) if (k < l.length) out.push(l[k]);
  return out;
}

function trickyCases() {
  const cases = [
    ['hello', 'hello world'],
    ['accents', 'Héllo Wörld, café naïve façade résumé Ångström'],
    ['cjk', '我爱北京天安门'],
    ['cjk_mixed', 'BERT在中文上tokenize每个汉字, 日本語のテキスト, 한국어 텍스트'],
    ['punct_runs', '!!!???...'],
    ['punct_mixed', 'Wait... what?! (yes) [no] {maybe} <tag> "quoted" \'single\' a-b_c/d\\e|f~g`h^i'],
    ['emoji', 'I love pizza 🍕🍕 and 😀 smileys 👍🏽 👨‍👩‍👧 🥰'],
    ['long_word', 'a'.repeat(150)],
    ['word_100', 'b'.repeat(100)],
    ['word_101', 'c'.repeat(101)],
    ['long_word_mixed', 'prefix ' + 'supercalifragilistic'.repeat(6) + ' suffix'],
    ['empty', ''],
    ['whitespace_only', ' \t\n\r  \u00a0\u3000 '],
    ['control_chars', 'a\u0000b\u0001c\u0007d\u001be\u007ff\u0085g\u200bh\u200di\ufeffj\u00adk'],
    ['replacement_char', 'ab\ufffdcd \ufffd'],
    ['combining_marks', 'e\u0301 a\u0300\u0316 o\u0308\u0304 n\u0303 Z\u0351\u0360\u036b'],
    ['greek_casing', 'ΑΘΗΝΑ Ελληνικά ΣΟΦΟΣ σοφός ς'],
    ['cyrillic_casing', 'МОСКВА Москва ЁЖИК ёжик Її'],
    ['turkish_i', 'İstanbul ıi IİIı'],
    ['german_sharp_s', 'STRASSE Straße ẞ'],
    ['ligatures', 'ﬁne ﬂow Ǆ ǅ ǆ Ⅻ ①'],
    ['fullwidth', 'ＡＢＣ　ｄｅｆ！？'],
    ['math', 'x² + y² = z², ∑_{i=1}^{n} i = n(n+1)/2, ∫ f(x) dx ≈ 3.14159 ≤ ∞'],
    ['code', 'def f(x):\n\treturn x**2 + 1  # comment\nprint(f(3))'],
    ['url_email', 'see https://example.com/a?b=c&d=e#f or mail me@example.org'],
    ['numbers', '3.14 1,000,000 $5.99 50% 2024-01-01 10:30pm #1 @user'],
    ['arabic_hebrew', 'مرحبا بالعالم שלום עולם'],
    ['devanagari_thai', 'नमस्ते दुनिया สวัสดีชาวโลก'],
    ['hangul_jamo', '한글 가나다 ㄱㄴㄷ'],
    ['nfd_input', 'Cafe\u0301 vs Café'],
    ['greek_question', 'why\u037e ano\u0387teleia'],
    ['zero_width', 'zero\u200bwidth\u200cjoin\u2060word'],
    ['tabs_newlines', 'line1\nline2\r\nline3\tcol'],
    ['mixed_scripts', 'The Москва–Paris TGV costs €120; 東京 is 東京.'],
    ['repeated_specials', '[CLS] [SEP] [PAD] [MASK] [UNK] ##ing'],
    ['unknown_char', '\u2603 \u{1F9FF} \u{10FFFD} \ue000'],
    ['private_and_format', 'a\ue000b \u{F0000} c\u2066d\u2069'],
    ['only_punct', '.'],
    ['single_char', 'a'],
    ['digits_long', '1234567890'.repeat(12)],
    ['new_punct', 'a\u2e5db \u{11c41} \u166d'],
    ['musical_ccc', '\u{1D165}\u{1D16D}\u{1D165}'],
  ];
  return cases.map(([name, text]) => ({ src: 'tricky/' + name, text }));
}

function invalidUtf8Cases() {
  const B = (arr) => Buffer.from(arr);
  const cat = (...parts) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : B(p))));
  return [
    ['lone_continuation', cat('ab', [0x80], 'cd')],
    ['truncated_2byte', cat('caf', [0xC3])],
    ['truncated_3byte_mid', cat('x', [0xE6, 0x88], 'y z')],
    ['overlong_slash', cat('a', [0xC0, 0xAF], 'b')],
    ['surrogate', cat('s', [0xED, 0xA0, 0x80], 't')],
    ['above_max', cat('u', [0xF4, 0x90, 0x80, 0x80], 'v')],
    ['ff_fe', cat([0xFF, 0xFE], 'hello', [0xFF])],
    ['only_invalid', B([0xC3, 0x28, 0xA0, 0xA1])],
    ['latin1_text', B([0x63, 0x61, 0x66, 0xE9, 0x20, 0x6E, 0x61, 0xEF, 0x76, 0x65])],
  ].map(([name, bytes]) => ({ src: 'invalid_utf8/' + name, bytes }));
}

// Random short strings over many scripts (fixed seed): multi-character interactions of the
// normaliser (combining marks after letters, Hangul, CJK next to Latin, mixed punctuation).
function fuzzCases(n) {
  let seed = 20261126;
  const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  const cp = (lo, span) => String.fromCodePoint(lo + Math.floor(rnd() * span));
  const pools = [
    () => cp(32, 95), () => 'aeiouAEIOUnNcCsSzZyY'[Math.floor(rnd() * 20)],
    () => cp(0x300, 0x70), () => cp(0xC0, 0x180), () => cp(0x370, 0x200), () => cp(0x4E00, 0x5000),
    () => cp(0xAC00, 0x2BA4), () => cp(0x3040, 0x100), () => cp(0x2000, 0x200), () => cp(0x1F300, 0x400),
    () => { let c; do { c = Math.floor(rnd() * 0x30000); } while (c >= 0xD800 && c <= 0xDFFF); return String.fromCodePoint(c); },
    () => ' ', () => ['the', 'ing', 'tion', 'un', 'able', 'café', 'naïve', 'Ω', 'ﬁ', 'İ', 'ẞ'][Math.floor(rnd() * 11)],
  ];
  const out = [];
  for (let i = 0; i < n; i++) {
    let s = '';
    const len = 1 + Math.floor(rnd() * 40);
    for (let k = 0; k < len; k++) s += pools[Math.floor(rnd() * pools.length)]();
    out.push({ src: 'fuzz/' + i, text: s });
  }
  return out;
}

async function main() {
  if (!fs.existsSync(dataDir)) throw new Error(`data folder ${dataDir} not found (use --data)`);
  const model = await t.WordPiece.fromFile(vocabPath, {
    unkToken: '[UNK]', continuingSubwordPrefix: '##', maxInputCharsPerWord: 100,
  });
  const tok = new t.Tokenizer(model);
  tok.setNormalizer(t.bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: true, lowercase: true }));
  tok.setPreTokenizer(t.bertPreTokenizer());
  const cls = tok.tokenToId('[CLS]'), sep = tok.tokenToId('[SEP]');
  tok.setPostProcessor(t.bertProcessing(['[SEP]', sep], ['[CLS]', cls]));
  fs.mkdirSync(outDir, { recursive: true });
  const tokJson = path.join(outDir, 'tokenizer.json');
  tok.save(tokJson + '.tmp', false);
  fs.renameSync(tokJson + '.tmp', tokJson);

  const encode = async (text) => (await tok.encode(text)).getIds();
  const lines = [];
  let bytes = 0;
  const push = (o) => {
    const s = JSON.stringify(o);
    bytes += Buffer.byteLength(s) + 1;
    lines.push(s);
  };
  for (const c of trickyCases()) push({ src: c.src, text: c.text, ids: await encode(c.text) });
  for (const c of fuzzCases(500)) push({ src: c.src, text: c.text, ids: await encode(c.text) });
  for (const c of invalidUtf8Cases()) {
    push({ src: c.src, bytes_b64: c.bytes.toString('base64'), ids: await encode(c.bytes.toString('utf8')) });
  }
  const queries = collectQueries();
  let kept = 0, truncated = 0;
  for (const q of queries) {
    const rec = { src: q.src, text: q.text, ids: await encode(q.text) };
    if (rec.ids.length > 64 && truncated < 150 && kept % 7 === 0) {
      tok.setTruncation(64);
      rec.ids_trunc64 = (await tok.encode(q.text)).getIds();
      tok.disableTruncation();
      truncated++;
    }
    const size = Buffer.byteLength(JSON.stringify(rec)) + 1;
    if (bytes + size > MAX_FIXTURE_BYTES) continue;  // keep the fixture small: skip what does not fit
    push(rec);
    kept++;
  }
  const golden = path.join(outDir, 'golden.jsonl');
  fs.writeFileSync(golden + '.tmp', lines.join('\n') + '\n');
  fs.renameSync(golden + '.tmp', golden);
  console.log(`generate: ${kept} queries of ${queries.length} + ${trickyCases().length} tricky + ` +
    `${invalidUtf8Cases().length} invalid-UTF-8 + 500 random multi-script cases, ${truncated} with ids_trunc64, ` +
    `${(bytes / 1e6).toFixed(2)} MB -> ${golden}`);
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });

#!/usr/bin/env python3
"""Generates lib/text/unicode_tables.inc for routenlp's WordPiece tokenizer.

Source of truth: Python's `unicodedata` (general categories, canonical decompositions,
combining classes, lower-case mappings) corrected by tools/unicode/hf_overrides.json, the
measured differences from HuggingFace tokenizers (its Rust crates classify with older Unicode
categories and lower-case with Rust std's newer tables). Regenerate the overrides with
    node tools/tokenizer-golden/probe_unicode.js /tmp/probe.jsonl
    python3 tools/gen_unicode_tables.py --hf-probe /tmp/probe.jsonl
which also verifies that the final tables reproduce the probe for every code point.
Plain `python3 tools/gen_unicode_tables.py` regenerates the .inc from the committed overrides.
"""
import argparse
import json
import os
import sys
import unicodedata as ud

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OVERRIDES = os.path.join(ROOT, "tools", "unicode", "hf_overrides.json")
OUT = os.path.join(ROOT, "lib", "text", "unicode_tables.inc")

F_DROP, F_WS, F_PUNCT, F_MN, F_LOWER, F_DECOMP, F_CCC, F_CJK = (1 << i for i in range(8))
MAXCP = 0x110000
# Rust char::is_whitespace (Unicode White_Space) plus the tab/newline/return BERT adds.
WHITESPACE = {0x9, 0xA, 0xB, 0xC, 0xD, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F,
              0x205F, 0x3000} | set(range(0x2000, 0x200B))
CJK_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]


def is_hangul_syllable(cp):
    return 0xAC00 <= cp <= 0xD7A3


def valid(cp):
    return not (0xD800 <= cp <= 0xDFFF)


def python_model():
    """Per-property sets from Python's Unicode database (BERT's definitions)."""
    drop, punct, mn, decomp, lower = set(), set(), set(), {}, {}
    for cp in range(MAXCP):
        if not valid(cp):
            continue
        ch = chr(cp)
        cat = ud.category(ch)
        if cp == 0 or cp == 0xFFFD or (cp not in (9, 10, 13) and cat in ("Cc", "Cf", "Co", "Cs")):
            drop.add(cp)
        if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or cat[0] == "P":
            punct.add(cp)
        if cat == "Mn":
            mn.add(cp)
        d = ud.normalize("NFD", ch)
        if d != ch and not is_hangul_syllable(cp):
            decomp[cp] = [ord(c) for c in d]
        lo = ch.lower()  # per character: no final-sigma context, like Rust char::to_lowercase
        if lo != ch:
            lower[cp] = [ord(c) for c in lo]
    return drop, punct, mn, decomp, lower


def apply_overrides(model, ov):
    drop, punct, mn, decomp, lower = model
    drop -= set(ov["not_drop"]); drop |= set(ov["drop"])
    punct -= set(ov["not_punct"]); punct |= set(ov["punct"])
    mn -= set(ov["not_mn"]); mn |= set(ov["mn"])
    for cp in ov["no_decomp"]:
        decomp.pop(cp, None)
    for k, v in ov["lower"].items():
        if v == [int(k)]:
            lower.pop(int(k), None)
        else:
            lower[int(k)] = v
    return drop, punct, mn, decomp, lower


def strip_one(cp, mn, decomp):
    if is_hangul_syllable(cp):
        return [ord(c) for c in ud.normalize("NFD", chr(cp))]
    return [d for d in decomp.get(cp, [cp]) if d not in mn]


def load_probe(path):
    probe = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            probe[r.pop("cp")] = r
    return probe


def derive_overrides(probe):
    drop, punct, mn, decomp, lower = python_model()
    ov = {k: [] for k in ("drop", "not_drop", "punct", "not_punct", "mn", "not_mn", "no_decomp")}
    ov["lower"] = {}
    for cp in range(MAXCP):
        if not valid(cp):
            continue
        ch = chr(cp)
        r = probe.get(cp, {})
        hf_drop = r.get("c", ch) == ""
        if hf_drop != (cp in drop):
            ov["drop" if hf_drop else "not_drop"].append(cp)
        hf_punct = r.get("p", 1) == 3
        if hf_punct != (cp in punct):
            ov["punct" if hf_punct else "not_punct"].append(cp)
        if cp not in decomp and not is_hangul_syllable(cp):
            hf_mn = r.get("s", ch) == ""
            if hf_mn != (cp in mn):
                ov["mn" if hf_mn else "not_mn"].append(cp)
        hf_lower = [ord(c) for c in r.get("l", ch)]
        if hf_lower != lower.get(cp, [cp]):
            ov["lower"][str(cp)] = hf_lower
    # Decompositions HF's (older) normalization tables lack: the probe returns the char itself.
    _, _, mn2, _, _ = apply_overrides(python_model(), ov)
    for cp, d in decomp.items():
        got = [ord(c) for c in probe.get(cp, {}).get("s", chr(cp))]
        if got != [x for x in d if x not in mn2] and got == [cp]:
            ov["no_decomp"].append(cp)
    return ov


def verify(model, probe):
    drop, punct, mn, decomp, lower = model
    bad = []
    for cp in range(MAXCP):
        if not valid(cp):
            continue
        ch = chr(cp)
        r = probe.get(cp, {})
        ws = cp in WHITESPACE
        exp_c = "" if cp in drop else (" " if ws else ch)
        exp_k = " " + ch + " " if any(a <= cp <= b for a, b in CJK_RANGES) else ch
        exp_s = "".join(map(chr, strip_one(cp, mn, decomp)))
        exp_l = "".join(map(chr, lower.get(cp, [cp])))
        exp_p = 2 if ws else (3 if cp in punct else 1)
        if (r.get("c", ch), r.get("k", ch), r.get("s", ch), r.get("l", ch), r.get("p", 1)) != \
                (exp_c, exp_k, exp_s, exp_l, exp_p):
            bad.append(cp)
    return bad


def ranges(sorted_cps):
    out = []
    for cp in sorted_cps:
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return out


def emit(model, path):
    drop, punct, mn, decomp, lower = model
    flags = bytearray(MAXCP)
    for cp in drop: flags[cp] |= F_DROP
    for cp in WHITESPACE: flags[cp] |= F_WS
    for cp in punct: flags[cp] |= F_PUNCT
    for cp in mn: flags[cp] |= F_MN
    for cp in lower: flags[cp] |= F_LOWER
    for cp in decomp: flags[cp] |= F_DECOMP
    for cp in range(0xAC00, 0xD7A4): flags[cp] |= F_DECOMP
    ccc = {}
    for cp in range(MAXCP):
        if valid(cp) and ud.combining(chr(cp)):
            ccc[cp] = ud.combining(chr(cp))
            flags[cp] |= F_CCC
    for a, b in CJK_RANGES:
        for cp in range(a, b + 1): flags[cp] |= F_CJK
    # Two-stage table: 256-code-point blocks, deduplicated.
    blocks, index, stage1 = [], {}, []
    for b in range(MAXCP // 256):
        blk = bytes(flags[b * 256:(b + 1) * 256])
        if blk not in index:
            index[blk] = len(blocks)
            blocks.append(blk)
        stage1.append(index[blk])
    L = []
    L.append("// Generated by tools/gen_unicode_tables.py from Python unicodedata %s" % ud.unidata_version)
    L.append("// + tools/unicode/hf_overrides.json (HuggingFace tokenizers parity). Do not edit.")
    L.append("// clang-format off")
    L.append("namespace routenlp::detail::uni {")
    L.append("static_assert(kDrop == %d && kWs == %d && kPunct == %d && kMn == %d && kLower == %d "
             "&& kDecomp == %d && kCcc == %d && kCjk == %d, \"flag bits\");" %
             (F_DROP, F_WS, F_PUNCT, F_MN, F_LOWER, F_DECOMP, F_CCC, F_CJK))
    L.append("constexpr uint16_t kStage1[%d] = {" % len(stage1))
    for i in range(0, len(stage1), 24):
        L.append(",".join(str(x) for x in stage1[i:i + 24]) + ",")
    L.append("};")
    L.append("constexpr uint8_t kStage2[%d] = {" % (len(blocks) * 256))
    for blk in blocks:
        for i in range(0, 256, 32):
            L.append(",".join(str(x) for x in blk[i:i + 32]) + ",")
    L.append("};")

    def mapping(name, m):
        keys = sorted(m)
        pool, offs = [], []
        for k in keys:
            offs.append((k, len(pool), len(m[k])))
            pool.extend(m[k])
        L.append("constexpr uint32_t k%sPool[%d] = {" % (name, len(pool)))
        for i in range(0, len(pool), 12):
            L.append(",".join("0x%X" % x for x in pool[i:i + 12]) + ",")
        L.append("};")
        L.append("constexpr MapEntry k%sMap[%d] = {" % (name, len(offs)))
        for i in range(0, len(offs), 6):
            L.append(" ".join("{0x%X,%d,%d}," % o for o in offs[i:i + 6]))
        L.append("};")
    mapping("Lower", lower)
    mapping("Decomp", decomp)
    cr = []
    for cp in sorted(ccc):
        if cr and cr[-1][1] == cp - 1 and cr[-1][2] == ccc[cp]:
            cr[-1][1] = cp
        else:
            cr.append([cp, cp, ccc[cp]])
    L.append("constexpr CccRange kCccRanges[%d] = {" % len(cr))
    for i in range(0, len(cr), 6):
        L.append(" ".join("{0x%X,0x%X,%d}," % tuple(r) for r in cr[i:i + 6]))
    L.append("};")
    L.append("}  // namespace routenlp::detail::uni")
    L.append("// clang-format on")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write("\n".join(L) + "\n")
    os.replace(tmp, path)
    print("wrote %s: %d blocks, %d lower, %d decomp, %d ccc ranges" %
          (path, len(blocks), len(lower), len(decomp), len(cr)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hf-probe", help="probe_unicode.js output: re-derive and verify overrides")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    if args.hf_probe:
        probe = load_probe(args.hf_probe)
        ov = derive_overrides(probe)
        model = apply_overrides(python_model(), ov)
        bad = verify(model, probe)
        if bad:
            sys.exit("tables still differ from the probe at %d code points, first: %s" %
                     (len(bad), [hex(c) for c in bad[:20]]))
        ov["_comment"] = ("Differences between Python unicodedata %s and HuggingFace tokenizers, "
                          "measured by tools/tokenizer-golden/probe_unicode.js" % ud.unidata_version)
        ov_out = {k: (ranges(v) if isinstance(v, list) else v) for k, v in ov.items()
                  if k != "_comment"}
        ov_out["_comment"] = ov["_comment"]
        tmp = OVERRIDES + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(ov_out, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, OVERRIDES)
        print("verified against the probe; wrote %s" % OVERRIDES)
    with open(OVERRIDES, encoding="utf-8") as f:
        raw = json.load(f)
    ov = {}
    for k, v in raw.items():
        if k == "_comment":
            continue
        if k == "lower":
            ov[k] = v
        else:
            ov[k] = [cp for a, b in v for cp in range(a, b + 1)]
    emit(apply_overrides(python_model(), ov), args.out)


if __name__ == "__main__":
    main()

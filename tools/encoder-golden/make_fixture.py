#!/usr/bin/env python3
"""Builds the tiny DistilBERT parity fixture for tests/test_encoder.cpp.

Writes <out>/config.json, <out>/model.safetensors and <out>/expected.json (token ids, masks and
the expected last_hidden_state for a few batches, plus a sinusoidal position table).

Backends for the expected outputs:
  transformers  HF transformers' own DistilBertModel (preferred; installed on the GPU machine)
  reference     an independent PyTorch re-implementation of HF's DistilBERT math (below)
  auto          transformers when importable, else reference (default)
The weights do not depend on the backend: they are drawn from a seeded torch.Generator and
loaded into whichever model computes the outputs, so both backends produce the same
model.safetensors and (to ~1e-6) the same expected.json.

Usage: python3 tools/encoder-golden/make_fixture.py [--out tests/data/encoder/tiny] [--backend auto]
Needs: torch (Debian python3-torch is enough for the reference backend).
"""
import argparse
import json
import math
import os
import struct
import sys

import torch

CONFIG = {
    "activation": "gelu",
    "architectures": ["DistilBertModel"],
    "attention_dropout": 0.1,
    "dim": 32,
    "dropout": 0.1,
    "hidden_dim": 64,
    "initializer_range": 0.02,
    "max_position_embeddings": 64,
    "model_type": "distilbert",
    "n_heads": 4,
    "n_layers": 2,
    "pad_token_id": 0,
    "qa_dropout": 0.1,
    "seq_classif_dropout": 0.2,
    "sinusoidal_pos_embds": False,
    "tie_weights_": True,
    "vocab_size": 1000,
}
SEED = 20240613


def hf_names(c):
    names = ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
             "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]
    for i in range(c["n_layers"]):
        p = f"transformer.layer.{i}."
        for lin in ("attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin"):
            names += [p + lin + ".weight", p + lin + ".bias"]
        names += [p + "sa_layer_norm.weight", p + "sa_layer_norm.bias",
                  p + "ffn.lin1.weight", p + "ffn.lin1.bias", p + "ffn.lin2.weight", p + "ffn.lin2.bias",
                  p + "output_layer_norm.weight", p + "output_layer_norm.bias"]
    return names


def shapes(c):
    d, h = c["dim"], c["hidden_dim"]
    out = {"embeddings.word_embeddings.weight": (c["vocab_size"], d),
           "embeddings.position_embeddings.weight": (c["max_position_embeddings"], d)}
    for n in hf_names(c):
        if n in out:
            continue
        if "lin1.weight" in n:
            out[n] = (h, d)
        elif "lin1.bias" in n:
            out[n] = (h,)
        elif "lin2.weight" in n:
            out[n] = (d, h)
        elif n.endswith("lin.weight"):
            out[n] = (d, d)
        else:
            out[n] = (d,)
    return out


def make_weights(c):
    """Seeded weights: N(0, 0.2) matrices, LayerNorm weight 1 + N(0, 0.1), biases N(0, 0.05)."""
    g = torch.Generator().manual_seed(SEED)
    w = {}
    for n, s in shapes(c).items():
        if "LayerNorm.weight" in n or "layer_norm.weight" in n:
            t = 1.0 + 0.1 * torch.randn(s, generator=g)
        elif n.endswith(".bias"):
            t = 0.05 * torch.randn(s, generator=g)
        else:
            t = 0.2 * torch.randn(s, generator=g)
        w[n] = t.float().contiguous()
    w["embeddings.word_embeddings.weight"][c["pad_token_id"]] = 0.0
    return w


def make_cases(c):
    g = torch.Generator().manual_seed(SEED + 1)
    V = c["vocab_size"]

    def sent(n):  # [CLS] random pieces [SEP], ids in 999 >= id >= 103
        return [101] + torch.randint(103, V, (n - 2,), generator=g).tolist() + [102]

    cases = []
    lens = [12, 7, 3, 12]
    T = max(lens)
    ids, mask = [], []
    for L in lens:
        s = sent(L)
        ids += s + [0] * (T - L)
        mask += [1] * L + [0] * (T - L)
    cases.append({"name": "padded_batch", "batch": len(lens), "seq_len": T, "ids": ids, "attention_mask": mask})
    cases.append({"name": "single_unpadded", "batch": 1, "seq_len": 16, "ids": sent(16), "attention_mask": [1] * 16})
    T = c["max_position_embeddings"]
    ids = sent(T) + sent(T)
    cases.append({"name": "max_length", "batch": 2, "seq_len": T, "ids": ids, "attention_mask": [1] * (2 * T)})
    return cases


# ----------------------------------------------------------------------------------------------
# Independent reference implementation of HF DistilBertModel (eval mode) in plain torch ops.
def reference_forward(w, c, ids, mask):
    d, H = c["dim"], c["n_heads"]
    dh = d // H
    B, T = ids.shape
    eps = 1e-12

    def ln(x, p):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + eps) * w[p + ".weight"] + w[p + ".bias"]

    def lin(x, p):
        return x @ w[p + ".weight"].t() + w[p + ".bias"]

    def gelu(x):  # exact (erf) GELU
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))

    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][torch.arange(T)][None]
    x = ln(x, "embeddings.LayerNorm")
    neg = torch.finfo(torch.float32).min
    for i in range(c["n_layers"]):
        p = f"transformer.layer.{i}."
        q = lin(x, p + "attention.q_lin").view(B, T, H, dh).transpose(1, 2) / math.sqrt(dh)
        k = lin(x, p + "attention.k_lin").view(B, T, H, dh).transpose(1, 2)
        v = lin(x, p + "attention.v_lin").view(B, T, H, dh).transpose(1, 2)
        s = q @ k.transpose(2, 3)
        s = s.masked_fill((mask == 0).view(B, 1, 1, T), neg)
        a = torch.softmax(s, dim=-1) @ v
        a = lin(a.transpose(1, 2).reshape(B, T, d), p + "attention.out_lin")
        x = ln(a + x, p + "sa_layer_norm")
        f = lin(gelu(lin(x, p + "ffn.lin1")), p + "ffn.lin2")
        x = ln(f + x, p + "output_layer_norm")
    return x


def reference_sinusoidal(n_pos, dim):
    enc = [[pos / (10000 ** (2 * (j // 2) / dim)) for j in range(dim)] for pos in range(n_pos)]
    out = torch.zeros(n_pos, dim)
    t = torch.tensor(enc, dtype=torch.float64)
    out[:, 0::2] = torch.sin(t[:, 0::2]).float()
    out[:, 1::2] = torch.cos(t[:, 1::2]).float()
    return out


# ----------------------------------------------------------------------------------------------
def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    off = 0
    blobs = []
    for name, t in tensors.items():
        b = t.contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "tests", "data", "encoder", "tiny"))
    ap.add_argument("--backend", choices=["auto", "transformers", "reference"], default="auto")
    args = ap.parse_args()

    backend = args.backend
    tf = None
    if backend in ("auto", "transformers"):
        try:
            import transformers as tf  # noqa: F401
            from transformers import DistilBertConfig, DistilBertModel
            from transformers.models.distilbert.modeling_distilbert import create_sinusoidal_embeddings
            backend = "transformers"
        except Exception as e:  # noqa: BLE001
            if args.backend == "transformers":
                sys.exit(f"make_fixture: transformers not importable: {e}")
            backend = "reference"

    torch.set_grad_enabled(False)
    c = CONFIG
    w = make_weights(c)
    cases = make_cases(c)
    if backend == "transformers":
        cfg = DistilBertConfig(**{k: v for k, v in c.items() if k not in ("architectures", "model_type")})
        try:
            model = DistilBertModel(cfg, attn_implementation="eager")
        except TypeError:
            model = DistilBertModel(cfg)
        model.eval()
        missing, unexpected = model.load_state_dict(w, strict=False)
        missing = [m for m in missing if m != "embeddings.position_ids"]
        if missing or unexpected:
            sys.exit(f"make_fixture: state_dict mismatch: missing={missing} unexpected={unexpected}")
        if sorted(k for k in model.state_dict() if k != "embeddings.position_ids") != sorted(hf_names(c)):
            sys.exit("make_fixture: HF state_dict keys differ from hf_names()")

        def forward(ids, mask):
            return model(input_ids=ids, attention_mask=mask).last_hidden_state

        sin = torch.zeros(c["max_position_embeddings"], c["dim"])
        create_sinusoidal_embeddings(c["max_position_embeddings"], c["dim"], sin)
        versions = {"torch": torch.__version__, "transformers": tf.__version__}
    else:
        def forward(ids, mask):
            return reference_forward(w, c, ids, mask)

        sin = reference_sinusoidal(c["max_position_embeddings"], c["dim"])
        versions = {"torch": torch.__version__}

    for case in cases:
        ids = torch.tensor(case["ids"], dtype=torch.long).view(case["batch"], case["seq_len"])
        mask = torch.tensor(case["attention_mask"], dtype=torch.long).view(case["batch"], case["seq_len"])
        out = forward(ids, mask).float()
        case["last_hidden_state"] = [float(v) for v in out.reshape(-1).tolist()]

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)
        f.write("\n")
    write_safetensors(os.path.join(args.out, "model.safetensors"), {n: w[n] for n in hf_names(c)},
                      {"format": "pt", "generator": "tools/encoder-golden/make_fixture.py"})
    expected = {
        "backend": backend,
        "versions": versions,
        "seed": SEED,
        "cases": cases,
        "sinusoidal": {"n_pos": c["max_position_embeddings"], "dim": c["dim"],
                       "table": [float(v) for v in sin.reshape(-1).tolist()]},
    }
    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump(expected, f, separators=(",", ":"))
        f.write("\n")
    print(f"make_fixture: wrote {args.out} (backend {backend}, {len(cases)} cases)")


if __name__ == "__main__":
    main()

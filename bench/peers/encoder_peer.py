#!/usr/bin/env python3
"""Python PyTorch eager peer for bench/bench_encoder.cpp: the same DistilBERT shapes and (with
--weights) the same weights, timed the same way (embed batch -> pooled [CLS], median of --iters).

Uses HF transformers' DistilBertModel when importable (--impl auto/transformers), else an eager
nn.Module with HF's DistilBERT math (--impl own). Prints one line:
  peer: impl=... config=... device=... dtype=... threads=N batch=B seq=T p50_ms=... p99_ms=... seq_per_s=...
"""
import argparse
import json
import math
import os
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BASE = dict(vocab_size=30522, max_position_embeddings=512, dim=768, n_layers=6, n_heads=12, hidden_dim=3072)
SMALL = dict(vocab_size=30522, max_position_embeddings=128, dim=256, n_layers=4, n_heads=4, hidden_dim=1024)


class Attn(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["dim"]
        self.h = c["n_heads"]
        self.q_lin, self.k_lin, self.v_lin, self.out_lin = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x, mask):
        B, T, d = x.shape
        dh = d // self.h
        sh = lambda t: t.view(B, T, self.h, dh).transpose(1, 2)  # noqa: E731
        q = sh(self.q_lin(x)) / math.sqrt(dh)
        s = q @ sh(self.k_lin(x)).transpose(2, 3)
        if mask is not None:
            s = s.masked_fill((mask == 0).view(B, 1, 1, T), torch.finfo(s.dtype).min)
        a = torch.softmax(s, -1) @ sh(self.v_lin(x))
        return self.out_lin(a.transpose(1, 2).reshape(B, T, d))


class FFN(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.lin1 = nn.Linear(c["dim"], c["hidden_dim"])
        self.lin2 = nn.Linear(c["hidden_dim"], c["dim"])

    def forward(self, x):
        return self.lin2(F.gelu(self.lin1(x)))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = Attn(c)
        self.sa_layer_norm = nn.LayerNorm(c["dim"], eps=1e-12)
        self.ffn = FFN(c)
        self.output_layer_norm = nn.LayerNorm(c["dim"], eps=1e-12)

    def forward(self, x, mask):
        x = self.sa_layer_norm(self.attention(x, mask) + x)
        return self.output_layer_norm(self.ffn(x) + x)


class Emb(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["dim"], padding_idx=0)
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["dim"])
        self.LayerNorm = nn.LayerNorm(c["dim"], eps=1e-12)

    def forward(self, ids):
        pos = torch.arange(ids.shape[1], device=ids.device)
        return self.LayerNorm(self.word_embeddings(ids) + self.position_embeddings(pos)[None])


class Transformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList(Block(c) for _ in range(c["n_layers"]))


class DistilBert(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = Emb(c)
        self.transformer = Transformer(c)

    def forward(self, input_ids, attention_mask=None):
        x = self.embeddings(input_ids)
        for blk in self.transformer.layer:
            x = blk(x, attention_mask)
        return x


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", f"{name}: only F32 supported by the peer"
        b, en = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[b:en]), dtype=torch.float32).view(e["shape"]).clone()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", choices=["base", "small"], default="base")
    ap.add_argument("--weights", help="model.safetensors written by bench_encoder (ROUTENLP_BENCH_WEIGHTS_DIR)")
    ap.add_argument("--impl", choices=["auto", "transformers", "own"], default="auto")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default="fp32")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = leave)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--iters", type=int, default=50)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    c = BASE if a.config == "base" else SMALL
    impl = a.impl
    model = None
    if impl in ("auto", "transformers"):
        try:
            from transformers import DistilBertConfig, DistilBertModel
            model = DistilBertModel(DistilBertConfig(**c))
            impl = "transformers"
        except Exception:
            if impl == "transformers":
                raise
            impl = "own"
    if model is None:
        model = DistilBert(c)
    if a.weights:
        sd = read_safetensors(a.weights)
        missing, unexpected = model.load_state_dict(sd, strict=False)
        missing = [m for m in missing if "position_ids" not in m]
        assert not missing and not unexpected, (missing, unexpected)
    dt = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[a.dtype]
    dev = torch.device(a.device)
    model = model.to(dev, dt).eval()
    ids = torch.tensor([[1000 + (i * 7919) % 20000 for i in range(b * a.seq, (b + 1) * a.seq)] for b in range(a.batch)])
    ids[:, 0] = 101
    ids[:, -1] = 102

    def once():
        out = model(input_ids=ids.to(dev))
        h = out.last_hidden_state if hasattr(out, "last_hidden_state") else out
        return h[:, 0].float().cpu()

    ts = []
    with torch.inference_mode():
        for _ in range(3):
            once()
        t_all = time.perf_counter()
        for _ in range(a.iters):
            t = time.perf_counter()
            once()
            ts.append((time.perf_counter() - t) * 1e3)
        total = time.perf_counter() - t_all
    ts.sort()
    print(f"peer: impl={impl} config={a.config} device={a.device} dtype={a.dtype} threads={torch.get_num_threads()} "
          f"omp_wait_policy={os.environ.get('OMP_WAIT_POLICY', 'unset')} batch={a.batch} seq={a.seq} "
          f"p50_ms={ts[len(ts) // 2]:.3f} p99_ms={ts[min(len(ts) - 1, len(ts) * 99 // 100)]:.3f} "
          f"seq_per_s={a.batch * a.iters / total:.1f}")


if __name__ == "__main__":
    main()

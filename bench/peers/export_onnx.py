#!/usr/bin/env python3
"""Export the weights that bench_encoder saves (ROUTENLP_BENCH_WEIGHTS_DIR=dir -> dir/{small,base})
to ONNX for the ONNX Runtime peer (ort_peer.js, run_ort_compare.sh).

  python3 export_onnx.py HF_DIR OUT_PREFIX      writes OUT_PREFIX.fp32.onnx and OUT_PREFIX.int8.onnx

The model is encoder_peer.py's eager DistilBERT (HF DistilBertModel math) built from HF_DIR's
config.json and model.safetensors; input `input_ids` int64 [batch, seq] (dynamic), no attention
mask (bench_encoder passes none: all ones), output `pooled` fp32 [batch, dim] = last hidden state
of [CLS], i.e. what Encoder::embed_ids returns with Pooling::cls.

int8: the onnxruntime Python package (and so onnxruntime.quantization.quantize_dynamic) is not
installable here (Debian and npm only), so the int8 model is built by hand with the graph that
quantize_dynamic writes for MatMul in its default mode (QOperator off, per-tensor, symmetric int8
weights, uint8 activations quantized per call): x -> DynamicQuantizeLinear -> MatMulInteger(x_q,
W_q, x_zp, 0) -> Cast(float) -> Mul(x_scale * w_scale) -> (the original bias Add). ORT fuses that
into MatMulIntegerToFloat / DynamicQuantizeMatMul at load. Only MatMuls whose right operand is a
2-D initializer (the linear layers) are quantized, as routenlp's int8_dynamic does; embeddings,
LayerNorm and attention score/context MatMuls stay fp32.
Needs python3-torch (torch.onnx.export) and python3-onnx (Debian bookworm: 1.13 / 1.12).
"""
import json
import os
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from encoder_peer import DistilBert, read_safetensors  # noqa: E402


class Pooled(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids):
        return self.m(input_ids, None)[:, 0]


def load(hf_dir):
    with open(os.path.join(hf_dir, "config.json")) as f:
        cfg = json.load(f)
    c = {k: cfg[k] for k in ("vocab_size", "max_position_embeddings", "dim", "n_layers", "n_heads", "hidden_dim")}
    model = DistilBert(c)
    sd = read_safetensors(os.path.join(hf_dir, "model.safetensors"))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [m for m in missing if "position_ids" not in m]
    unexpected = [u for u in unexpected if "position_ids" not in u]
    assert not missing and not unexpected, (missing, unexpected)
    return Pooled(model.eval()), c


def quantize_matmuls(m):
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    nodes, n_q = [], 0
    for nd in g.node:
        w = inits.get(nd.input[1]) if nd.op_type == "MatMul" and len(nd.input) == 2 else None
        if w is None or len(w.dims) != 2:
            nodes.append(nd)
            continue
        wf = numpy_helper.to_array(w).astype(np.float32)
        ws = float(np.abs(wf).max()) / 127.0 or 1.0
        wq = np.clip(np.round(wf / ws), -127, 127).astype(np.int8)
        p = f"q{n_q}_"
        g.initializer.extend([
            numpy_helper.from_array(wq, p + "W"),
            numpy_helper.from_array(np.array(ws, np.float32), p + "Wscale"),
            numpy_helper.from_array(np.array(0, np.int8), p + "Wzp"),
        ])
        x = nd.input[0]
        nodes += [
            helper.make_node("DynamicQuantizeLinear", [x], [p + "xq", p + "xs", p + "xzp"], name=p + "dql"),
            helper.make_node("MatMulInteger", [p + "xq", p + "W", p + "xzp", p + "Wzp"], [p + "acc"], name=p + "mmi"),
            helper.make_node("Cast", [p + "acc"], [p + "accf"], to=TensorProto.FLOAT, name=p + "cast"),
            helper.make_node("Mul", [p + "xs", p + "Wscale"], [p + "s"], name=p + "smul"),
            helper.make_node("Mul", [p + "accf", p + "s"], [nd.output[0]], name=p + "mul"),
        ]
        n_q += 1
    del g.node[:]
    g.node.extend(nodes)
    used = {i for nd in g.node for i in nd.input}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    return n_q


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    hf_dir, out = sys.argv[1], sys.argv[2]
    model, c = load(hf_dir)
    ids = torch.full((2, 16), 1000, dtype=torch.int64)
    with torch.inference_mode():
        ref = model(ids)
    torch.onnx.export(model, (ids,), out + ".fp32.onnx", input_names=["input_ids"], output_names=["pooled"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "pooled": {0: "batch"}},
                      opset_version=14, do_constant_folding=True)
    m = onnx.load(out + ".fp32.onnx")
    onnx.checker.check_model(m)
    n_q = quantize_matmuls(m)
    onnx.checker.check_model(m)
    onnx.save(m, out + ".int8.onnx")
    with open(out + ".ref.json", "w") as f:  # pooled output for input_ids = 1000 everywhere, [2, 16]
        json.dump({"batch": 2, "seq": 16, "id": 1000, "pooled": ref.flatten().tolist()}, f)
    print(f"exported {out}.fp32.onnx and {out}.int8.onnx ({n_q} MatMuls int8) dim={c['dim']} layers={c['n_layers']}")


if __name__ == "__main__":
    main()

// DistilBERT in libtorch, numerically following HF transformers' modeling_distilbert.py
// (Apache-2.0; read for the math, not copied): post-LN blocks, exact GELU, LayerNorm eps
// 1e-12, scores masked with finfo(dtype).min, q scaled by 1/sqrt(head_dim) before q.k.
#include "encoder/distilbert.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/version.h>
#include <ATen/ops/mkldnn_linear.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <cstring>
#include <limits>
#include <algorithm>
#include <set>

#include "encoder/cpu_int8_kernels.hpp"
#include "encoder/cpu_kernels.hpp"
#include "encoder/cpu_pool.hpp"
#include "routenlp/error.hpp"

namespace routenlp::detail {

namespace {
constexpr double kLayerNormEps = 1e-12;

std::string shape_str(at::IntArrayRef s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}
}  // namespace

// ---------------------------------------------------------------------------------------------
EmbeddingsImpl::EmbeddingsImpl(const EncoderConfig& c) {
  word_embeddings = register_module(
      "word_embeddings",
      torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, c.dim).padding_idx(c.pad_token_id)));
  position_embeddings = register_module(
      "position_embeddings", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.max_position_embeddings, c.dim)));
  LayerNorm = register_module(
      "LayerNorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.dim}).eps(kLayerNormEps)));
  dropout = register_module("dropout", torch::nn::Dropout(c.dropout));
  if (c.sinusoidal_pos_embds) {
    torch::NoGradGuard ng;
    fill_sinusoidal(position_embeddings->weight);
    position_embeddings->weight.set_requires_grad(false);
  }
}

torch::Tensor EmbeddingsImpl::forward(const torch::Tensor& input_ids) {
  const int64_t T = input_ids.size(1);
  auto pos = torch::arange(T, input_ids.options().dtype(torch::kLong));
  auto x = word_embeddings->forward(input_ids) + position_embeddings->forward(pos).unsqueeze(0);
  x = LayerNorm->forward(x);
  return dropout->forward(x);
}

// ---------------------------------------------------------------------------------------------
MultiHeadSelfAttentionImpl::MultiHeadSelfAttentionImpl(const EncoderConfig& c)
    : n_heads(c.n_heads), dim(c.dim), attention_dropout(c.attention_dropout) {
  q_lin = register_module("q_lin", torch::nn::Linear(c.dim, c.dim));
  k_lin = register_module("k_lin", torch::nn::Linear(c.dim, c.dim));
  v_lin = register_module("v_lin", torch::nn::Linear(c.dim, c.dim));
  out_lin = register_module("out_lin", torch::nn::Linear(c.dim, c.dim));
  dropout = register_module("dropout", torch::nn::Dropout(c.attention_dropout));
}

torch::Tensor MultiHeadSelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& bias) {
  const int64_t B = x.size(0), T = x.size(1), Dh = dim / n_heads;
  auto heads = [&](const torch::Tensor& t) { return t.view({B, T, n_heads, Dh}).transpose(1, 2); };
  torch::Tensor q, k, v;
  if (qkv_weight.defined() && !is_training() && q_int8.isNone()) {
    auto qkv = linear_infer(x, qkv_weight, qkv_bias).view({B, T, 3, n_heads, Dh}).permute({2, 0, 3, 1, 4});
    q = qkv[0];
    k = qkv[1];
    v = qkv[2];
  } else {
    q = heads(linear_maybe_int8(q_lin, q_int8, x));
    k = heads(linear_maybe_int8(k_lin, k_int8, x));
    v = heads(linear_maybe_int8(v_lin, v_int8, x));
  }
  torch::Tensor ctx;
#if TORCH_VERSION_MAJOR >= 2
  // Fused kernel (flash / memory-efficient on CUDA); same math as below.
  const double p = is_training() ? attention_dropout : 0.0;
  ctx = at::scaled_dot_product_attention(
      q, k, v, bias.defined() ? c10::optional<at::Tensor>(bias) : c10::optional<at::Tensor>(), p, false);
#else
  q = q / std::sqrt(static_cast<double>(Dh));
  auto scores = torch::matmul(q, k.transpose(2, 3));  // [B,H,T,T]
  if (bias.defined()) scores = scores + bias;
  auto weights = torch::softmax(scores, -1);
  weights = dropout->forward(weights);
  ctx = torch::matmul(weights, v);
#endif
  ctx = ctx.transpose(1, 2).reshape({B, T, dim});
  return linear_maybe_int8(out_lin, out_int8, ctx);
}

namespace {

bool cpu_f32(const torch::Tensor& t) { return t.defined() && t.is_cpu() && t.scalar_type() == torch::kFloat; }

// A Linear's weight and bias packed for `isa` (null when that ISA does not pack).
std::shared_ptr<const CpuPackedWeights> pack_linear(CpuIsa isa, const torch::Tensor& w, const torch::Tensor& b) {
  const auto wc = w.detach().contiguous();
  const auto bc = b.defined() ? b.detach().contiguous() : torch::Tensor();
  return cpu_pack_linear(isa, wc.data_ptr<float>(), bc.defined() ? bc.data_ptr<float>() : nullptr, wc.size(0),
                         wc.size(1));
}

}  // namespace

void prepare_for_inference(DistilBertImpl& m) {
  torch::NoGradGuard ng;
  const CpuIsa isa = cpu_isa_active();
  const bool pack = m.cpu_prepacked_weights && isa != CpuIsa::none && cpu_kernels(isa).packed_strip > 0;
  for (const auto& mod : *m.transformer->layer) {
    auto* blk = mod->as<TransformerBlockImpl>();
    auto& a = *blk->attention;
    auto& f = *blk->ffn;
    a.qkv_weight = a.qkv_bias = torch::Tensor();
    a.qkv_packed = a.out_packed = f.lin1_packed = f.lin2_packed = nullptr;
    if (!a.q_int8.isNone()) continue;  // int8: its own packs (quantize_int8_dynamic)
    const auto qkv_w = torch::cat({a.q_lin->weight, a.k_lin->weight, a.v_lin->weight}, 0).detach().contiguous();
    const auto qkv_b = torch::cat({a.q_lin->bias, a.k_lin->bias, a.v_lin->bias}, 0).detach().contiguous();
    if (pack && cpu_f32(qkv_w) && cpu_f32(a.out_lin->weight) && cpu_f32(f.lin1->weight) && cpu_f32(f.lin2->weight)) {
      a.qkv_packed = pack_linear(isa, qkv_w, qkv_b);
      a.out_packed = pack_linear(isa, a.out_lin->weight, a.out_lin->bias);
      f.lin1_packed = pack_linear(isa, f.lin1->weight, f.lin1->bias);
      f.lin2_packed = pack_linear(isa, f.lin2->weight, f.lin2->bias);
    } else {
      a.qkv_weight = qkv_w;
      a.qkv_bias = qkv_b;
    }
  }
}

// ---------------------------------------------------------------------------------------------
FFNImpl::FFNImpl(const EncoderConfig& c) {
  lin1 = register_module("lin1", torch::nn::Linear(c.dim, c.hidden_dim));
  lin2 = register_module("lin2", torch::nn::Linear(c.hidden_dim, c.dim));
  dropout = register_module("dropout", torch::nn::Dropout(c.dropout));
}

torch::Tensor FFNImpl::forward(const torch::Tensor& x) {
  return dropout->forward(linear_maybe_int8(lin2, lin2_int8, torch::gelu(linear_maybe_int8(lin1, lin1_int8, x))));
}

// ---------------------------------------------------------------------------------------------
TransformerBlockImpl::TransformerBlockImpl(const EncoderConfig& c) {
  attention = register_module("attention", MultiHeadSelfAttention(c));
  sa_layer_norm = register_module(
      "sa_layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.dim}).eps(kLayerNormEps)));
  ffn = register_module("ffn", FFN(c));
  output_layer_norm = register_module(
      "output_layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.dim}).eps(kLayerNormEps)));
}

torch::Tensor TransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& bias) {
  auto sa = sa_layer_norm->forward(attention->forward(x, bias) + x);
  return output_layer_norm->forward(ffn->forward(sa) + sa);
}

// ---------------------------------------------------------------------------------------------
TransformerImpl::TransformerImpl(const EncoderConfig& c) {
  layer = register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.n_layers; ++i) layer->push_back(TransformerBlock(c));
}

torch::Tensor TransformerImpl::forward(torch::Tensor x, const torch::Tensor& bias) {
  for (const auto& m : *layer) x = m->as<TransformerBlockImpl>()->forward(x, bias);
  return x;
}

// ---------------------------------------------------------------------------------------------
DistilBertImpl::DistilBertImpl(const EncoderConfig& c) : config(c) {
  c.validate();
  embeddings = register_module("embeddings", Embeddings(c));
  transformer = register_module("transformer", Transformer(c));
}

namespace {

// CPU inference: the embeddings and every block through routenlp's own kernels (cpu_kernels.hpp),
// instead of ~15 libtorch ops per block. No libtorch op runs in between, so libtorch's OpenMP
// threads stay parked while the kernels' pool works (with intra-op threads > 1 and libgomp's
// default busy-wait they spun beside it: 3x slower on two loaded cores, docs/results.md run G).
// Returns an undefined tensor when the kernels do not apply (training or autograd, another
// device or dtype, int8 without own int8 packs, not prepared for inference, packs for another
// ISA, ROUTENLP_CPU_KERNELS=off, a CPU without AVX2/FMA), and the caller takes the libtorch path.
torch::Tensor forward_with_cpu_kernels(DistilBertImpl& m, const torch::Tensor& input_ids,
                                       const torch::Tensor& attention_mask) {
  const CpuIsa isa = cpu_isa_active();
  const auto& emb = *m.embeddings;
  if (isa == CpuIsa::none || m.is_training() || torch::GradMode::is_enabled() || !input_ids.is_cpu() ||
      emb.word_embeddings->weight.scalar_type() != torch::kFloat)
    return {};
  bool usable = true;  // every weight a defined, contiguous CPU fp32 tensor
  auto f32 = [&usable](const torch::Tensor& t) -> const float* {
    if (t.defined() && t.is_cpu() && t.scalar_type() == torch::kFloat && t.is_contiguous()) return t.data_ptr<float>();
    usable = false;
    return nullptr;
  };
  // Weights packed for the own kernels (int8 or fp32): usable only when present and made for the
  // kernels active now (`want`); anything else (packs missing or for another ISA) takes the
  // libtorch path.
  auto packed_for = [&usable](const auto& p, auto want) {
    if (!p || p->isa != want) usable = false;
    return p.get();
  };
  const Int8Isa want_int8 = int8_isa_for(isa);
  std::vector<CpuBlockWeights> blocks;
  for (const auto& mod : *m.transformer->layer) {
    auto* blk = mod->as<TransformerBlockImpl>();
    auto& att = *blk->attention;
    auto& ffn = *blk->ffn;
    CpuBlockWeights w{};
    if (!att.q_int8.isNone() || !ffn.lin1_int8.isNone()) {
      w.qkv_q = packed_for(att.qkv_own_int8, want_int8);  // int8_dynamic: every GEMM on the int8 kernels
      w.out_q = packed_for(att.out_own_int8, want_int8);
      w.lin1_q = packed_for(ffn.lin1_own_int8, want_int8);
      w.lin2_q = packed_for(ffn.lin2_own_int8, want_int8);
    } else if (att.qkv_packed) {  // fp32 packed at load (prepare_for_inference)
      w.qkv_p = packed_for(att.qkv_packed, isa);
      w.out_p = packed_for(att.out_packed, isa);
      w.lin1_p = packed_for(ffn.lin1_packed, isa);
      w.lin2_p = packed_for(ffn.lin2_packed, isa);
    } else {
      w.qkv_w = f32(att.qkv_weight);
      w.qkv_b = f32(att.qkv_bias);
      w.out_w = f32(att.out_lin->weight);
      w.out_b = f32(att.out_lin->bias);
      w.lin1_w = f32(ffn.lin1->weight);
      w.lin1_b = f32(ffn.lin1->bias);
      w.lin2_w = f32(ffn.lin2->weight);
      w.lin2_b = f32(ffn.lin2->bias);
    }
    w.sa_ln_w = f32(blk->sa_layer_norm->weight);
    w.sa_ln_b = f32(blk->sa_layer_norm->bias);
    w.out_ln_w = f32(blk->output_layer_norm->weight);
    w.out_ln_b = f32(blk->output_layer_norm->bias);
    if (!usable) return {};
    blocks.push_back(w);
  }
  const float* word = f32(emb.word_embeddings->weight);
  const float* pos = f32(emb.position_embeddings->weight);
  const float* ln_w = f32(emb.LayerNorm->weight);
  const float* ln_b = f32(emb.LayerNorm->bias);
  if (!usable) return {};
  CpuBlockShape shape;
  shape.batch = input_ids.size(0);
  shape.seq = input_ids.size(1);
  shape.dim = m.config.dim;
  shape.heads = m.config.n_heads;
  shape.hidden = m.config.hidden_dim;
  shape.ln_eps = static_cast<float>(kLayerNormEps);
  const int64_t BT = shape.batch * shape.seq;
  const auto ids = input_ids.contiguous();  // no copy for the encoder's own [B,T] int64 input
  const int64_t* id = ids.data_ptr<int64_t>();
  // The encoder checked already; the module is also called directly, and must not read past its table.
  check_token_ids(id, static_cast<size_t>(BT), emb.word_embeddings->weight.size(0), "DistilBert");
  // The key mask as bytes; an int64 mask (the encoder's) is read without a libtorch op.
  std::vector<uint8_t> valid;
  if (attention_mask.defined()) {
    valid.resize(static_cast<size_t>(BT));
    if (attention_mask.scalar_type() == torch::kLong && attention_mask.is_contiguous()) {
      const int64_t* mk = attention_mask.data_ptr<int64_t>();
      for (int64_t i = 0; i < BT; ++i) valid[i] = mk[i] != 0;
    } else {
      const auto v = attention_mask.ne(0).to(torch::kUInt8).contiguous();
      std::memcpy(valid.data(), v.data_ptr<uint8_t>(), valid.size());
    }
  }
  const int threads = cpu_pool_threads(m.cpu_kernel_threads);
  auto out = torch::empty({shape.batch, shape.seq, shape.dim}, torch::kFloat);
  cpu_embeddings_forward(isa, word, pos, ln_w, ln_b, id, shape.batch, shape.seq, shape.dim, shape.ln_eps,
                         out.data_ptr<float>(), threads);
  cpu_blocks_forward(isa, blocks.data(), static_cast<int>(blocks.size()), shape, out.data_ptr<float>(),
                     valid.empty() ? nullptr : valid.data(), threads);
  return out;
}

}  // namespace

torch::Tensor DistilBertImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  if (input_ids.dim() != 2 || input_ids.scalar_type() != torch::kLong)
    throw Error(Status::invalid_argument, "DistilBert: input_ids must be a [batch, seq_len] int64 tensor");
  const int64_t T = input_ids.size(1);
  if (T < 1 || T > config.max_position_embeddings)
    throw Error(Status::invalid_argument, "DistilBert: sequence length " + std::to_string(T) +
                                              " is outside 1.." + std::to_string(config.max_position_embeddings) +
                                              " (max_position_embeddings); truncate the input");
  if (attention_mask.defined() && attention_mask.sizes() != input_ids.sizes())
    throw Error(Status::invalid_argument, "DistilBert: attention_mask shape " + shape_str(attention_mask.sizes()) +
                                              " differs from input_ids " + shape_str(input_ids.sizes()));
  if (auto fast = forward_with_cpu_kernels(*this, input_ids, attention_mask); fast.defined()) return fast;
  auto x = embeddings->forward(input_ids);
  torch::Tensor bias;
  if (attention_mask.defined()) bias = attention_bias(attention_mask, x.scalar_type());
  return transformer->forward(x, bias);
}

void check_token_ids(const int64_t* ids, size_t n, int64_t vocab_size, const char* who) {
  for (size_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= vocab_size)
      throw Error(Status::invalid_argument, std::string(who) + ": token id " + std::to_string(ids[i]) +
                                                " at position " + std::to_string(i) + " is outside the vocabulary (0.." +
                                                std::to_string(vocab_size - 1) + ")");
}

torch::Tensor attention_bias(const torch::Tensor& attention_mask, torch::ScalarType dtype) {
  const int64_t B = attention_mask.size(0), T = attention_mask.size(1);
  double lowest = 0;
  switch (dtype) {
    case torch::kFloat: lowest = std::numeric_limits<float>::lowest(); break;
    case torch::kDouble: lowest = std::numeric_limits<double>::lowest(); break;
    case torch::kHalf: lowest = -65504.0; break;
    case torch::kBFloat16: lowest = -3.3895313892515355e38; break;  // finfo(bfloat16).min
    default: throw Error(Status::internal, "attention_bias: unsupported dtype");
  }
  auto pad = attention_mask.eq(0).view({B, 1, 1, T});
  return torch::zeros({B, 1, 1, T}, attention_mask.options().dtype(dtype)).masked_fill(pad, lowest);
}

// ---------------------------------------------------------------------------------------------
std::vector<std::string> hf_parameter_names(const EncoderConfig& c) {
  std::vector<std::string> n = {"embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                                "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"};
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const std::string p = "transformer.layer." + std::to_string(i) + ".";
    for (const char* lin : {"attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin"}) {
      n.push_back(p + lin + ".weight");
      n.push_back(p + lin + ".bias");
    }
    n.push_back(p + "sa_layer_norm.weight");
    n.push_back(p + "sa_layer_norm.bias");
    n.push_back(p + "ffn.lin1.weight");
    n.push_back(p + "ffn.lin1.bias");
    n.push_back(p + "ffn.lin2.weight");
    n.push_back(p + "ffn.lin2.bias");
    n.push_back(p + "output_layer_norm.weight");
    n.push_back(p + "output_layer_norm.bias");
  }
  return n;
}

void fill_sinusoidal(torch::Tensor out) {
  const int64_t n_pos = out.size(0), dim = out.size(1);
  auto table = torch::empty({n_pos, dim}, torch::kDouble);
  auto a = table.accessor<double, 2>();
  for (int64_t pos = 0; pos < n_pos; ++pos)
    for (int64_t j = 0; j < dim; ++j) {
      const double angle = static_cast<double>(pos) / std::pow(10000.0, 2.0 * static_cast<double>(j / 2) / static_cast<double>(dim));
      a[pos][j] = (j % 2 == 0) ? std::sin(angle) : std::cos(angle);
    }
  torch::NoGradGuard ng;
  out.copy_(table.to(out.scalar_type()));
}

void init_weights(DistilBertImpl& m, uint64_t seed) {
  torch::NoGradGuard ng;
  auto gen = at::detail::createCPUGenerator(seed);
  const double std_ = m.config.initializer_range;
  auto normal = [&](torch::Tensor& t) {
    auto tmp = torch::empty(t.sizes(), torch::kFloat);
    tmp.normal_(0.0, std_, gen);
    t.copy_(tmp);
  };
  for (auto& mod : m.modules(/*include_self=*/false)) {
    if (auto* lin = mod->as<torch::nn::LinearImpl>()) {
      normal(lin->weight);
      lin->bias.zero_();
    } else if (auto* emb = mod->as<torch::nn::EmbeddingImpl>()) {
      normal(emb->weight);
      if (emb->options.padding_idx()) emb->weight[*emb->options.padding_idx()].zero_();
    } else if (auto* ln = mod->as<torch::nn::LayerNormImpl>()) {
      ln->weight.fill_(1.0);
      ln->bias.zero_();
    }
  }
  if (m.config.sinusoidal_pos_embds) fill_sinusoidal(m.embeddings->position_embeddings->weight);
}

// ---------------------------------------------------------------------------------------------
namespace {
c10::OperatorHandle quantized_op(const char* name) {
  auto h = c10::Dispatcher::singleton().findSchema({name, ""});
  if (!h) throw Error(Status::not_supported, std::string("int8_dynamic: libtorch lacks the operator ") + name);
  return *h;
}

c10::IValue prepack_int8(const torch::nn::Linear& lin) {
  static const c10::OperatorHandle op = quantized_op("quantized::linear_prepack");
  auto w = lin->weight.detach().to(torch::kFloat).contiguous();
  // Symmetric per-output-channel int8 (zero point 0), scale = max|w_row| / 127.
  auto scales = (w.abs().amax({1}) / 127.0).clamp_min(1e-8).to(torch::kDouble);
  auto zps = torch::zeros({w.size(0)}, torch::kLong);
  auto qw = at::quantize_per_channel(w, scales, zps, 0, torch::kQInt8);
  std::vector<c10::IValue> st;
  st.emplace_back(qw);
  st.emplace_back(c10::optional<at::Tensor>(lin->bias.detach().to(torch::kFloat).contiguous()));
  op.callBoxed(&st);
  return st.at(0);
}
}  // namespace

torch::Tensor linear_infer(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int threads) {
  const bool cpu_f32_infer = x.numel() > 0 && x.is_cpu() && x.scalar_type() == torch::kFloat &&
                             w.scalar_type() == torch::kFloat && !torch::GradMode::is_enabled();
  // Default: our own AVX-512/AVX2 kernel (cpu_kernels.hpp), ~2x OpenBLAS's sgemm at these
  // shapes on the development CPU. ROUTENLP_CPU_KERNELS=off falls back to libtorch.
  const CpuIsa isa = cpu_isa_active();
  if (isa != CpuIsa::none && cpu_f32_infer && w.dim() == 2 && w.is_contiguous() &&
      (!b.defined() || (b.is_contiguous() && b.scalar_type() == torch::kFloat && b.dim() == 1))) {
    const int64_t K = w.size(1), N = w.size(0);
    const auto x2 = x.reshape({-1, K}).contiguous();
    const int64_t M = x2.size(0);
    auto y = torch::empty({M, N}, x.options());
    cpu_linear(isa, x2.data_ptr<float>(), w.data_ptr<float>(), b.defined() ? b.data_ptr<float>() : nullptr,
               y.data_ptr<float>(), M, N, K, /*gelu=*/false, cpu_pool_threads(threads));
    auto sizes = x.sizes().vec();
    sizes.back() = N;
    return y.view(sizes);
  }
  // Opt-in (ROUTENLP_CPU_KERNELS=off ROUTENLP_ONEDNN_FP32=1): oneDNN beat OpenBLAS only while
  // OpenBLAS was pinned to its Haswell kernels (OPENBLAS_CORETYPE); with the kernels OpenBLAS
  // picks itself on an AVX-512 CPU, OpenBLAS was faster (32 vs 44 ms, docs/results.md "Encoder").
  static const bool onednn = [] {
    const char* e = std::getenv("ROUTENLP_ONEDNN_FP32");
    return at::hasMKLDNN() && e && std::string(e) == "1";
  }();
  if (onednn && cpu_f32_infer && at::globalContext().userEnabledMkldnn()) {
    auto sizes = x.sizes().vec();
    sizes.back() = w.size(0);
    auto y = at::mkldnn_linear(x.reshape({-1, x.size(-1)}).contiguous().to_mkldnn(), w.contiguous(),
                               b.defined() ? c10::optional<at::Tensor>(b) : c10::nullopt);
    return y.to_dense().view(sizes);
  }
  return torch::linear(x, w, b);
}

torch::Tensor linear_maybe_int8(torch::nn::Linear& lin, const c10::IValue& packed, const torch::Tensor& x) {
  if (packed.isNone()) return linear_infer(x, lin->weight, lin->bias);
  static const c10::OperatorHandle op = quantized_op("quantized::linear_dynamic");
  std::vector<c10::IValue> st;
  st.emplace_back(x.contiguous());
  st.emplace_back(packed);
  st.emplace_back(false);  // reduce_range
  op.callBoxed(&st);
  return st.at(0).toTensor();
}

void quantize_int8_dynamic(DistilBertImpl& m) {
  if (!m.parameters().empty() && !m.parameters().front().device().is_cpu())
    throw Error(Status::not_supported, "int8_dynamic: CPU only");
  auto& ctx = at::globalContext();
  const auto engines = ctx.supportedQEngines();
  auto has = [&](at::QEngine e) { return std::find(engines.begin(), engines.end(), e) != engines.end(); };
  const at::QEngine cur = ctx.qEngine();
  if (cur == at::QEngine::QNNPACK || cur == at::QEngine::NoQEngine) {
    // QNNPACK is ARM-oriented (slower than fp32 here); prefer the x86 engines.
#if TORCH_VERSION_MAJOR >= 2
    if (has(at::QEngine::X86)) ctx.setQEngine(at::QEngine::X86);
    else
#endif
    if (has(at::QEngine::FBGEMM)) ctx.setQEngine(at::QEngine::FBGEMM);
    else if (has(at::QEngine::ONEDNN)) ctx.setQEngine(at::QEngine::ONEDNN);
    else if (has(at::QEngine::QNNPACK)) ctx.setQEngine(at::QEngine::QNNPACK);
    else throw Error(Status::not_supported, "int8_dynamic: libtorch was built without a quantized engine");
  }
  torch::NoGradGuard ng;
  const CpuIsa own = cpu_isa_active();
  for (const auto& mod : *m.transformer->layer) {
    auto* blk = mod->as<TransformerBlockImpl>();
    auto& a = *blk->attention;
    a.q_int8 = prepack_int8(a.q_lin);
    a.k_int8 = prepack_int8(a.k_lin);
    a.v_int8 = prepack_int8(a.v_lin);
    a.out_int8 = prepack_int8(a.out_lin);
    blk->ffn->lin1_int8 = prepack_int8(blk->ffn->lin1);
    blk->ffn->lin2_int8 = prepack_int8(blk->ffn->lin2);
    if (own != CpuIsa::none) {
      const Int8Isa qi = int8_isa_for(own);
      auto pack = [qi](const torch::Tensor& w, const torch::Tensor& b) {
        auto wc = w.detach().to(torch::kFloat).contiguous();
        auto bc = b.detach().to(torch::kFloat).contiguous();
        return cpu_int8_pack(qi, wc.data_ptr<float>(), bc.data_ptr<float>(), wc.size(0), wc.size(1));
      };
      a.qkv_own_int8 = pack(torch::cat({a.q_lin->weight, a.k_lin->weight, a.v_lin->weight}, 0),
                            torch::cat({a.q_lin->bias, a.k_lin->bias, a.v_lin->bias}, 0));
      a.out_own_int8 = pack(a.out_lin->weight, a.out_lin->bias);
      blk->ffn->lin1_own_int8 = pack(blk->ffn->lin1->weight, blk->ffn->lin1->bias);
      blk->ffn->lin2_own_int8 = pack(blk->ffn->lin2->weight, blk->ffn->lin2->bias);
    }
  }
}

// ---------------------------------------------------------------------------------------------
namespace {
torch::Tensor to_torch(const TensorView& v) {
  torch::ScalarType st;
  switch (v.dtype) {
    case DType::F32: st = torch::kFloat; break;
    case DType::F16: st = torch::kHalf; break;
    case DType::BF16: st = torch::kBFloat16; break;
    case DType::I64: st = torch::kLong; break;
    case DType::I32: st = torch::kInt; break;
    default: throw Error(Status::internal, "to_torch: dtype");
  }
  auto t = torch::empty(v.shape, torch::TensorOptions().dtype(st));
  if (v.nbytes) std::memcpy(t.data_ptr(), v.data, v.nbytes);  // views may be unaligned
  return t;
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

std::string join_some(const std::vector<std::string>& v, size_t max = 8) {
  std::string o;
  for (size_t i = 0; i < v.size() && i < max; ++i) o += (i ? ", " : "") + v[i];
  if (v.size() > max) o += ", ... (" + std::to_string(v.size()) + " in all)";
  return o;
}
}  // namespace

LoadReport load_weights(DistilBertImpl& m, const SafetensorsFile& f) {
  LoadReport rep;
  bool prefixed = false, plain = false;
  for (const auto& t : f.tensors()) {
    if (starts_with(t.name, "distilbert.embeddings.") || starts_with(t.name, "distilbert.transformer."))
      prefixed = true;
    if (starts_with(t.name, "embeddings.") || starts_with(t.name, "transformer.")) plain = true;
  }
  if (prefixed && plain)
    throw Error(Status::model, f.origin() + ": has encoder tensors both with and without the 'distilbert.' prefix");
  rep.prefix = prefixed ? "distilbert." : "";

  auto params = m.named_parameters(/*recurse=*/true);
  std::vector<std::string> missing, mismatched, badtype;
  std::vector<std::pair<torch::Tensor, const TensorView*>> plan;
  std::set<std::string> used;
  for (const auto& item : params) {
    const std::string key = rep.prefix + item.key();
    const TensorView* v = f.find(key);
    if (!v) {
      missing.push_back(key);
      continue;
    }
    used.insert(key);
    if (v->dtype != DType::F32 && v->dtype != DType::F16 && v->dtype != DType::BF16) {
      badtype.push_back(key + " (" + dtype_name(v->dtype) + ")");
      continue;
    }
    if (at::IntArrayRef(v->shape) != item.value().sizes()) {
      mismatched.push_back(key + " is " + shape_str(v->shape) + ", expected " + shape_str(item.value().sizes()));
      continue;
    }
    plan.emplace_back(item.value(), v);
  }
  std::vector<std::string> unexpected;
  for (const auto& t : f.tensors()) {
    if (used.count(t.name)) continue;
    std::string n = t.name;
    if (!rep.prefix.empty() && starts_with(n, rep.prefix)) n = n.substr(rep.prefix.size());
    const bool encoder_part = starts_with(n, "embeddings.") || starts_with(n, "transformer.");
    if (encoder_part && n != "embeddings.position_ids") unexpected.push_back(t.name);
    else rep.ignored.push_back(t.name);
  }
  std::string err;
  if (!missing.empty()) err += " missing tensors: " + join_some(missing) + ";";
  if (!mismatched.empty()) err += " wrong shapes: " + join_some(mismatched) + ";";
  if (!badtype.empty()) err += " non-float dtypes: " + join_some(badtype) + ";";
  if (!unexpected.empty())
    err += " unexpected encoder tensors (config.json has n_layers=" + std::to_string(m.config.n_layers) +
           "?): " + join_some(unexpected) + ";";
  if (!err.empty()) {
    err.pop_back();
    throw Error(Status::model, f.origin() + ": weights do not match the DistilBERT config:" + err);
  }
  torch::NoGradGuard ng;
  for (auto& p : plan) {
    auto src = to_torch(*p.second);
    p.first.copy_(src.to(p.first.device(), p.first.scalar_type()));
  }
  return rep;
}

std::vector<std::pair<std::string, torch::Tensor>> export_weights(DistilBertImpl& m) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : m.named_parameters(true))
    out.emplace_back(item.key(), item.value().detach().to(torch::kCPU, torch::kFloat).contiguous());
  return out;
}

std::vector<TensorView> tensor_views(const std::vector<std::pair<std::string, torch::Tensor>>& ts) {
  std::vector<TensorView> views;
  for (const auto& p : ts) {
    const auto& t = p.second;
    if (t.device() != torch::kCPU || !t.is_contiguous())
      throw Error(Status::internal, "tensor_views: '" + p.first + "' is not a contiguous CPU tensor");
    TensorView v;
    v.name = p.first;
    switch (t.scalar_type()) {
      case torch::kFloat: v.dtype = DType::F32; break;
      case torch::kHalf: v.dtype = DType::F16; break;
      case torch::kBFloat16: v.dtype = DType::BF16; break;
      case torch::kLong: v.dtype = DType::I64; break;
      case torch::kInt: v.dtype = DType::I32; break;
      default: throw Error(Status::invalid_argument, "tensor_views: '" + p.first + "' has an unsupported dtype");
    }
    v.shape.assign(t.sizes().begin(), t.sizes().end());
    v.data = static_cast<const unsigned char*>(t.data_ptr());
    v.nbytes = t.nbytes();
    views.push_back(std::move(v));
  }
  return views;
}

void save_weights(DistilBertImpl& m, const std::string& path, const std::map<std::string, std::string>& extra) {
  auto ts = export_weights(m);
  std::map<std::string, std::string> meta = extra;
  meta["format"] = "pt";
  write_safetensors(path, tensor_views(ts), meta);
}

}  // namespace routenlp::detail

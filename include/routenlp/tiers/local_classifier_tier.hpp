// LocalClassifierTier: a DistilBERT sequence classifier run by libtorch (encoder + mean pooling
// + linear head), answering with its predicted label and the softmax probability as confidence.
// A real, cheap T1 for classification tasks; trainable from scratch, fine-tunable on
// distillation examples, saved as safetensors + JSON. Needs libtorch (else Error not_supported).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "routenlp/encoder/encoder.hpp"
#include "routenlp/export.h"
#include "routenlp/progress.hpp"
#include "routenlp/tiers/tier.hpp"

namespace routenlp {

struct LocalClassifierConfig {
  // Encoder architecture (HF DistilBERT config.json text). Empty: dim 128, 2 layers, 2 heads,
  // hidden 512, 64 positions (a small, fast T1).
  std::string encoder_config_json;
  std::string vocab_path;         // WordPiece vocab.txt; empty = default_vocab_path()
  int max_length = 32;            // tokens per query incl. [CLS]/[SEP]
  double cost_per_query = 1e-5;   // USD reported per call ($0.01 per 1K queries)
  std::string name = "local-classifier";
};

struct ClassifierTrainConfig {
  int epochs = 20;
  int batch_size = 32;
  double learning_rate = 1e-3;   // AdamW; linear warm-up then linear decay
  double weight_decay = 0.01;
  double warmup_fraction = 0.1;
  double dropout = 0.1;          // encoder dropout while training
  uint64_t seed = 0;
  int threads = 0;               // torch intra-op threads while training; 0 = leave as is
};

// Where a loaded tier runs inference; the same rules as RouterRuntime (router.hpp,
// docs/router.md "Devices"): "cpu" (default) | "cuda" | "cuda:N" | "auto"; dtype is the
// encoder's (the head stays fp32); cuda_graphs captures the whole forward per (batch, tokens)
// shape and needs a ROUTENLP_WITH_CUDA_GRAPHS build. "auto" on a CPU host ignores dtype and
// cuda_graphs. Errors: unknown device -> invalid_argument; CUDA without CUDA, fp16 or
// cuda_graphs on the CPU -> not_supported. Training and fine-tuning run on the CPU in fp32.
struct LocalClassifierRuntime {
  std::string device = "cpu";
  EncoderDType dtype = EncoderDType::fp32;
  bool cuda_graphs = false;
  bool int8_dynamic = false;  // as RouterRuntime::int8_dynamic (CPU fp32 only; not savable)
};

struct ClassifierTrainReport {
  size_t rows = 0;
  size_t skipped_unknown_labels = 0;  // fine-tuning rows whose label the head does not know
  std::vector<double> epoch_loss;
  double train_accuracy = 0.0;        // on the training rows after the last epoch
  double seconds = 0.0;
};

struct ClassifierPrediction {
  int label = -1;
  std::string text;          // the label's name
  double confidence = 0.0;   // softmax probability of that label
};

// Immutable after construction: call()/predict() are thread-safe. train/fine_tune return new
// tiers (the original is left unchanged).
class RN_API LocalClassifierTier : public ModelTier {
 public:
  // Trains from scratch (random encoder, seeded). labels[i] names texts[i]'s class; the label set
  // is the sorted distinct labels. Progress: stage "train".
  static std::shared_ptr<LocalClassifierTier> train(const std::vector<std::string>& texts,
                                                    const std::vector<std::string>& labels,
                                                    const LocalClassifierConfig& config,
                                                    const ClassifierTrainConfig& train_config,
                                                    ProgressCallback progress = nullptr,
                                                    ClassifierTrainReport* report = nullptr);
  // A copy of this tier trained further on (texts, labels); labels it does not know are skipped
  // (counted in the report). Throws Error(invalid_argument) when no row is usable.
  std::shared_ptr<LocalClassifierTier> fine_tune(const std::vector<std::string>& texts,
                                                 const std::vector<std::string>& labels,
                                                 const ClassifierTrainConfig& train_config,
                                                 ProgressCallback progress = nullptr,
                                                 ClassifierTrainReport* report = nullptr) const;
  // Directory: config.json (encoder), model.safetensors ("distilbert.*" + "classifier.*"),
  // labels.json (labels, max_length, cost, name, pooling), vocab.txt. Written atomically per file
  // into a temporary directory renamed into place.
  // save() and fine_tune() need fp32 weights: Error(invalid_argument) for a tier loaded with a
  // reduced-precision runtime (load the directory again with the default runtime).
  void save(const std::string& dir) const;
  static std::shared_ptr<LocalClassifierTier> load(const std::string& dir);
  static std::shared_ptr<LocalClassifierTier> load(const std::string& dir,
                                                   const LocalClassifierRuntime& runtime);
  // "cpu" or "cuda:N", and the runtime in effect ("auto" resolved).
  std::string device() const;
  LocalClassifierRuntime runtime() const;

  ~LocalClassifierTier() override;
  const std::string& name() const override;
  TierResponse call(const TierRequest& request) override;
  double expected_cost(const TierRequest& request) const override;

  std::vector<ClassifierPrediction> predict(const std::vector<std::string>& texts,
                                            size_t batch_size = 256) const;
  // Mean-pooled encoder vectors (the space the head reads), one row per text.
  std::vector<std::vector<float>> embed(const std::vector<std::string>& texts,
                                        size_t batch_size = 256) const;
  const std::vector<std::string>& labels() const;
  const LocalClassifierConfig& config() const;

  struct Impl;
  explicit LocalClassifierTier(std::shared_ptr<Impl> impl);

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace routenlp

// LocalClassifierTier: a DistilBERT sequence classifier run by libtorch (encoder + mean pooling
// + linear head), answering with its predicted label and the softmax probability as confidence.
// A real, cheap T1 for classification tasks; trainable from scratch, fine-tunable on
// distillation examples, saved as safetensors + JSON. Needs libtorch (else Error not_supported).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "routenlp/export.h"
#include "routenlp/progress.hpp"
#include "routenlp/tier.hpp"

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
  void save(const std::string& dir) const;
  static std::shared_ptr<LocalClassifierTier> load(const std::string& dir);

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

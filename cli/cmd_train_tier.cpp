// `routenlp train-tier --data CSV --out DIR`: train a LocalClassifierTier (DistilBERT classifier)
// from scratch on a text,category CSV and save it (safetensors + labels.json).
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "progress_bar.hpp"
#include "routenlp/coopt/classifier.hpp"
#include "routenlp/tiers/local_classifier_tier.hpp"

namespace routenlp::cli {

namespace {

struct TrainTierArgs {
  std::string data, out, text_column = "text", label_column = "category", encoder_config, vocab;
  std::string name = "local-classifier";
  int epochs = 20, batch_size = 32, max_length = 32, threads = 0;
  double lr = 1e-3, cost = 1e-5;
  uint64_t seed = 0;
  bool quiet = false;
};

int run_train_tier(const TrainTierArgs& a) {
  auto rows = read_labeled_csv(a.data, a.text_column, a.label_column);
  std::vector<std::string> x, y;
  for (auto& r : rows) {
    x.push_back(r.text);
    y.push_back(r.label);
  }
  LocalClassifierConfig cfg;
  cfg.encoder_config_json = a.encoder_config;
  cfg.vocab_path = a.vocab;
  cfg.max_length = a.max_length;
  cfg.cost_per_query = a.cost;
  cfg.name = a.name;
  ClassifierTrainConfig tc;
  tc.epochs = a.epochs;
  tc.batch_size = a.batch_size;
  tc.learning_rate = a.lr;
  tc.seed = a.seed;
  tc.threads = a.threads;
  ProgressBar bar(!a.quiet && ::isatty(2) != 0);
  ClassifierTrainReport rep;
  auto tier = LocalClassifierTier::train(x, y, cfg, tc, bar.callback(), &rep);
  bar.finish();
  tier->save(a.out);
  if (!a.quiet)
    std::printf("trained %zu rows, %zu labels in %.1f s; final loss %.4f, train accuracy %.4f -> %s\n", rep.rows,
                tier->labels().size(), rep.seconds, rep.epoch_loss.empty() ? 0.0 : rep.epoch_loss.back(),
                rep.train_accuracy, a.out.c_str());
  return 0;
}

}  // namespace

void register_train_tier(CLI::App& app, Action& action) {
  auto args = std::make_shared<TrainTierArgs>();
  auto* cmd = app.add_subcommand("train-tier", "Train a LocalClassifierTier (DistilBERT intent classifier) on a CSV");
  cmd->add_option("--data", args->data, "CSV with a header (text and label columns)")->required();
  cmd->add_option("--out", args->out, "output directory (config.json, model.safetensors, labels.json, vocab.txt)")
      ->required();
  cmd->add_option("--text-column", args->text_column, "text column (default text)");
  cmd->add_option("--label-column", args->label_column, "label column (default category)");
  cmd->add_option("--encoder-config", args->encoder_config,
                  "encoder architecture as HF DistilBERT config JSON text (default: dim 128, 2 layers)");
  cmd->add_option("--vocab", args->vocab, "WordPiece vocab.txt (default: the bundled one)");
  cmd->add_option("--name", args->name, "tier name");
  cmd->add_option("--epochs", args->epochs, "epochs (default 20)");
  cmd->add_option("--batch-size", args->batch_size, "batch size (default 32)");
  cmd->add_option("--lr", args->lr, "AdamW learning rate (default 1e-3)");
  cmd->add_option("--max-length", args->max_length, "tokens per text (default 32)");
  cmd->add_option("--cost", args->cost, "USD per call reported by the tier (default 1e-5)");
  cmd->add_option("--seed", args->seed, "seed (default 0)");
  cmd->add_option("--threads", args->threads, "libtorch intra-op threads while training");
  cmd->add_flag("--quiet", args->quiet, "no progress or summary");
  cmd->callback([&action, args] { action = [args] { return run_train_tier(*args); }; });
}

}  // namespace routenlp::cli

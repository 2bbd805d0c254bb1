// Progress reporting for long work (import, training, evaluation, calibration).
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace routenlp {

struct Progress {
  std::string stage;       // "train", "import", ...
  size_t done = 0;         // units finished
  size_t total = 0;        // 0 when unknown
  double elapsed_s = 0.0;  // since the stage started
  double eta_s = -1.0;     // estimated seconds left; < 0 when unknown
  std::string detail;      // e.g. "epoch 2 loss 0.41"
};

// Called from the working thread. Return false to cancel the work (it then throws
// Error(cancelled)).
using ProgressCallback = std::function<bool(const Progress&)>;

}  // namespace routenlp

// Terminal progress bar with ETA for routenlp::ProgressCallback. Writes to stderr, redraws at
// most every 100 ms; prints nothing when stderr is not a terminal unless forced.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "routenlp/progress.hpp"

namespace routenlp::cli {

class ProgressBar {
 public:
  explicit ProgressBar(bool enabled = ::isatty(2) != 0) : enabled_(enabled) {}
  ~ProgressBar() { finish(); }

  ProgressCallback callback() {
    return [this](const Progress& p) {
      draw(p);
      return true;
    };
  }

  void draw(const Progress& p) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    bool last = p.total > 0 && p.done >= p.total;
    if (!last && drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    drawn_ = true;
    char eta[32] = "--:--";
    if (p.eta_s >= 0) {
      int s = static_cast<int>(p.eta_s + 0.5);
      std::snprintf(eta, sizeof eta, "%02d:%02d", s / 60, s % 60);
    }
    if (p.total > 0) {
      const int width = 30;
      double frac = static_cast<double>(p.done) / static_cast<double>(p.total);
      int filled = static_cast<int>(frac * width);
      std::string bar(static_cast<size_t>(filled), '#');
      bar.resize(width, '.');
      std::fprintf(stderr, "\r%-10s [%s] %5.1f%% %zu/%zu ETA %s %s\033[K", p.stage.c_str(),
                   bar.c_str(), frac * 100.0, p.done, p.total, eta, p.detail.c_str());
    } else {
      std::fprintf(stderr, "\r%-10s %zu done %.1fs %s\033[K", p.stage.c_str(), p.done,
                   p.elapsed_s, p.detail.c_str());
    }
    std::fflush(stderr);
  }

  void finish() {
    if (enabled_ && drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }

 private:
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace routenlp::cli

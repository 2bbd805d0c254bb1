// Single-cell fits on sorted rows (internal): the public *_fit functions and the calibrator share
// them; the calibrator sorts a cell once and fits it at many alphas (delta(alpha) curves).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "routenlp/calibration/conformal.hpp"

namespace routenlp::detail {

// Throws Error(invalid_argument) naming `where` unless 0 < alpha < 1.
void check_alpha(double alpha, const char* where);

// Sorted (u, bad) pairs; NaN u is an error.
struct Sorted {
  std::vector<double> u;
  std::vector<uint32_t> cum_bad;  // cum_bad[i] = #bad among the first i rows
  size_t n_bad = 0;
};
Sorted sort_rows(const std::vector<double>& u, const std::vector<uint8_t>& bad);
// Rows accepted at delta (u <= delta) and bad among them.
std::pair<size_t, size_t> counts_at(const Sorted& s, double delta);
// Fewest rows on which LTT can certify anything at (alpha, eps).
size_t min_rows_to_certify(double alpha, double eps);

CellFit split_conformal_sorted(const Sorted& s, double alpha);
CellFit pvalue_bad_sorted(const Sorted& s, double alpha);
CellFit crc_sorted(const Sorted& s, double alpha);

// LTT's grid points, strict to lax, with the rows each accepts and the bad among them. They do
// not depend on alpha, so a curve (one cell, many alphas) builds them once.
struct LttPoint {
  double g;
  size_t accepted, bad;
};
std::vector<LttPoint> ltt_points(const Sorted& s, const LttOptions& o,
                                 std::vector<double> grid_src);
// The fixed-sequence walk over precomputed points at one alpha (epsilon: the cell's level).
CellFit ltt_walk(const Sorted& s, const std::vector<LttPoint>& pts, double alpha, double epsilon);
CellFit ltt_sorted(const Sorted& s, const LttOptions& o, std::vector<double> grid_src);

}  // namespace routenlp::detail

// Minimal SVG line/scatter charts (axes, ticks, grid, legend, direct point labels) with no
// dependencies. Internal header.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace routenlp::detail {

struct SvgSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;
  bool line = true;                       // connect the points
  bool markers = true;                    // draw a small marker at each point
  bool dashed = false;
  std::vector<std::pair<double, double>> highlight;  // bigger marker(s), e.g. chosen point
  bool emphasis = false;     // thicker line, bold labels (the routenlp systems)
  bool label_point = false;  // write the name next to the first highlight point
  std::string legend_note;   // shown after the name in the legend (e.g. "met 5/5")
};

struct SvgPanel {
  std::string title, x_label, y_label;
  std::vector<SvgSeries> series;
  std::vector<std::pair<std::string, double>> hlines;  // labelled horizontal reference lines
  bool y_from_zero = false;
};

// Panels stacked vertically in one SVG document; each panel is panel_height px tall. The plot
// area is width - 370 px wide; the legend to its right widens the document as its longest
// entry needs (names are never cut). Emphasised series take the first colours and shapes.
// Each series' big marker is a <g class="op" data-system=… data-shape=…
// transform="translate(x,y)">; each direct label a <rect class="label-box" …> and its <text>.
std::string render_svg(const std::string& title, const std::vector<SvgPanel>& panels,
                       int width = 900, int panel_height = 460);

// "Nice" tick positions covering [lo, hi] (about `target` ticks).
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

// Marker shapes, in the order series get them.
const std::vector<std::string>& marker_shapes();

// ---- Label placement ----
struct LabelBox {
  double x = 0, y = 0, w = 0, h = 0;  // top-left corner and size, px
  double weight = 1;                  // soft boxes: cost of covering one px² of it
};
double overlap_area(const LabelBox& a, const LabelBox& b);
// Width estimate of a text in Helvetica/Arial from per-character classes (slightly generous).
double text_width_px(const std::string& text, double font_px, bool bold);

struct LabelRequest {
  double ax = 0, ay = 0;  // anchor: the point labelled
  double w = 0, h = 0;    // text box size
  double gap = 0;         // least distance between the anchor and the box (marker radius + pad)
};
struct LabelPlacement {
  LabelBox box;
  bool leader = false;  // placed away from the anchor: draw a line to it
};
// Greedy placement in request order: candidate boxes on rings of growing distance around the
// anchor (right, left, the diagonals, above, below). The score forbids leaving `bounds` and
// overlapping `hard` boxes or earlier labels (all but impossible), then weighs the overlap with
// `soft` boxes (times their weight, in px of distance per px²) against the distance from the
// anchor; the best-scoring candidate is kept.
std::vector<LabelPlacement> layout_labels(const std::vector<LabelRequest>& requests,
                                          const std::vector<LabelBox>& hard,
                                          const std::vector<LabelBox>& soft,
                                          const LabelBox& bounds);

}  // namespace routenlp::detail

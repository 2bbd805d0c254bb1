// Minimal SVG line/scatter charts (axes, ticks, grid, legend) with no dependencies.
// Internal header.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace routenlp::detail {

struct SvgSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;
  bool line = true;                       // connect the points
  bool markers = true;                    // draw a dot at each point
  bool dashed = false;
  std::vector<std::pair<double, double>> highlight;  // bigger marker(s), e.g. chosen point
};

struct SvgPanel {
  std::string title, x_label, y_label;
  std::vector<SvgSeries> series;
  std::vector<std::pair<std::string, double>> hlines;  // labelled horizontal reference lines
  bool y_from_zero = false;
};

// Panels stacked vertically in one SVG document of the given width; each panel is
// panel_height px tall. Colors cycle through a fixed palette.
std::string render_svg(const std::string& title, const std::vector<SvgPanel>& panels,
                       int width = 900, int panel_height = 460);

// "Nice" tick positions covering [lo, hi] (about `target` ticks).
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

}  // namespace routenlp::detail

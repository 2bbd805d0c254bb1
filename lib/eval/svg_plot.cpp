// SVG charts for evaluation reports: cost-quality frontiers and stream windows.
#include "eval/svg_plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "eval/eval_internal.hpp"

namespace routenlp::detail {

namespace {

// 22 distinguishable colours (tab10 + tab20b/c darks): enough for every system of an 11-tier
// portfolio without repeats.
const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                          "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939",
                          "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
                          "#756bb1", "#636363", "#000000", "#fd8d3c"};

std::string legend_name(const std::string& s) {
  if (s.size() <= 34) return s;
  return s.substr(0, 33) + "\u2026";
}

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string fmt_num(double v, double step) {
  char b[32];
  int dec = step >= 1 ? 0 : std::min(6, int(std::ceil(-std::log10(step) - 1e-9)));
  std::snprintf(b, sizeof b, "%.*f", dec, v);
  return b;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) hi = lo + 1;
  double raw = (hi - lo) / std::max(1, target);
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double f = raw / mag;
  double step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
  std::vector<double> t;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step)
    t.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  return t;
}

std::string render_svg(const std::string& title, const std::vector<SvgPanel>& panels, int width,
                       int panel_height) {
  const int top = 40, ml = 80, mr = 290, mt = 40, mb = 60;
  int height = top + int(panels.size()) * panel_height + 10;
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" viewBox=\"0 0 " << width << " " << height
    << "\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n";
  o << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << "<text x=\"" << width / 2 << "\" y=\"24\" text-anchor=\"middle\" font-size=\"16\" "
       "font-weight=\"bold\">"
    << esc(title) << "</text>\n";
  for (size_t pi = 0; pi < panels.size(); ++pi) {
    const SvgPanel& p = panels[pi];
    int y0 = top + int(pi) * panel_height;
    int px = ml, py = y0 + mt, pw = width - ml - mr, ph = panel_height - mt - mb;
    double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
    for (const auto& s : p.series)
      for (const auto& pt : s.points) {
        if (!std::isfinite(pt.first) || !std::isfinite(pt.second)) continue;
        xmin = std::min(xmin, pt.first);
        xmax = std::max(xmax, pt.first);
        ymin = std::min(ymin, pt.second);
        ymax = std::max(ymax, pt.second);
      }
    for (const auto& h : p.hlines) {
      ymin = std::min(ymin, h.second);
      ymax = std::max(ymax, h.second);
    }
    if (!std::isfinite(xmin)) xmin = 0, xmax = 1, ymin = 0, ymax = 1;
    if (p.y_from_zero) ymin = std::min(0.0, ymin);
    double xpad = (xmax - xmin) * 0.04, ypad = (ymax - ymin) * 0.06;
    if (xpad <= 0) xpad = std::max(1e-3, std::fabs(xmax) * 0.1);
    if (ypad <= 0) ypad = std::max(1e-3, std::fabs(ymax) * 0.1);
    xmin -= xpad, xmax += xpad, ymax += ypad;
    if (!p.y_from_zero || ymin < 0) ymin -= ypad;
    auto X = [&](double x) { return px + (x - xmin) / (xmax - xmin) * pw; };
    auto Y = [&](double y) { return py + ph - (y - ymin) / (ymax - ymin) * ph; };
    o << "<g>\n<text x=\"" << px + pw / 2 << "\" y=\"" << py - 12
      << "\" text-anchor=\"middle\" font-size=\"14\">" << esc(p.title) << "</text>\n";
    o << "<rect x=\"" << px << "\" y=\"" << py << "\" width=\"" << pw << "\" height=\"" << ph
      << "\" fill=\"none\" stroke=\"#333\"/>\n";
    auto xt = nice_ticks(xmin, xmax, 8), yt = nice_ticks(ymin, ymax, 6);
    double xs = xt.size() > 1 ? xt[1] - xt[0] : 1, ys = yt.size() > 1 ? yt[1] - yt[0] : 1;
    for (double v : xt) {
      if (v < xmin || v > xmax) continue;
      o << "<line x1=\"" << X(v) << "\" y1=\"" << py << "\" x2=\"" << X(v) << "\" y2=\""
        << py + ph << "\" stroke=\"#e5e5e5\"/>\n";
      o << "<line x1=\"" << X(v) << "\" y1=\"" << py + ph << "\" x2=\"" << X(v) << "\" y2=\""
        << py + ph + 5 << "\" stroke=\"#333\"/>\n";
      o << "<text x=\"" << X(v) << "\" y=\"" << py + ph + 18 << "\" text-anchor=\"middle\">"
        << fmt_num(v, xs) << "</text>\n";
    }
    for (double v : yt) {
      if (v < ymin || v > ymax) continue;
      o << "<line x1=\"" << px << "\" y1=\"" << Y(v) << "\" x2=\"" << px + pw << "\" y2=\""
        << Y(v) << "\" stroke=\"#e5e5e5\"/>\n";
      o << "<line x1=\"" << px - 5 << "\" y1=\"" << Y(v) << "\" x2=\"" << px << "\" y2=\""
        << Y(v) << "\" stroke=\"#333\"/>\n";
      o << "<text x=\"" << px - 8 << "\" y=\"" << Y(v) + 4 << "\" text-anchor=\"end\">"
        << fmt_num(v, ys) << "</text>\n";
    }
    o << "<text x=\"" << px + pw / 2 << "\" y=\"" << py + ph + 42 << "\" text-anchor=\"middle\">"
      << esc(p.x_label) << "</text>\n";
    o << "<text transform=\"translate(" << px - 58 << "," << py + ph / 2
      << ") rotate(-90)\" text-anchor=\"middle\">" << esc(p.y_label) << "</text>\n";
    for (const auto& h : p.hlines) {
      o << "<line x1=\"" << px << "\" y1=\"" << Y(h.second) << "\" x2=\"" << px + pw << "\" y2=\""
        << Y(h.second) << "\" stroke=\"#000\" stroke-dasharray=\"2,3\"/>\n";
      o << "<text x=\"" << px + pw - 4 << "\" y=\"" << Y(h.second) - 4
        << "\" text-anchor=\"end\" fill=\"#000\">" << esc(h.first) << "</text>\n";
    }
    o << "<clipPath id=\"clip" << pi << "\"><rect x=\"" << px << "\" y=\"" << py << "\" width=\""
      << pw << "\" height=\"" << ph << "\"/></clipPath>\n";
    o << "<g clip-path=\"url(#clip" << pi << ")\">\n";
    for (size_t si = 0; si < p.series.size(); ++si) {
      const SvgSeries& s = p.series[si];
      const char* col = kPalette[si % (sizeof kPalette / sizeof *kPalette)];
      if (s.line && s.points.size() > 1) {
        o << "<polyline fill=\"none\" stroke=\"" << col << "\" stroke-width=\"2\""
          << (s.dashed ? " stroke-dasharray=\"6,4\"" : "") << " points=\"";
        for (const auto& pt : s.points)
          if (std::isfinite(pt.first) && std::isfinite(pt.second))
            o << X(pt.first) << "," << Y(pt.second) << " ";
        o << "\"/>\n";
      }
      if (s.markers)
        for (const auto& pt : s.points)
          if (std::isfinite(pt.first) && std::isfinite(pt.second))
            o << "<circle cx=\"" << X(pt.first) << "\" cy=\"" << Y(pt.second) << "\" r=\"3\" fill=\""
              << col << "\"/>\n";
      for (const auto& pt : s.highlight)
        o << "<circle cx=\"" << X(pt.first) << "\" cy=\"" << Y(pt.second) << "\" r=\"7\" fill=\""
          << col << "\" stroke=\"#000\" stroke-width=\"1.5\"/>\n";
    }
    o << "</g>\n";
    // Legend to the right of the plot.
    int lx = px + pw + 16, ly = py + 6;
    for (size_t si = 0; si < p.series.size(); ++si) {
      const char* col = kPalette[si % (sizeof kPalette / sizeof *kPalette)];
      int yy = ly + int(si) * 18;
      o << "<line x1=\"" << lx << "\" y1=\"" << yy << "\" x2=\"" << lx + 22 << "\" y2=\"" << yy
        << "\" stroke=\"" << col << "\" stroke-width=\"2\""
        << (p.series[si].dashed ? " stroke-dasharray=\"6,4\"" : "") << "/>\n";
      o << "<circle cx=\"" << lx + 11 << "\" cy=\"" << yy << "\" r=\"3\" fill=\"" << col << "\"/>\n";
      o << "<text x=\"" << lx + 28 << "\" y=\"" << yy + 4 << "\">" << esc(legend_name(p.series[si].name))
        << "</text>\n";
    }
    o << "</g>\n";
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace routenlp::detail

namespace routenlp {

std::string plot_frontier_svg(const EvalReport& report) {
  using namespace detail;
  SvgPanel p;
  p.title = "Quality vs cost (" + report.dataset + ", vs always " + report.reference_tier + ")";
  p.x_label = "cost ratio (vs always-" + report.reference_tier + ")";
  p.y_label = "quality ratio";
  for (const auto& s : report.systems) {
    if (s.status != "ok") continue;
    SvgSeries ser;
    ser.name = s.system;
    for (const auto& pt : s.sweep) ser.points.emplace_back(pt.cost_ratio, pt.quality_ratio);
    std::sort(ser.points.begin(), ser.points.end());
    ser.highlight.emplace_back(s.mean.cost_ratio, s.mean.quality_ratio);
    if (ser.points.empty()) {
      ser.points = ser.highlight;
      ser.line = false;
    }
    p.series.push_back(std::move(ser));
  }
  p.hlines.emplace_back("quality target " + std::to_string(report.quality_target).substr(0, 5),
                        report.quality_target);
  return render_svg("routenlp eval: cost-quality frontier (big dots: chosen operating points)",
                    {p}, 1020, 600);
}

std::string plot_stream_svg(const StreamReport& report) {
  using namespace detail;
  SvgPanel v, c;
  v.title = "Violation rate per window (accepted answers that are unacceptable)";
  v.x_label = "time (s)";
  v.y_label = "violation rate";
  v.y_from_zero = true;
  c.title = "Cost per query per window";
  c.x_label = "time (s)";
  c.y_label = "USD per query";
  c.y_from_zero = true;
  SvgSeries vs{"static thresholds", {}, true, true, false, {}},
      va{"adaptive (ACI)", {}, true, true, false, {}};
  SvgSeries cs{"static thresholds", {}, true, true, false, {}},
      ca{"adaptive (ACI)", {}, true, true, false, {}};
  for (const auto& w : report.windows) {
    if (w.n == 0) continue;
    vs.points.emplace_back(w.t_end_s, w.violation_static);
    va.points.emplace_back(w.t_end_s, w.violation_adaptive);
    cs.points.emplace_back(w.t_end_s, w.cost_static);
    ca.points.emplace_back(w.t_end_s, w.cost_adaptive);
  }
  v.series = {vs, va};
  v.hlines.emplace_back("alpha " + std::to_string(report.alpha).substr(0, 5), report.alpha);
  c.series = {cs, ca};
  return render_svg("routenlp eval --stream: static vs adaptive thresholds", {v, c}, 1020, 420);
}

}  // namespace routenlp

// SVG charts for evaluation reports: cost-quality frontiers and stream windows.
#include "eval/svg_plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <sstream>

#include "eval/eval_internal.hpp"

namespace routenlp::detail {

namespace {

// Distinct hues, dark enough for text on white; the later ones differ from the earlier by
// lightness as well. 16 colours x 12 shapes: every (colour, shape) pair differs for the first
// 48 series, and the colours alone for the first 16.
const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#e07b00", "#9467bd", "#8c564b",
                          "#d35fb7", "#17a2b8", "#7f7f7f", "#9a9a00", "#000000", "#1a1aa6",
                          "#7a0019", "#66b814", "#005f5f", "#b8860b"};
constexpr size_t kColours = sizeof kPalette / sizeof *kPalette;
constexpr double kPi = 3.14159265358979323846;

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

// Coordinates with one decimal: stable, short, and parseable by the tests.
std::string px1(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

std::string polygon_path(const std::vector<std::pair<double, double>>& pts) {
  std::string d;
  for (size_t i = 0; i < pts.size(); ++i)
    d += (i ? " L" : "M") + px1(pts[i].first) + " " + px1(pts[i].second);
  return d + " Z";
}

// Regular polygon (n corners, first at angle a0 degrees, y down) of circumradius r.
std::string regular(int n, double a0, double r) {
  std::vector<std::pair<double, double>> p;
  for (int i = 0; i < n; ++i) {
    double a = (a0 + 360.0 * i / n) * kPi / 180.0;
    p.emplace_back(r * std::cos(a), r * std::sin(a));
  }
  return polygon_path(p);
}

// Plus sign with arms of half-width t and reach r, rotated by rot degrees.
std::string plus_path(double r, double t, double rot) {
  std::vector<std::pair<double, double>> p = {{t, -r}, {t, -t}, {r, -t}, {r, t}, {t, t},
                                              {t, r},  {-t, r}, {-t, t}, {-r, t}, {-r, -t},
                                              {-t, -t}, {-t, -r}};
  double c = std::cos(rot * kPi / 180.0), s = std::sin(rot * kPi / 180.0);
  for (auto& q : p) q = {q.first * c - q.second * s, q.first * s + q.second * c};
  return polygon_path(p);
}

// Marker of the given shape centred on the origin, of about the visual size of a circle of
// radius r.
std::string marker_svg(const std::string& shape, double r, const char* fill, const char* stroke,
                       double stroke_w) {
  std::ostringstream o;
  std::string paint = std::string(" fill=\"") + fill + "\" stroke=\"" + stroke +
                      "\" stroke-width=\"" + px1(stroke_w) + "\"";
  if (shape == "circle") {
    o << "<circle r=\"" << px1(r) << "\"" << paint << "/>";
    return o.str();
  }
  std::string d;
  if (shape == "square") d = regular(4, 45, r * 1.25);
  else if (shape == "triangle") d = regular(3, -90, r * 1.4);
  else if (shape == "diamond") d = regular(4, 0, r * 1.35);
  else if (shape == "triangle-down") d = regular(3, 90, r * 1.4);
  else if (shape == "cross") d = plus_path(r * 1.35, r * 0.42, 45);
  else if (shape == "plus") d = plus_path(r * 1.3, r * 0.42, 0);
  else if (shape == "star") {
    std::vector<std::pair<double, double>> p;
    for (int i = 0; i < 10; ++i) {
      double a = (-90 + 36.0 * i) * kPi / 180.0, rr = i % 2 ? r * 0.62 : r * 1.5;
      p.emplace_back(rr * std::cos(a), rr * std::sin(a));
    }
    d = polygon_path(p);
  } else if (shape == "pentagon") d = regular(5, -90, r * 1.2);
  else if (shape == "hexagon") d = regular(6, 0, r * 1.15);
  else if (shape == "triangle-left") d = regular(3, 180, r * 1.4);
  else d = regular(3, 0, r * 1.4);  // triangle-right
  o << "<path d=\"" << d << "\"" << paint << "/>";
  return o.str();
}

// Colour and shape slots: emphasised series first, so the routenlp systems get the strongest
// colours and the simplest shapes whatever their position in the list; then the other curves;
// lone points last (they carry a label, so a colour shared with a far slot matters least).
std::vector<size_t> style_slots(const std::vector<SvgSeries>& series) {
  std::vector<size_t> slot(series.size());
  size_t next = 0;
  auto rank = [](const SvgSeries& s) {
    return s.emphasis ? 0 : s.line && s.points.size() > 1 ? 1 : 2;
  };
  for (int pass = 0; pass < 3; ++pass)
    for (size_t i = 0; i < series.size(); ++i)
      if (rank(series[i]) == pass) slot[i] = next++;
  return slot;
}

}  // namespace

const std::vector<std::string>& marker_shapes() {
  static const std::vector<std::string> k = {"circle",   "square",        "triangle", "diamond",
                                             "triangle-down", "cross",    "plus",     "star",
                                             "pentagon", "hexagon", "triangle-left", "triangle-right"};
  return k;
}

double overlap_area(const LabelBox& a, const LabelBox& b) {
  double dx = std::min(a.x + a.w, b.x + b.w) - std::max(a.x, b.x);
  double dy = std::min(a.y + a.h, b.y + b.h) - std::max(a.y, b.y);
  return dx > 0 && dy > 0 ? dx * dy : 0.0;
}

double text_width_px(const std::string& text, double font_px, bool bold) {
  double em = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) == 0x80) continue;  // UTF-8 continuation byte: counted with its lead
    // Widths in em of Helvetica rounded up towards DejaVu Sans (rsvg's usual fallback).
    if (std::strchr("ijlI.,:;'|!", c)) em += 0.30;
    else if (std::strchr("frt-() /", c)) em += 0.40;
    else if (std::strchr("mwMW@", c)) em += 0.95;
    else if (c >= 'A' && c <= 'Z') em += 0.72;
    else em += 0.62;
  }
  return em * font_px * (bold ? 1.1 : 1.0) + 2.0;
}

std::vector<LabelPlacement> layout_labels(const std::vector<LabelRequest>& requests,
                                          const std::vector<LabelBox>& hard,
                                          const std::vector<LabelBox>& soft,
                                          const LabelBox& bounds) {
  std::vector<LabelPlacement> out;
  std::vector<LabelBox> taken = hard;
  for (const auto& r : requests) {
    LabelPlacement best;
    double best_score = std::numeric_limits<double>::infinity();
    for (int ring = 0; ring < 16; ++ring) {
      double d = r.gap + 9.0 * ring, g = d * 0.7071;
      const LabelBox cand[] = {
          {r.ax + d, r.ay - r.h / 2, r.w, r.h},              // right
          {r.ax - d - r.w, r.ay - r.h / 2, r.w, r.h},        // left
          {r.ax + g, r.ay - g - r.h, r.w, r.h},              // upper right
          {r.ax + g, r.ay + g, r.w, r.h},                    // lower right
          {r.ax - g - r.w, r.ay - g - r.h, r.w, r.h},        // upper left
          {r.ax - g - r.w, r.ay + g, r.w, r.h},              // lower left
          {r.ax - r.w / 2, r.ay - d - r.h, r.w, r.h},        // above
          {r.ax - r.w / 2, r.ay + d, r.w, r.h}};             // below
      for (const LabelBox& c : cand) {
        bool inside = c.x >= bounds.x && c.y >= bounds.y && c.x + c.w <= bounds.x + bounds.w &&
                      c.y + c.h <= bounds.y + bounds.h;
        double h = 0, s = 0;
        for (const auto& t : taken) h += overlap_area(c, t);
        for (const auto& t : soft) s += t.weight * overlap_area(c, t);
        // Leaving the plot or covering a label/marker costs more than any distance; covering a
        // sweep point costs about its area in px of distance.
        double score = (inside ? 0.0 : 1e9) + h * 1e5 + s + 9.0 * ring;
        if (score < best_score) {
          best_score = score;
          best.box = c;

        }
      }
    }
    // A label that had to move away from its point gets a line back to it.
    double nx = std::min(std::max(r.ax, best.box.x), best.box.x + best.box.w);
    double ny = std::min(std::max(r.ay, best.box.y), best.box.y + best.box.h);
    best.leader = std::hypot(nx - r.ax, ny - r.ay) > r.gap + 6;
    out.push_back(best);
    taken.push_back(best.box);
  }
  return out;
}

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
  const int top = 40, ml = 80, mt = 40, mb = 60;
  const int pw = std::max(200, width - ml - 290);
  const double legend_font = 12, note_font = 11;
  // The legend column is as wide as its longest entry: names are never cut.
  double legend_w = 0;
  for (const auto& p : panels)
    for (const auto& s : p.series) {
      double w = text_width_px(s.name, legend_font, s.emphasis);
      if (!s.legend_note.empty()) w += 6 + text_width_px(s.legend_note, note_font, false);
      legend_w = std::max(legend_w, w);
    }
  const int mr = std::max(290, int(std::ceil(16 + 34 + legend_w + 12)));
  width = ml + pw + mr;
  int height = top + int(panels.size()) * panel_height + 10;
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" viewBox=\"0 0 " << width << " " << height
    << "\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n";
  o << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << "<text x=\"" << (ml + pw / 2) << "\" y=\"24\" text-anchor=\"middle\" font-size=\"16\" "
       "font-weight=\"bold\">"
    << esc(title) << "</text>\n";
  const auto& shapes = marker_shapes();
  for (size_t pi = 0; pi < panels.size(); ++pi) {
    const SvgPanel& p = panels[pi];
    const std::vector<size_t> slot = style_slots(p.series);
    auto colour = [&](size_t si) { return kPalette[slot[si] % kColours]; };
    auto shape = [&](size_t si) { return shapes[slot[si] % shapes.size()]; };
    int y0 = top + int(pi) * panel_height;
    int px = ml, py = y0 + mt, ph = panel_height - mt - mb;
    double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
    auto extend = [&](const std::pair<double, double>& pt) {
      if (!std::isfinite(pt.first) || !std::isfinite(pt.second)) return;
      xmin = std::min(xmin, pt.first);
      xmax = std::max(xmax, pt.first);
      ymin = std::min(ymin, pt.second);
      ymax = std::max(ymax, pt.second);
    };
    for (const auto& s : p.series) {
      for (const auto& pt : s.points) extend(pt);
      for (const auto& pt : s.highlight) extend(pt);
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
    // Room above the top points (often the reference tier at 1.0) for their labels.
    bool labels = false;
    for (const auto& s : p.series) labels |= s.label_point && !s.highlight.empty();
    xmin -= xpad, xmax += xpad, ymax += labels ? 2.5 * ypad : ypad;
    if (!p.y_from_zero || ymin < 0) ymin -= ypad;
    auto X = [&](double x) { return px + (x - xmin) / (xmax - xmin) * pw; };
    auto Y = [&](double y) { return py + ph - (y - ymin) / (ymax - ymin) * ph; };
    auto finite = [](const std::pair<double, double>& pt) {
      return std::isfinite(pt.first) && std::isfinite(pt.second);
    };
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
    // Boxes the point labels must not cover (hard) or should avoid (soft).
    std::vector<LabelBox> hard, soft;
    for (const auto& h : p.hlines)
      o << "<line x1=\"" << px << "\" y1=\"" << Y(h.second) << "\" x2=\"" << px + pw << "\" y2=\""
        << Y(h.second) << "\" stroke=\"#000\" stroke-dasharray=\"5,4\"/>\n";
    o << "<clipPath id=\"clip" << pi << "\"><rect x=\"" << px << "\" y=\"" << py << "\" width=\""
      << pw << "\" height=\"" << ph << "\"/></clipPath>\n";
    o << "<g clip-path=\"url(#clip" << pi << ")\">\n";
    // Plain series first, emphasised ones on top.
    for (int pass = 0; pass < 2; ++pass)
      for (size_t si = 0; si < p.series.size(); ++si) {
        const SvgSeries& s = p.series[si];
        if (s.emphasis != (pass == 1)) continue;
        const char* col = colour(si);
        if (s.line && s.points.size() > 1) {
          o << "<polyline fill=\"none\" stroke=\"" << col << "\" stroke-width=\""
            << (s.emphasis ? "3.5" : "1.6") << "\" stroke-linejoin=\"round\""
            << (s.emphasis ? "" : " stroke-opacity=\"0.85\"")
            << (s.dashed ? " stroke-dasharray=\"6,4\"" : "") << " points=\"";
          for (const auto& pt : s.points)
            if (finite(pt)) o << px1(X(pt.first)) << "," << px1(Y(pt.second)) << " ";
          o << "\"/>\n";
          // Samples along the line, so labels prefer not to hide it (the routenlp lines most).
          const double wt = s.emphasis ? 0.4 : 0.1;
          for (size_t i = 1; i < s.points.size(); ++i) {
            if (!finite(s.points[i - 1]) || !finite(s.points[i])) continue;
            double x0 = X(s.points[i - 1].first), y0 = Y(s.points[i - 1].second);
            double x1 = X(s.points[i].first), y1 = Y(s.points[i].second);
            int n = int(std::hypot(x1 - x0, y1 - y0) / 5.0) + 1;
            for (int k = 0; k <= n; ++k) {
              double f = double(k) / n;
              soft.push_back({x0 + f * (x1 - x0) - 2, y0 + f * (y1 - y0) - 2, 4, 4, wt});
            }
          }
        }
        if (s.markers) {
          double r = s.emphasis ? 3.5 : 3.0;
          std::string m = marker_svg(shape(si), r, col, "none", 0);
          for (const auto& pt : s.points) {
            if (!finite(pt)) continue;
            o << "<g transform=\"translate(" << px1(X(pt.first)) << "," << px1(Y(pt.second))
              << ")\">" << m << "</g>\n";
            soft.push_back({X(pt.first) - r - 1, Y(pt.second) - r - 1, 2 * r + 2, 2 * r + 2, 0.3});
          }
        }
      }
    // Chosen operating points above every line.
    for (int pass = 0; pass < 2; ++pass)
      for (size_t si = 0; si < p.series.size(); ++si) {
        const SvgSeries& s = p.series[si];
        if (s.emphasis != (pass == 1)) continue;
        double r = s.emphasis ? 8.0 : 6.5;
        for (size_t hi = 0; hi < s.highlight.size(); ++hi) {
          const auto& pt = s.highlight[hi];
          if (!finite(pt)) continue;
          double x = X(pt.first), y = Y(pt.second);
          o << "<g class=\"op\" data-system=\"" << esc(s.name) << "\" data-shape=\"" << shape(si)
            << "\" transform=\"translate(" << px1(x) << "," << px1(y) << ")\">"
            << marker_svg(shape(si), r, colour(si), "#000", 1.3) << "</g>\n";
          hard.push_back({x - r * 1.4, y - r * 1.4, r * 2.8, r * 2.8});
        }
      }
    o << "</g>\n";
    // Reference-line labels above or below the line, at its left or right end: wherever they
    // cover the fewest points. Written after the curves, so that none runs over them.
    for (const auto& h : p.hlines) {
      double w = text_width_px(h.first, 12, false), y = Y(h.second);
      const LabelBox cand[] = {{px + 4.0, y - 17, w, 15},
                               {px + pw - 4 - w, y - 17, w, 15},
                               {px + 4.0, y + 2, w, 15},
                               {px + pw - 4 - w, y + 2, w, 15}};
      LabelBox best = cand[0];
      double best_cost = std::numeric_limits<double>::infinity();
      for (const auto& c : cand) {
        if (c.y < py || c.y + c.h > py + ph) continue;
        double cost = 0;
        for (const auto& b : hard) cost += 100 * overlap_area(c, b);
        for (const auto& b : soft) cost += b.weight * overlap_area(c, b);
        if (cost < best_cost) best_cost = cost, best = c;
      }
      hard.push_back(best);
      o << "<rect x=\"" << px1(best.x) << "\" y=\"" << px1(best.y) << "\" width=\"" << px1(best.w)
        << "\" height=\"" << px1(best.h) << "\" fill=\"white\" fill-opacity=\"0.8\"/>\n";
      o << "<text x=\"" << px1(best.x + 1) << "\" y=\"" << px1(best.y + best.h - 3.5)
        << "\" fill=\"#000\">" << esc(h.first) << "</text>\n";
    }
    // Direct labels: emphasised systems choose their places first.
    const double label_font = 12;
    std::vector<LabelRequest> req;
    std::vector<size_t> req_series;
    for (int pass = 0; pass < 2; ++pass)
      for (size_t si = 0; si < p.series.size(); ++si) {
        const SvgSeries& s = p.series[si];
        if (s.emphasis != (pass == 0) || !s.label_point || s.highlight.empty() ||
            !finite(s.highlight.front()))
          continue;
        LabelRequest r;
        r.ax = X(s.highlight.front().first);
        r.ay = Y(s.highlight.front().second);
        r.w = text_width_px(s.name, label_font, s.emphasis) + 4;
        r.h = label_font + 4;
        r.gap = (s.emphasis ? 8.0 : 6.5) * 1.4 + 3;
        req.push_back(r);
        req_series.push_back(si);
      }
    if (!req.empty()) {
      LabelBox bounds{double(px) + 2, double(py) + 2, double(pw) - 4, double(ph) - 4};
      auto placed = layout_labels(req, hard, soft, bounds);
      for (size_t i = 0; i < placed.size(); ++i) {
        const SvgSeries& s = p.series[req_series[i]];
        const LabelBox& b = placed[i].box;
        o << "<g class=\"point-label\">";
        if (placed[i].leader) {
          // From the anchor to the nearest point of the box.
          double lx = std::min(std::max(req[i].ax, b.x), b.x + b.w);
          double ly = std::min(std::max(req[i].ay, b.y), b.y + b.h);
          o << "<line x1=\"" << px1(req[i].ax) << "\" y1=\"" << px1(req[i].ay) << "\" x2=\""
            << px1(lx) << "\" y2=\"" << px1(ly) << "\" stroke=\"" << colour(req_series[i])
            << "\" stroke-width=\"1\"/>";
        }
        o << "<rect class=\"label-box\" x=\"" << px1(b.x) << "\" y=\"" << px1(b.y)
          << "\" width=\"" << px1(b.w) << "\" height=\"" << px1(b.h)
          << "\" fill=\"white\" fill-opacity=\"0.8\" rx=\"2\"/>";
        o << "<text x=\"" << px1(b.x + 2) << "\" y=\"" << px1(b.y + b.h - 4.5) << "\" fill=\""
          << colour(req_series[i]) << "\"" << (s.emphasis ? " font-weight=\"bold\"" : "") << ">"
          << esc(s.name) << "</text></g>\n";
      }
    }
    // Legend to the right of the plot, full names.
    int lx = px + pw + 16, ly = py + 6;
    int row = p.series.empty() ? 18 : std::max(13, std::min(18, ph / int(p.series.size())));
    for (size_t si = 0; si < p.series.size(); ++si) {
      const SvgSeries& s = p.series[si];
      const char* col = colour(si);
      int yy = ly + int(si) * row;
      if (s.line)
        o << "<line x1=\"" << lx << "\" y1=\"" << yy << "\" x2=\"" << lx + 26 << "\" y2=\"" << yy
          << "\" stroke=\"" << col << "\" stroke-width=\"" << (s.emphasis ? "3.5" : "1.6") << "\""
          << (s.dashed ? " stroke-dasharray=\"6,4\"" : "") << "/>\n";
      o << "<g transform=\"translate(" << lx + 13 << "," << yy << ")\">"
        << marker_svg(shape(si), 4.5, col, "#000", 0.8) << "</g>\n";
      o << "<text x=\"" << lx + 34 << "\" y=\"" << yy + 4 << "\""
        << (s.emphasis ? " font-weight=\"bold\"" : "") << ">" << esc(s.name);
      if (!s.legend_note.empty())
        o << "<tspan fill=\"#555\" font-size=\"" << note_font << "\" dx=\"6\">"
          << esc(s.legend_note) << "</tspan>";
      o << "</text>\n";
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
    ser.emphasis = s.system.rfind("routenlp", 0) == 0;
    ser.label_point = true;
    for (const auto& pt : s.sweep) ser.points.emplace_back(pt.cost_ratio, pt.quality_ratio);
    std::sort(ser.points.begin(), ser.points.end());
    ser.highlight.emplace_back(s.mean.cost_ratio, s.mean.quality_ratio);
    if (ser.points.empty()) {
      ser.line = false;
      ser.markers = false;
    }
    if (!s.seed_quality_ratio.empty())
      ser.legend_note = std::string(s.met_target ? "met target " : "missed target ") +
                        std::to_string(s.seeds_met) + "/" +
                        std::to_string(s.seed_quality_ratio.size());
    p.series.push_back(std::move(ser));
  }
  char t[64];
  std::snprintf(t, sizeof t, "quality target %.3f", report.quality_target);
  p.hlines.emplace_back(t, report.quality_target);
  return render_svg("routenlp eval: cost-quality frontier (big markers: chosen operating points)",
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
  SvgSeries vs, va;
  vs.name = "static thresholds";
  va.name = "adaptive (ACI)";
  SvgSeries cs = vs, ca = va;
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

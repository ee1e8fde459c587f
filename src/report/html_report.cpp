#include "report/html_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "report/heatmap.h"

namespace dfd {

using nlohmann::json;

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

double verdict_confidence(const Report& r) {
  if (r.verdict == "FAKE") return 100.0 * double(r.fake_probability);
  if (r.verdict == "REAL") return 100.0 * (1.0 - double(r.fake_probability));
  return 0.0;
}

std::string report_images_json(const std::vector<ReportImage>& images, int indent) {
  json a = json::array();
  for (const auto& im : images) {
    a.push_back({{"track_id", im.track_id},
                 {"frame_index", im.frame_index},
                 {"pts_ns", im.pts_ns == kNoTime ? json(nullptr) : json(im.pts_ns)},
                 {"bbox", {im.bbox.x, im.bbox.y, im.bbox.width, im.bbox.height}},
                 {"fake_probability", double(std::lround(double(im.fake_probability) * 1e6)) / 1e6},
                 {"crop_png", base64_encode(im.crop_png)},
                 {"heatmap_png", base64_encode(im.heatmap_png)}});
  }
  return a.dump(indent);
}

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string time_label(uint64_t ns) {
  if (ns == kNoTime) return "";
  const double s = double(ns) / 1e9;
  const int m = int(s / 60);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%d:%06.3f", m, s - 60.0 * m);
  return buf;
}

const char* verdict_colour(const std::string& v) {
  if (v == "FAKE") return "#c62828";
  if (v == "REAL") return "#2e7d32";
  return "#616161";
}

// A 0..100 half-circle gauge.
std::string gauge_svg(double value, const std::string& verdict) {
  value = std::clamp(value, 0.0, 100.0);
  const double cx = 110, cy = 110, r = 90;
  auto pt = [&](double v, double rad) {
    const double a = M_PI * (1.0 - v / 100.0);  // 0 -> left, 100 -> right
    return std::make_pair(cx + rad * std::cos(a), cy - rad * std::sin(a));
  };
  std::ostringstream s;
  const auto [x0, y0] = pt(0, r);
  const auto [x1, y1] = pt(100, r);
  const auto [xv, yv] = pt(value, r);
  const auto [xn, yn] = pt(value, r - 18);
  s << "<svg class=\"gauge\" id=\"gauge\" viewBox=\"0 0 220 135\" width=\"220\" height=\"135\" role=\"img\" "
       "aria-label=\"confidence "
    << fmt("%.1f", value) << " of 100\" data-value=\"" << fmt("%.4f", value) << "\">";
  s << "<path d=\"M" << fmt("%.2f", x0) << ' ' << fmt("%.2f", y0) << " A" << r << ' ' << r << " 0 0 1 "
    << fmt("%.2f", x1) << ' ' << fmt("%.2f", y1) << "\" fill=\"none\" stroke=\"#e0e0e0\" stroke-width=\"16\"/>";
  if (value > 0.05)
    s << "<path d=\"M" << fmt("%.2f", x0) << ' ' << fmt("%.2f", y0) << " A" << r << ' ' << r << " 0 0 1 "
      << fmt("%.2f", xv) << ' ' << fmt("%.2f", yv) << "\" fill=\"none\" stroke=\"" << verdict_colour(verdict)
      << "\" stroke-width=\"16\"/>";
  for (int t = 0; t <= 100; t += 25) {
    const auto [a, b] = pt(t, r + 12);
    s << "<text x=\"" << fmt("%.1f", a) << "\" y=\"" << fmt("%.1f", b + 3) << "\" font-size=\"9\" "
      << "text-anchor=\"middle\" fill=\"#757575\">" << t << "</text>";
  }
  s << "<line x1=\"" << cx << "\" y1=\"" << cy << "\" x2=\"" << fmt("%.2f", xn) << "\" y2=\"" << fmt("%.2f", yn)
    << "\" stroke=\"#212121\" stroke-width=\"3\" stroke-linecap=\"round\"/>";
  s << "<circle cx=\"" << cx << "\" cy=\"" << cy << "\" r=\"5\" fill=\"#212121\"/>";
  s << "<text x=\"" << cx << "\" y=\"" << cy + 22 << "\" font-size=\"18\" font-weight=\"bold\" text-anchor=\"middle\">"
    << fmt("%.1f", value) << "%</text>";
  s << "</svg>";
  return s.str();
}

constexpr size_t kMaxFramePoints = 600;

// Score over time for one track: per-frame P(FAKE) (a line with points),
// windows as bars at their P(FAKE), windows above the threshold shaded.
std::string track_chart_svg(const ReportTrack& t, float threshold) {
  const double W = 760, H = 240, L = 48, R = 16, T = 14, B = 40;
  const double pw = W - L - R, ph = H - T - B;
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for (const auto& f : t.frames) lo = std::min(lo, f.index), hi = std::max(hi, f.index);
  for (const auto& w : t.windows) {
    if (w.start_index >= 0) lo = std::min(lo, w.start_index), hi = std::max(hi, w.start_index);
    if (w.end_index >= 0) lo = std::min(lo, w.end_index), hi = std::max(hi, w.end_index);
  }
  if (lo > hi) lo = hi = 0;
  // Each frame owns the unit [index, index + 1) on the axis.
  const double x_lo = double(lo), x_hi = double(hi) + 1.0;
  auto X = [&](double i) { return L + (i - x_lo) / (x_hi - x_lo) * pw; };
  auto Y = [&](double p) { return T + (1.0 - std::clamp(p, 0.0, 1.0)) * ph; };
  std::map<int64_t, uint64_t> pts;
  for (const auto& f : t.frames)
    if (f.pts_ns != kNoTime) pts[f.index] = f.pts_ns;

  std::ostringstream s;
  s << "<svg class=\"chart\" id=\"chart-track-" << t.id << "\" viewBox=\"0 0 " << W << ' ' << H
    << "\" width=\"100%\" preserveAspectRatio=\"xMidYMid meet\" role=\"img\" aria-label=\"P(FAKE) over time, track "
    << t.id << "\">";
  s << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"#fafafa\" stroke=\"#bdbdbd\"/>";
  // Windows above the threshold, shaded over their span.
  for (const auto& w : t.windows) {
    if (!(w.fake_probability > threshold) || w.start_index < 0 || w.end_index < 0) continue;
    const double x0 = X(double(w.start_index)), x1 = X(double(w.end_index) + 1.0);
    s << "<rect class=\"over-threshold\" x=\"" << fmt("%.2f", x0) << "\" y=\"" << T << "\" width=\""
      << fmt("%.2f", std::max(1.0, x1 - x0)) << "\" height=\"" << ph << "\" fill=\"#c62828\" fill-opacity=\"0.13\">"
      << "<title>window frames " << w.start_index << "-" << w.end_index << ": P(FAKE) "
      << fmt("%.3f", w.fake_probability) << " above the threshold</title></rect>";
  }
  // Y grid and labels.
  for (int k = 0; k <= 4; ++k) {
    const double p = k / 4.0, y = Y(p);
    s << "<line x1=\"" << L << "\" y1=\"" << fmt("%.2f", y) << "\" x2=\"" << L + pw << "\" y2=\"" << fmt("%.2f", y)
      << "\" stroke=\"#eeeeee\"/>";
    s << "<text x=\"" << L - 6 << "\" y=\"" << fmt("%.2f", y + 3) << "\" font-size=\"10\" text-anchor=\"end\" "
      << "fill=\"#616161\">" << fmt("%.2f", p) << "</text>";
  }
  // X ticks: frame indices, with the time when known.
  const int64_t span = hi - lo + 1;
  const int64_t step = std::max<int64_t>(1, (span + 5) / 6);
  for (int64_t i = lo; i <= hi; i += step) {
    const double x = X(double(i) + 0.5);
    s << "<line x1=\"" << fmt("%.2f", x) << "\" y1=\"" << T + ph << "\" x2=\"" << fmt("%.2f", x) << "\" y2=\""
      << T + ph + 4 << "\" stroke=\"#9e9e9e\"/>";
    s << "<text x=\"" << fmt("%.2f", x) << "\" y=\"" << T + ph + 15 << "\" font-size=\"10\" text-anchor=\"middle\" "
      << "fill=\"#616161\">" << i;
    auto it = pts.find(i);
    if (it != pts.end()) s << " (" << time_label(it->second) << ")";
    s << "</text>";
  }
  s << "<text x=\"" << L + pw / 2 << "\" y=\"" << H - 6 << "\" font-size=\"11\" text-anchor=\"middle\" "
    << "fill=\"#424242\">frame (time)</text>";
  s << "<text x=\"12\" y=\"" << T + ph / 2 << "\" font-size=\"11\" text-anchor=\"middle\" fill=\"#424242\" "
    << "transform=\"rotate(-90 12 " << T + ph / 2 << ")\">P(FAKE)</text>";
  // Threshold.
  s << "<line class=\"threshold\" x1=\"" << L << "\" y1=\"" << fmt("%.2f", Y(threshold)) << "\" x2=\"" << L + pw
    << "\" y2=\"" << fmt("%.2f", Y(threshold)) << "\" stroke=\"#c62828\" stroke-dasharray=\"6 4\" "
    << "stroke-width=\"1.5\"><title>threshold " << fmt("%.2f", threshold) << "</title></line>";
  s << "<text x=\"" << L + pw - 4 << "\" y=\"" << fmt("%.2f", Y(threshold) - 4) << "\" font-size=\"10\" "
    << "text-anchor=\"end\" fill=\"#c62828\">threshold " << fmt("%.2f", threshold) << "</text>";
  // Windows: a bar over the frames they cover at their probability.
  for (const auto& w : t.windows) {
    if (w.start_index < 0 || w.end_index < 0) continue;
    const double y = Y(w.fake_probability);
    const bool over = w.fake_probability > threshold;
    s << "<line class=\"window\" data-start=\"" << w.start_index << "\" data-end=\"" << w.end_index << "\" data-p=\""
      << fmt("%.6f", w.fake_probability) << "\" x1=\"" << fmt("%.2f", X(double(w.start_index))) << "\" y1=\""
      << fmt("%.2f", y) << "\" x2=\"" << fmt("%.2f", X(double(w.end_index) + 1.0)) << "\" y2=\"" << fmt("%.2f", y)
      << "\" stroke=\"" << (over ? "#c62828" : "#2e7d32") << "\" stroke-width=\"4\" stroke-opacity=\"0.75\">"
      << "<title>window frames " << w.start_index << "-" << w.end_index << " (" << w.frames << " crops): P(FAKE) "
      << fmt("%.3f", w.fake_probability) << "</title></line>";
  }
  // Per-frame probabilities.
  if (!t.frames.empty()) {
    s << "<polyline class=\"frames\" fill=\"none\" stroke=\"#1565c0\" stroke-width=\"1.5\" points=\"";
    for (const auto& f : t.frames)
      s << fmt("%.2f", X(double(f.index) + 0.5)) << ',' << fmt("%.2f", Y(f.fake_probability)) << ' ';
    s << "\"/>";
    // Points (with tooltips) while they stay readable; long videos get the line alone.
    if (t.frames.size() <= kMaxFramePoints)
      for (const auto& f : t.frames)
        s << "<circle class=\"frame-point\" data-index=\"" << f.index << "\" data-p=\""
          << fmt("%.6f", f.fake_probability) << "\" cx=\"" << fmt("%.2f", X(double(f.index) + 0.5)) << "\" cy=\""
          << fmt("%.2f", Y(f.fake_probability)) << "\" r=\"2.5\" fill=\"#1565c0\"><title>frame " << f.index
          << (f.pts_ns != kNoTime ? " at " + time_label(f.pts_ns) : std::string()) << ": P(FAKE) "
          << fmt("%.3f", f.fake_probability) << "</title></circle>";
  }
  s << "</svg>";
  return s.str();
}

const char* kStyle = R"CSS(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f5f5f5;color:#212121}
main{max-width:900px;margin:0 auto;padding:16px}
h1{font-size:20px;margin:8px 0 4px}h2{font-size:17px;margin:24px 0 8px}h3{font-size:15px;margin:16px 0 6px}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.15);padding:14px 16px;margin:12px 0}
.warning{background:#fff3e0;border-left:6px solid #ef6c00;padding:10px 14px;border-radius:6px;margin:12px 0;font-weight:600}
.summary{display:flex;gap:24px;align-items:center;flex-wrap:wrap}
.verdict{font-size:34px;font-weight:800;letter-spacing:.5px}
.muted{color:#757575;font-size:13px}
table{border-collapse:collapse;font-size:13px}td,th{text-align:left;padding:3px 10px 3px 0;vertical-align:top}
th{color:#616161;font-weight:600}
.thumbs{display:flex;flex-wrap:wrap;gap:12px}
.thumb{background:#fafafa;border:1px solid #e0e0e0;border-radius:6px;padding:6px;font-size:12px}
.thumb img{width:160px;height:160px;display:inline-block;border-radius:4px;image-rendering:auto}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;font-weight:700}
code{font-size:12px;word-break:break-all}
.legend span{margin-right:14px;font-size:12px}
)CSS";

}  // namespace

std::string render_html_report(const Report& r, const HtmlReportOptions& o) {
  const std::string title = o.title.empty() ? "Deepfake report: " + r.source : o.title;
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    << "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
       "style-src 'unsafe-inline'\">"
    << "<title>" << html_escape(title) << "</title><style>" << kStyle << "</style></head><body><main>\n";
  h << "<h1>" << html_escape(title) << "</h1>\n";
  if (!r.model.trained) {
    const std::string notice = r.model.notice.empty() ? "UNTRAINED model: outputs are meaningless" : r.model.notice;
    h << "<div class=\"warning\" id=\"untrained-warning\">&#9888; " << html_escape(notice)
      << ". This verdict comes from random weights and says nothing about the video.</div>\n";
  }

  // Overall verdict and gauge.
  const double conf = verdict_confidence(r);
  h << "<section class=\"card summary\" id=\"summary\"><div>" << gauge_svg(conf, r.verdict)
    << "<div class=\"muted\" style=\"text-align:center\">confidence</div></div><div>";
  h << "<div class=\"verdict\" id=\"verdict\" data-verdict=\"" << html_escape(r.verdict) << "\" style=\"color:"
    << verdict_colour(r.verdict) << "\">" << (r.verdict == "NO_FACE" ? "NO FACE" : html_escape(r.verdict)) << "</div>";
  if (r.verdict == "NO_FACE") {
    h << "<div>No face was found, so nothing was classified.</div>";
  } else {
    h << "<div>P(FAKE) <b id=\"fake-probability\">" << fmt("%.4f", r.fake_probability) << "</b> (threshold "
      << fmt("%.2f", r.threshold) << "; a video is as fake as its most suspicious face)</div>";
  }
  h << "<div class=\"muted\">" << r.tracks.size() << " face track" << (r.tracks.size() == 1 ? "" : "s") << ", "
    << r.stats.frames << " frames, " << r.stats.windows_analysed << " windows analysed";
  if (r.stats.windows_skipped) h << ", " << r.stats.windows_skipped << " skipped";
  if (r.stats.elapsed_s > 0) h << ", " << fmt("%.2f", r.stats.elapsed_s) << " s";
  h << "</div><div class=\"muted\">source: <code>" << html_escape(r.source) << "</code></div></div></section>\n";

  // Per track.
  std::map<uint64_t, std::vector<const ReportImage*>> images;
  for (const auto& im : o.images) images[im.track_id].push_back(&im);
  for (const auto& t : r.tracks) {
    h << "<section class=\"card track\" id=\"track-" << t.id << "\"><h2>Face track " << t.id
      << " <span class=\"pill\" style=\"background:" << verdict_colour(t.verdict) << "\">" << html_escape(t.verdict)
      << "</span> <span class=\"muted\">P(FAKE) " << fmt("%.4f", t.fake_probability) << ", " << t.windows.size()
      << " window" << (t.windows.size() == 1 ? "" : "s") << ", " << t.frames.size() << " frames scored</span></h2>";
    h << track_chart_svg(t, r.threshold);
    h << "<div class=\"legend muted\"><span style=\"color:#1565c0\">&#9679; each frame alone</span>"
      << "<span style=\"color:#2e7d32\">&#9644; window (" << html_escape(r.aggregation.empty() ? "mean" : r.aggregation)
      << " of windows makes the track verdict)</span><span style=\"color:#c62828\">&#9633; window above the "
      << "threshold</span></div>";
    auto it = images.find(t.id);
    if (it != images.end()) {
      h << "<h3>Most suspicious crops</h3><div class=\"thumbs\">";
      for (const ReportImage* im : it->second) {
        h << "<figure class=\"thumb\" style=\"margin:0\">";
        if (!im->crop_png.empty())
          h << "<img class=\"crop\" alt=\"face crop, frame " << im->frame_index << "\" src=\""
            << png_data_uri(im->crop_png) << "\"> ";
        if (!im->heatmap_png.empty())
          h << "<img class=\"heatmap\" alt=\"class activation heatmap, frame " << im->frame_index << "\" src=\""
            << png_data_uri(im->heatmap_png) << "\">";
        h << "<figcaption>frame " << im->frame_index;
        if (im->pts_ns != kNoTime) h << " at " << time_label(im->pts_ns);
        h << " &middot; P(FAKE) " << fmt("%.3f", im->fake_probability) << " &middot; box " << im->bbox.x << ','
          << im->bbox.y << ' ' << im->bbox.width << 'x' << im->bbox.height << "</figcaption></figure>";
      }
      h << "</div><p class=\"muted\">Heatmap: the backbone's last feature map weighted by the head's FAKE-class "
           "weights (JET colours, red = strongest evidence of a fake)"
        << (r.model.trained ? "." : "; with an untrained model it shows nothing meaningful.") << "</p>";
    }
    h << "</section>\n";
  }

  // Model card.
  h << "<section class=\"card\" id=\"model-card\"><h2>Model</h2><table>";
  auto row = [&](const std::string& k, const std::string& v) {
    h << "<tr><th>" << html_escape(k) << "</th><td>" << html_escape(v) << "</td></tr>";
  };
  row("name", r.model.name);
  row("trained", r.model.trained ? "yes" : "NO (random weights)");
  row("head", r.model.head);
  if (!r.model.source.empty()) row("weights", r.model.source);
  if (!r.model.checksum.empty()) row("checksum", r.model.checksum);
  if (!r.model.precision.empty()) row("precision", r.model.precision + (r.model.device.empty() ? "" : " on " + r.model.device));
  row("window size", std::to_string(r.window_size));
  row("threshold", fmt("%.2f", r.threshold));
  if (!r.aggregation.empty()) row("aggregation", r.aggregation);
  if (!r.face_detector.empty()) row("face detector", r.face_detector);
  if (!o.model_card_json.empty()) {
    try {
      const json card = json::parse(o.model_card_json);
      for (const char* k : {"architecture", "training_data", "provenance", "metrics", "metrics_json", "input_size",
                            "channel_order", "seed"}) {
        if (!card.contains(k)) continue;
        const json& v = card[k];
        row(k, v.is_string() ? v.get<std::string>() : v.dump());
      }
    } catch (const json::exception&) {
      row("model card", "(unreadable)");
    }
  }
  h << "</table></section>\n";

  if (!o.generator.empty())
    h << "<p class=\"muted\">Made by " << html_escape(o.generator) << ". The machine-readable report is embedded "
      << "in this page (script#dfd-report).</p>\n";
  // The report JSON, for tools; "</" is escaped so it cannot close the element.
  std::string data = r.to_json(-1);
  std::string safe;
  safe.reserve(data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] == '<') safe += "\\u003c";
    else safe += data[i];
  }
  h << "<script type=\"application/json\" id=\"dfd-report\">" << safe << "</script>\n";
  h << "</main></body></html>\n";
  return h.str();
}

}  // namespace dfd

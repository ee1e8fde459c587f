#include "report/eval_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "report/heatmap.h"

namespace dfd {
namespace {

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

std::string fmt(double v, const char* f = "%.3f") {
  if (!std::isfinite(v)) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// Scanned clips, most suspicious first (ties: by id).
std::vector<const EvalClip*> ranked(const std::vector<EvalClip>& clips) {
  std::vector<const EvalClip*> r;
  for (const auto& c : clips) r.push_back(&c);
  std::stable_sort(r.begin(), r.end(), [](const EvalClip* a, const EvalClip* b) {
    if (a->failed != b->failed) return !a->failed;
    if (a->score != b->score) return a->score > b->score;
    return a->id < b->id;
  });
  return r;
}

std::string roc_svg(const std::vector<RocPoint>& roc, double auc) {
  const int size = 320, pad = 40;
  auto x = [&](double v) { return pad + v * size; };
  auto y = [&](double v) { return pad + (1 - v) * size; };
  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << size + 2 * pad << "' height='" << size + 2 * pad
    << "' role='img' aria-label='ROC curve'>"
    << "<rect x='" << pad << "' y='" << pad << "' width='" << size << "' height='" << size
    << "' fill='#fafafa' stroke='#888'/>"
    << "<line x1='" << x(0) << "' y1='" << y(0) << "' x2='" << x(1) << "' y2='" << y(1)
    << "' stroke='#bbb' stroke-dasharray='4 4'/>";
  s << "<polyline fill='none' stroke='#c0392b' stroke-width='2' points='";
  for (const auto& p : roc) s << x(p.fpr) << ',' << y(p.tpr) << ' ';
  s << "'/>";
  for (const auto& p : roc)
    s << "<circle cx='" << x(p.fpr) << "' cy='" << y(p.tpr) << "' r='3' fill='#c0392b'><title>threshold "
      << fmt(p.threshold) << ": TPR " << fmt(p.tpr) << ", FPR " << fmt(p.fpr) << "</title></circle>";
  s << "<text x='" << pad + size / 2 << "' y='" << size + 2 * pad - 8
    << "' text-anchor='middle' font-size='12'>false positive rate (real called FAKE)</text>"
    << "<text x='12' y='" << pad + size / 2 << "' transform='rotate(-90 12 " << pad + size / 2
    << ")' text-anchor='middle' font-size='12'>true positive rate (fakes caught)</text>"
    << "<text x='" << pad + size - 8 << "' y='" << pad + size - 10 << "' text-anchor='end' font-size='14'>AUC "
    << fmt(auc) << "</text></svg>";
  return s.str();
}

}  // namespace

std::vector<RocPoint> roc_curve(const std::vector<float>& scores, const std::vector<bool>& is_fake) {
  const double n_fake = double(std::count(is_fake.begin(), is_fake.end(), true));
  const double n_real = double(is_fake.size()) - n_fake;
  std::vector<float> thresholds = scores;
  std::sort(thresholds.begin(), thresholds.end(), std::greater<float>());
  thresholds.erase(std::unique(thresholds.begin(), thresholds.end()), thresholds.end());
  std::vector<RocPoint> out{{0, 0, thresholds.empty() ? 1.f : thresholds.front()}};
  for (float t : thresholds) {
    // Predicted FAKE when score >= t, i.e. the point just below each distinct score.
    double tp = 0, fp = 0;
    for (size_t i = 0; i < scores.size(); ++i)
      if (scores[i] >= t) (is_fake[i] ? tp : fp) += 1;
    out.push_back({n_real > 0 ? fp / n_real : 0, n_fake > 0 ? tp / n_fake : 0, std::nextafter(t, -1.f)});
  }
  if (out.back().fpr < 1 || out.back().tpr < 1) out.push_back({1, 1, -1.f});
  return out;
}

namespace {
// Scores and labels of the clips that were scanned (failed ones left out).
void scanned(const std::vector<EvalClip>& clips, std::vector<float>* scores, std::vector<bool>* is_fake) {
  for (const auto& c : clips)
    if (!c.failed) {
      scores->push_back(c.score);
      is_fake->push_back(c.fake);
    }
}
}  // namespace

metrics::Summary EvalResult::summary() const {
  std::vector<float> s;
  std::vector<bool> f;
  scanned(clips, &s, &f);
  return metrics::summarize(s, f, threshold);
}

std::vector<RocPoint> EvalResult::roc() const {
  std::vector<float> s;
  std::vector<bool> f;
  scanned(clips, &s, &f);
  return roc_curve(s, f);
}

int EvalResult::no_face() const {
  return int(std::count_if(clips.begin(), clips.end(), [](const EvalClip& c) { return !c.failed && c.verdict == "NO_FACE"; }));
}
int EvalResult::failed() const {
  return int(std::count_if(clips.begin(), clips.end(), [](const EvalClip& c) { return c.failed; }));
}

std::string EvalResult::to_json(int indent) const {
  nlohmann::json j;
  j["dataset"] = dataset;
  j["model"] = model;
  j["options"] = options;
  j["threshold"] = threshold;
  j["metrics"] = nlohmann::json::parse(summary().to_json());
  j["metrics"]["no_face"] = no_face();
  j["metrics"]["failed"] = failed();
  j["roc"] = nlohmann::json::array();
  for (const auto& p : roc()) j["roc"].push_back({{"fpr", p.fpr}, {"tpr", p.tpr}, {"threshold", p.threshold}});
  j["clips"] = nlohmann::json::array();
  for (const auto* c : ranked(clips)) {
    nlohmann::json e{{"id", c->id}, {"label", c->fake ? "FAKE" : "REAL"}};
    if (c->failed) {
      e["error"] = c->error;
    } else {
      e["verdict"] = c->verdict;
      e["fake_probability"] = number_or_null(c->score);
      e["correct"] = (c->verdict == "FAKE") == c->fake;
      e["tracks"] = c->tracks;
      e["frames"] = c->frames;
      e["elapsed_s"] = c->elapsed_s;
    }
    j["clips"].push_back(e);
  }
  if (!model_card.empty()) j["model_card"] = nlohmann::json::parse(model_card, nullptr, false);
  return j.dump(indent);
}

std::string EvalResult::table() const {
  std::ostringstream s;
  s << "rank  label  verdict   P(FAKE)  clip\n";
  int rank = 0;
  for (const auto* c : ranked(clips)) {
    char line[96];
    if (c->failed)
      std::snprintf(line, sizeof line, "  -   %-5s  %-8s  %7s  ", c->fake ? "FAKE" : "REAL", "FAILED", "");
    else
      std::snprintf(line, sizeof line, "%4d  %-5s  %-8s  %7.3f  ", ++rank, c->fake ? "FAKE" : "REAL",
                    c->verdict.c_str(), c->score);
    s << line << c->id << (c->failed ? "  (" + c->error + ")" : "") << "\n";
  }
  const auto m = summary();
  s << "\nclips " << m.n << " (" << m.n_fake << " fake, " << m.n_real << " real)";
  if (no_face()) s << ", " << no_face() << " with no face (scored 0)";
  if (failed()) s << ", " << failed() << " failed (left out)";
  s << "\nROC AUC " << fmt(m.auc) << "   EER " << fmt(m.eer) << " (at " << fmt(m.eer_threshold) << ")"
    << "   log loss " << fmt(m.log_loss) << "\naccuracy at threshold " << fmt(threshold, "%.2f") << ": "
    << fmt(m.accuracy) << "   balanced " << fmt(m.balanced_accuracy) << "\nconfusion: real->REAL "
    << m.cm.real_as_real << ", real->FAKE " << m.cm.real_as_fake << ", fake->REAL " << m.cm.fake_as_real
    << ", fake->FAKE " << m.cm.fake_as_fake << "\n";
  return s.str();
}

std::string EvalResult::html() const {
  const auto m = summary();
  std::ostringstream s;
  s << "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Evaluation: "
    << html_escape(dataset) << "</title><style>body{font-family:sans-serif;margin:2em;max-width:70em}"
    << "table{border-collapse:collapse}td,th{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left}"
    << ".wrong{background:#fdecea}.fake{color:#c0392b;font-weight:bold}.real{color:#27ae60;font-weight:bold}"
    << "img{width:96px;height:96px;margin-right:4px;border:1px solid #ccc}.m td:first-child{color:#555}</style>"
    << "</head><body><h1>Evaluation on " << html_escape(dataset) << "</h1>"
    << "<p>Model: <code>" << html_escape(model) << "</code><br>Options: <code>" << html_escape(options)
    << "</code></p><div style='display:flex;gap:2em;flex-wrap:wrap'><div>" << roc_svg(roc(), m.auc)
    << "</div><table class='m'>"
    << "<tr><td>clips</td><td>" << m.n << " (" << m.n_fake << " fake, " << m.n_real << " real)</td></tr>"
    << "<tr><td>ROC AUC</td><td>" << fmt(m.auc) << "</td></tr>"
    << "<tr><td>EER</td><td>" << fmt(m.eer) << " at threshold " << fmt(m.eer_threshold) << "</td></tr>"
    << "<tr><td>accuracy at " << fmt(threshold, "%.2f") << "</td><td>" << fmt(m.accuracy) << " (balanced "
    << fmt(m.balanced_accuracy) << ")</td></tr>"
    << "<tr><td>log loss</td><td>" << fmt(m.log_loss) << "</td></tr>"
    << "<tr><td>confusion</td><td>real&rarr;REAL " << m.cm.real_as_real << ", real&rarr;FAKE "
    << m.cm.real_as_fake << ",<br>fake&rarr;REAL " << m.cm.fake_as_real << ", fake&rarr;FAKE "
    << m.cm.fake_as_fake << "</td></tr>"
    << "<tr><td>no face</td><td>" << no_face() << " (scored 0)</td></tr>"
    << "<tr><td>failed</td><td>" << failed() << " (left out)</td></tr></table></div>"
    << "<h2>Clips ranked by P(FAKE)</h2><table><tr><th>#</th><th>clip</th><th>label</th><th>verdict</th>"
    << "<th>P(FAKE)</th><th>most suspicious crops</th></tr>";
  int rank = 0;
  for (const auto* c : ranked(clips)) {
    const bool wrong = !c->failed && (c->verdict == "FAKE") != c->fake;
    s << "<tr" << (wrong ? " class='wrong'" : "") << "><td>" << (c->failed ? "-" : std::to_string(++rank))
      << "</td><td>" << html_escape(c->id) << "</td><td class='" << (c->fake ? "fake'>FAKE" : "real'>REAL")
      << "</td><td>" << html_escape(c->failed ? "failed: " + c->error : c->verdict) << "</td><td>"
      << (c->failed ? "" : fmt(c->score)) << "</td><td>";
    for (const auto& img : c->crops)
      if (!img.crop_png.empty())
        s << "<img alt='crop, P(FAKE) " << fmt(img.fake_probability) << "' title='P(FAKE) "
          << fmt(img.fake_probability) << "' src='data:image/png;base64," << base64_encode(img.crop_png) << "'>";
    s << "</td></tr>";
  }
  s << "</table><p>A clip with no face is scored 0 (nothing flagged); failed clips are left out of the "
    << "metrics. Figures are for these clips only.</p></body></html>\n";
  return s.str();
}

}  // namespace dfd

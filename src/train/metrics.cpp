#include "train/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <stdexcept>

namespace dfd::metrics {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check(const std::vector<float>& s, const std::vector<bool>& y) {
  if (s.size() != y.size()) throw std::invalid_argument("metrics: scores and labels differ in length");
}

int64_t count_fake(const std::vector<bool>& y) { return std::count(y.begin(), y.end(), true); }
}  // namespace

double Confusion::accuracy() const {
  const int64_t n = total();
  return n ? double(real_as_real + fake_as_fake) / double(n) : kNaN;
}

Confusion confusion(const std::vector<float>& scores, const std::vector<bool>& is_fake, float threshold) {
  check(scores, is_fake);
  Confusion c;
  for (size_t i = 0; i < scores.size(); ++i) {
    const bool pred = scores[i] > threshold;
    if (is_fake[i]) (pred ? c.fake_as_fake : c.fake_as_real)++;
    else (pred ? c.real_as_fake : c.real_as_real)++;
  }
  return c;
}

double roc_auc(const std::vector<float>& scores, const std::vector<bool>& is_fake) {
  check(scores, is_fake);
  const int64_t n = int64_t(scores.size()), np = count_fake(is_fake), nn = n - np;
  if (np == 0 || nn == 0) return kNaN;
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Sum of the (average, 1-based) ranks of the fakes.
  double rank_sum = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double avg_rank = (double(i + 1) + double(j)) / 2.0;
    for (size_t k = i; k < j; ++k)
      if (is_fake[order[k]]) rank_sum += avg_rank;
    i = j;
  }
  const double u = rank_sum - double(np) * double(np + 1) / 2.0;
  return u / (double(np) * double(nn));
}

std::vector<float> candidate_thresholds(const std::vector<float>& scores) {
  std::vector<float> u(scores);
  std::sort(u.begin(), u.end());
  u.erase(std::unique(u.begin(), u.end()), u.end());
  std::vector<float> t;
  if (u.empty()) return {0.5f};
  t.push_back(std::nextafter(u.front(), -std::numeric_limits<float>::infinity()));
  for (size_t i = 0; i + 1 < u.size(); ++i) {
    float m = u[i] + (u[i + 1] - u[i]) / 2.f;
    if (!(m > u[i])) m = u[i];  // adjacent floats: "> u[i]" still separates them
    t.push_back(m);
  }
  t.push_back(u.back());
  return t;
}

Eer equal_error_rate(const std::vector<float>& scores, const std::vector<bool>& is_fake) {
  check(scores, is_fake);
  const int64_t np = count_fake(is_fake), nn = int64_t(scores.size()) - np;
  Eer r;
  if (np == 0 || nn == 0) {
    r.eer = kNaN;
    return r;
  }
  const auto ts = candidate_thresholds(scores);  // ascending: FPR falls, FNR rises
  std::vector<double> fpr, fnr;
  for (float t : ts) {
    auto c = confusion(scores, is_fake, t);
    fpr.push_back(double(c.real_as_fake) / double(nn));
    fnr.push_back(double(c.fake_as_real) / double(np));
  }
  size_t best = 0;
  for (size_t i = 1; i < ts.size(); ++i)
    if (std::abs(fpr[i] - fnr[i]) < std::abs(fpr[best] - fnr[best])) best = i;
  r.threshold = ts[best];
  // The crossing: first i where FNR >= FPR (FNR - FPR goes from < 0 to >= 0).
  for (size_t i = 0; i < ts.size(); ++i) {
    const double d = fnr[i] - fpr[i];
    if (d < 0) continue;
    if (i == 0 || d == 0) {
      r.eer = (fpr[i] + fnr[i]) / 2.0;
    } else {
      const double da = fnr[i - 1] - fpr[i - 1];  // < 0
      const double s = -da / (d - da);
      r.eer = fpr[i - 1] + s * (fpr[i] - fpr[i - 1]);
    }
    return r;
  }
  r.eer = (fpr.back() + fnr.back()) / 2.0;  // unreachable: the last threshold has FPR 0
  return r;
}

float max_accuracy_threshold(const std::vector<float>& scores, const std::vector<bool>& is_fake) {
  check(scores, is_fake);
  if (scores.empty()) return 0.5f;
  float best_t = 0.5f;
  int64_t best_correct = -1;
  for (float t : candidate_thresholds(scores)) {
    auto c = confusion(scores, is_fake, t);
    const int64_t correct = c.real_as_real + c.fake_as_fake;
    if (correct > best_correct || (correct == best_correct && std::abs(t - 0.5f) < std::abs(best_t - 0.5f))) {
      best_correct = correct;
      best_t = t;
    }
  }
  return best_t;
}

double log_loss(const std::vector<float>& prob_fake, const std::vector<bool>& is_fake, double eps) {
  check(prob_fake, is_fake);
  if (prob_fake.empty()) return kNaN;
  double sum = 0;
  for (size_t i = 0; i < prob_fake.size(); ++i) {
    double p = is_fake[i] ? double(prob_fake[i]) : 1.0 - double(prob_fake[i]);
    p = std::min(std::max(p, eps), 1.0 - eps);
    sum -= std::log(p);
  }
  return sum / double(prob_fake.size());
}

Summary summarize(const std::vector<float>& prob_fake, const std::vector<bool>& is_fake, float threshold) {
  check(prob_fake, is_fake);
  Summary s;
  s.n = int64_t(prob_fake.size());
  s.n_fake = count_fake(is_fake);
  s.n_real = s.n - s.n_fake;
  s.threshold = threshold;
  s.cm = confusion(prob_fake, is_fake, threshold);
  s.accuracy = s.cm.accuracy();
  double bal = 0;
  int classes = 0;
  if (s.n_fake) bal += double(s.cm.fake_as_fake) / double(s.n_fake), ++classes;
  if (s.n_real) bal += double(s.cm.real_as_real) / double(s.n_real), ++classes;
  s.balanced_accuracy = classes ? bal / classes : kNaN;
  s.auc = roc_auc(prob_fake, is_fake);
  auto e = equal_error_rate(prob_fake, is_fake);
  s.eer = e.eer;
  s.eer_threshold = e.threshold;
  s.log_loss = log_loss(prob_fake, is_fake);
  return s;
}

std::string Summary::to_json() const {
  auto num = [](double v) -> nlohmann::json { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  nlohmann::json j;
  j["n"] = n;
  j["n_fake"] = n_fake;
  j["n_real"] = n_real;
  j["threshold"] = threshold;
  j["accuracy"] = num(accuracy);
  j["balanced_accuracy"] = num(balanced_accuracy);
  j["roc_auc"] = num(auc);
  j["eer"] = num(eer);
  j["eer_threshold"] = eer_threshold;
  j["log_loss"] = num(log_loss);
  j["confusion"] = {{"real_as_real", cm.real_as_real},
                    {"real_as_fake", cm.real_as_fake},
                    {"fake_as_real", cm.fake_as_real},
                    {"fake_as_fake", cm.fake_as_fake}};
  return j.dump();
}

}  // namespace dfd::metrics

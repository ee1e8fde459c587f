// Track verdicts from window probabilities.
#include "analysis/verdict.h"

#include <algorithm>
#include <stdexcept>

namespace dfd {

const char* to_string(Aggregation a) {
  switch (a) {
    case Aggregation::Last: return "last";
    case Aggregation::Mean: return "mean";
    case Aggregation::Max: return "max";
    case Aggregation::Ema: return "ema";
  }
  return "?";
}

Aggregation aggregation_from_string(const std::string& s) {
  if (s == "last") return Aggregation::Last;
  if (s == "mean") return Aggregation::Mean;
  if (s == "max") return Aggregation::Max;
  if (s == "ema") return Aggregation::Ema;
  throw std::invalid_argument("unknown aggregation '" + s + "' (expected last, mean, max or ema)");
}

void VerdictAggregator::add(float prob_fake) {
  const double p = prob_fake;
  // The EMA starts at the first value rather than at 0, so one window gives
  // its own probability instead of alpha times it.
  if (n_ == 0) {
    max_ = ema_ = p;
  } else {
    max_ = std::max(max_, p);
    ema_ = alpha_ * p + (1.0 - alpha_) * ema_;
  }
  sum_ += p;
  last_ = p;
  ++n_;
}

float VerdictAggregator::value() const {
  if (n_ == 0) return 0.f;
  switch (agg_) {
    case Aggregation::Last: return float(last_);
    case Aggregation::Mean: return float(sum_ / n_);
    case Aggregation::Max: return float(max_);
    case Aggregation::Ema: return float(ema_);
  }
  return 0.f;
}

// Strictly greater, as Prediction::is_fake: a probability equal to the
// threshold is not enough evidence to call a face fake.
const char* label_for(float prob_fake, float threshold) { return prob_fake > threshold ? "FAKE" : "REAL"; }

}  // namespace dfd

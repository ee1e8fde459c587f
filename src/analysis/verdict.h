// Turning window probabilities into a track verdict.
#pragma once
#include <string>
#include <vector>

namespace dfd {

enum class Aggregation { Last, Mean, Max, Ema };
const char* to_string(Aggregation a);
Aggregation aggregation_from_string(const std::string& s);  // throws std::invalid_argument

// Running aggregate of a track's window probabilities of FAKE.
class VerdictAggregator {
 public:
  explicit VerdictAggregator(Aggregation a = Aggregation::Mean, float ema_alpha = 0.3f) : agg_(a), alpha_(ema_alpha) {}
  void add(float prob_fake);
  float value() const;  // 0 when nothing added
  int count() const { return n_; }

 private:
  Aggregation agg_;
  float alpha_;
  int n_ = 0;
  double sum_ = 0, max_ = 0, ema_ = 0, last_ = 0;
};

const char* label_for(float prob_fake, float threshold);  // "FAKE" or "REAL"

}  // namespace dfd

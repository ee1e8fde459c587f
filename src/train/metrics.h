// Binary classification metrics for deepfake detection, without LibTorch.
// The positive class is FAKE throughout: a score is P(FAKE), a sample is
// predicted FAKE when score > threshold (the element's rule), and the labels
// say whether each sample is fake.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dfd::metrics {

struct Confusion {
  int64_t real_as_real = 0;  // true negatives
  int64_t real_as_fake = 0;  // false positives
  int64_t fake_as_real = 0;  // false negatives
  int64_t fake_as_fake = 0;  // true positives
  int64_t total() const { return real_as_real + real_as_fake + fake_as_real + fake_as_fake; }
  double accuracy() const;  // NaN when empty
};

Confusion confusion(const std::vector<float>& scores, const std::vector<bool>& is_fake, float threshold);

// Area under the ROC curve, ties counted one half (the Mann-Whitney U
// statistic over n_fake * n_real pairs). NaN unless both classes are present.
double roc_auc(const std::vector<float>& scores, const std::vector<bool>& is_fake);

// Candidate thresholds: one below every score, the midpoints between
// consecutive distinct scores, and the highest score (nothing is FAKE).
std::vector<float> candidate_thresholds(const std::vector<float>& scores);

struct Eer {
  double eer = 0;        // where the false positive and false negative rates cross (linear interpolation)
  float threshold = 0.5f;  // the candidate threshold whose |FPR - FNR| is smallest
};
// Equal error rate. NaN eer (threshold 0.5) unless both classes are present.
Eer equal_error_rate(const std::vector<float>& scores, const std::vector<bool>& is_fake);

// The candidate threshold with the highest accuracy; ties go to the one
// closest to 0.5. 0.5 when there are no samples.
float max_accuracy_threshold(const std::vector<float>& scores, const std::vector<bool>& is_fake);

// Mean negative log-likelihood of the true class, probabilities clipped to
// [eps, 1 - eps]. NaN when empty.
double log_loss(const std::vector<float>& prob_fake, const std::vector<bool>& is_fake, double eps = 1e-7);

struct Summary {
  int64_t n = 0, n_fake = 0, n_real = 0;
  float threshold = 0.5f;
  double accuracy = 0, balanced_accuracy = 0, auc = 0, eer = 0, log_loss = 0;
  float eer_threshold = 0.5f;
  Confusion cm;
  std::string to_json() const;  // JSON object text; NaN written as null
};
Summary summarize(const std::vector<float>& prob_fake, const std::vector<bool>& is_fake, float threshold);

}  // namespace dfd::metrics

// The evaluation of a detector on a labelled set of clips (deepfake-eval):
// one score and verdict per clip, video-level metrics (ROC AUC, EER,
// accuracy at the model's threshold, confusion matrix, log loss), the ROC
// curve, and the result as JSON, a terminal table and a self-contained HTML
// page (ROC curve, clips ranked by score with their most suspicious crops).
// Torch-free; the clips are scanned by the caller (tools/deepfake_eval.cpp).
#pragma once
#include <string>
#include <vector>

#include "report/html_report.h"
#include "train/metrics.h"

namespace dfd {

struct EvalClip {
  std::string path, id;  // id: the path relative to the dataset
  bool fake = false;     // the label
  bool failed = false;   // not scanned (decode error, ...): left out of the metrics
  std::string error;
  // Scanned: "FAKE" | "REAL" | "NO_FACE". A clip with no face counts as a
  // REAL prediction with score 0 (the detector found nothing to flag).
  std::string verdict;
  float score = 0.f;  // the report's overall P(FAKE)
  int tracks = 0;
  uint64_t frames = 0;
  double elapsed_s = 0;
  std::vector<ReportImage> crops;  // most suspicious crops, for the HTML page
};

struct RocPoint {
  double fpr = 0, tpr = 0;
  float threshold = 0;  // predicted FAKE when score > threshold
};

// The ROC curve from (0,0) to (1,1), one point per distinct score.
std::vector<RocPoint> roc_curve(const std::vector<float>& scores, const std::vector<bool>& is_fake);

struct EvalResult {
  std::string dataset;
  std::string model;       // the model file(s), as given
  std::string model_card;  // ModelCard::to_json() of the (first) model; may be empty
  std::string options;     // face and element options, one line
  float threshold = 0.5f;  // the model's (or --threshold)
  std::vector<EvalClip> clips;

  // Metrics over the clips that were scanned (not failed).
  metrics::Summary summary() const;
  std::vector<RocPoint> roc() const;
  int no_face() const;
  int failed() const;

  std::string to_json(int indent = 2) const;
  std::string table() const;  // per clip, ranked by score, then the metrics
  std::string html() const;   // self-contained page
};

}  // namespace dfd

#include "scan_model.h"

#include "model/family.h"

namespace dfd {

std::shared_ptr<const void> hold_scan_model(const ScanOptions& options, std::string* card_json, float* threshold) {
  if (options.model.empty() || options.model.find(',') != std::string::npos) return nullptr;  // the element's default, or an ensemble
  auto det = load_detector_shared(options.model, model_options_of(options));
  if (card_json) *card_json = det->card().to_json();
  if (threshold) *threshold = det->card().threshold;
  return det;
}

std::vector<ReportImage> render_report_crops(const ScanOptions& options, const Report& report, int per_track) {
  if (options.model.empty() || options.model.find(',') != std::string::npos) return {};  // none, or an ensemble
  auto det = load_detector_shared(options.model, model_options_of(options));
  return render_report_images(options, *det, most_suspicious(report, per_track));
}

}  // namespace dfd

// The model a batch of scans shares (deepfake-eval, deepfake-scan with many
// inputs): loaded once and held, so that every element of the process gets
// the same instance instead of loading it per file.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "scan_runner.h"

namespace dfd {

// Loads options.model (any architecture; empty: nothing is held and the
// element uses its default) and keeps it alive while the result is held.
// Fills the model card JSON and the card's threshold when given. Throws.
std::shared_ptr<const void> hold_scan_model(const ScanOptions& options, std::string* card_json = nullptr,
                                            float* threshold = nullptr);

// Up to `per_track` most suspicious crops of each track as pictures (with a
// FAKE-class heatmap where the architecture has one), by a second decode.
// Empty when the model cannot draw them.
std::vector<ReportImage> render_report_crops(const ScanOptions& options, const Report& report, int per_track);

}  // namespace dfd

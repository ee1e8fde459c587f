// A model that sleeps before each window batch, installed from outside the
// element through dfd::set_inference_wrapper: tests slow the worker down
// without any hook in production code.
#pragma once
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "analysis/stream_analyzer.h"

class SlowInference : public dfd::Inference {
 public:
  SlowInference(std::shared_ptr<const dfd::Inference> inner, int ms) : inner_(std::move(inner)), ms_(ms) {}
  std::vector<dfd::Feature> features(const std::vector<cv::Mat>& crops) const override { return inner_->features(crops); }
  std::vector<dfd::Prediction> classify_frames(const std::vector<const dfd::Feature*>& f) const override {
    return inner_->classify_frames(f);
  }
  std::vector<dfd::Prediction> classify_windows(const std::vector<std::vector<const dfd::Feature*>>& w,
                                                dfd::HeadMode mode) const override {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms_));
    return inner_->classify_windows(w, mode);
  }

 private:
  std::shared_ptr<const dfd::Inference> inner_;
  int ms_;
};

struct ScopedSlowModel {
  explicit ScopedSlowModel(int ms) {
    dfd::set_inference_wrapper([ms](std::shared_ptr<const dfd::Inference> inner) {
      return std::make_shared<SlowInference>(std::move(inner), ms);
    });
  }
  ~ScopedSlowModel() { dfd::set_inference_wrapper(nullptr); }
  ScopedSlowModel(const ScopedSlowModel&) = delete;
  ScopedSlowModel& operator=(const ScopedSlowModel&) = delete;
};

// Plain value types shared by every layer: a backbone feature, a prediction.
// No LibTorch here, so that most translation units stay cheap to compile.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

namespace dfd {

constexpr int kFeatureDim = 2048;  // ResNeXt50 pooled feature
constexpr int kInputSize = 112;    // face crop side fed to the backbone
constexpr int kClassFake = 0;      // class index 0 = FAKE, 1 = REAL
constexpr int kClassReal = 1;

// One frame's 2048-d backbone feature.
using Feature = std::vector<float>;

struct Prediction {
  std::array<float, 2> logits{0.f, 0.f};  // [FAKE, REAL]
  float prob_fake = 0.f;                  // softmax(logits)[FAKE]
  bool is_fake(float threshold) const { return prob_fake > threshold; }
};

}  // namespace dfd

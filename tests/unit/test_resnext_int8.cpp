// precision=int8 for the ResNeXt backbone on oneDNN (model/onednn_backbone.h:
// u8 activations with one scale each, s8 weights with one per output
// channel, fixed at load on the shipped calibration faces): it really runs
// int8 (not the float32 features), stays close to the PyTorch module's
// features, feeds the same head, is the same whatever the batch, takes its
// scales from the faces it is given, and refuses what it cannot do with the
// reason. The checkpoint is tests/python's seeded reference.pt; the
// backbone's own contract (calibrating again, refusals) on a small random one.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <random>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "mesonet_paths.h"
#include "model/architecture.h"
#include "model/model.h"
#include "model/onednn_backbone.h"
#include "model/onednn_resnext.h"
#include "reference_fixtures.h"
#include "scoped_env.h"

using namespace dfd;
using unit_test::ScopedEnv;
using unit_test::TempDir;

namespace {

ModelOptions with(const std::string& precision, const std::string& backend = "auto") {
  ModelOptions o;
  o.precision = precision;
  o.backend = backend;
  return o;
}

// Per crop: |a - b| / |b| over the 2048 values (root of sums of squares).
std::vector<double> relative_errors(const std::vector<Feature>& a, const std::vector<std::vector<float>>& b) {
  std::vector<double> out;
  for (size_t i = 0; i < a.size(); ++i) {
    double diff = 0, norm = 0;
    for (size_t k = 0; k < b[i].size(); ++k) {
      diff += double(a[i][k] - b[i][k]) * double(a[i][k] - b[i][k]);
      norm += double(b[i][k]) * double(b[i][k]);
    }
    out.push_back(std::sqrt(diff / norm));
  }
  return out;
}

std::vector<std::vector<float>> as_rows(const std::vector<Feature>& f) { return {f.begin(), f.end()}; }

const std::shared_ptr<const Model>& int8_model() {
  static const auto m = Model::load(test::ref_path("reference.pt"), with("int8"));
  return m;
}

}  // namespace

TEST(ResNeXtInt8, FeaturesStayCloseToPyTorchButAreNotFloat32s) {
  const auto& m = *int8_model();
  EXPECT_EQ(m.precision(), "int8");
  EXPECT_EQ(m.engine(), "onednn-fused");
  const auto f = m.features(test::crops());
  const auto ref = test::features();
  ASSERT_EQ(f.size(), ref.size());
  for (double e : relative_errors(f, ref)) {
    // Measured 0.006-0.011 with the shipped faces; an activation or bias in
    // the wrong scale gives errors of order 1.
    EXPECT_LT(e, 0.03);
    EXPECT_GT(e, 1e-4);  // quantized: not the float32 features
  }
}

TEST(ResNeXtInt8, TheHeadSeesTheInt8Features) {
  const auto& m = *int8_model();
  const auto crops = test::crops();
  std::vector<Feature> feats;
  const auto p = m.classify_crops(crops, &feats);
  std::vector<const Feature*> ptrs;
  for (const auto& x : feats) ptrs.push_back(&x);
  const auto q = m.classify_frames(ptrs);
  ASSERT_EQ(p.size(), q.size());
  for (size_t i = 0; i < p.size(); ++i) EXPECT_NEAR(p[i].prob_fake, q[i].prob_fake, 1e-6) << i;
  EXPECT_LT(relative_errors(feats, test::features())[0], 0.03);
}

TEST(ResNeXtInt8, EveryBatchSizeGivesTheSameFeatures) {
  // Static scales: a crop's int8 arithmetic does not depend on its neighbours.
  const auto crops = test::crops();
  const auto& m = *int8_model();
  const auto all = m.features(crops);
  for (size_t i = 0; i < crops.size(); ++i) {
    const auto one = m.features({crops[i]});
    EXPECT_LT(relative_errors(one, {all[i]})[0], 1e-5) << "crop " << i;
  }
}

TEST(ResNeXtInt8, CalibratesOnTheFacesItIsGiven) {
  const auto crops = test::crops();
  const auto shipped = int8_model()->features(crops);
  {  // The same faces named explicitly: the same scales, the same features.
    ScopedEnv e("DFD_INT8_CALIBRATION", mesonet_test::model_path("calibration"));
    const auto same = Model::load(test::ref_path("reference.pt"), with("int8"))->features(crops);
    EXPECT_LT(relative_errors(same, as_rows(shipped))[0], 1e-6);
  }
  // One dark face only: smaller activation ranges, so other scales.
  TempDir dir;
  cv::Mat face = cv::imread(mesonet_test::face("real00240.jpg")), dark;
  ASSERT_FALSE(face.empty());
  face.convertTo(dark, -1, 0.3);
  cv::imwrite(dir.path + "/dark.png", dark);
  ScopedEnv e("DFD_INT8_CALIBRATION", dir.path);
  const auto other = Model::load(test::ref_path("reference.pt"), with("int8"))->features(crops);
  EXPECT_GT(relative_errors(other, as_rows(shipped))[0], 1e-4);
}

TEST(ResNeXtInt8, SharedInstancesFollowTheCalibrationFaces) {
  const auto a = Model::load_shared(test::ref_path("reference.pt"), with("int8"));
  EXPECT_EQ(a, Model::load_shared(test::ref_path("reference.pt"), with("int8")));
  EXPECT_NE(a, Model::load_shared(test::ref_path("reference.pt"), with("fp32")));
  ScopedEnv e("DFD_INT8_CALIBRATION", mesonet_test::model_path("calibration"));
  EXPECT_NE(a, Model::load_shared(test::ref_path("reference.pt"), with("int8")));
}

TEST(ResNeXtInt8, BadCalibrationIsRefusedWithTheReason) {
  TempDir empty;
  ScopedEnv e("DFD_INT8_CALIBRATION", empty.path);
  try {
    Model::load(test::ref_path("reference.pt"), with("int8"));
    ADD_FAILURE() << "loaded with no calibration faces";
  } catch (const std::runtime_error& err) {
    const std::string what = err.what();
    EXPECT_NE(what.find("no JPEG or PNG"), std::string::npos) << what;
    EXPECT_NE(what.find(empty.path), std::string::npos) << what;
  }
}

TEST(ResNeXtInt8, OptionsAndInputsItCannotRunAreRefused) {
  try {
    Model::untrained(1, with("int8", "libtorch"));
    ADD_FAILURE() << "int8 accepted on LibTorch";
  } catch (const std::invalid_argument& err) {
    EXPECT_NE(std::string(err.what()).find("backend=onednn"), std::string::npos) << err.what();
  }
  const StateDict sd = untrained_state_dict(1);
  EXPECT_THROW(OneDnnResNeXt(sd, with("int8")), std::invalid_argument);  // no calibration crops
  EXPECT_THROW(OneDnnResNeXt(sd, with("int8"), std::vector<float>(100, 0.f)), std::invalid_argument);  // not whole crops
}

namespace {

// A small backbone of the same shape (stem, max pool, a block with a
// downsample and 4-channel groups, one without) with random weights.
OneDnnBackbone::Conv random_conv(std::mt19937& rng, int64_t in, int64_t out, int64_t k, int64_t groups) {
  OneDnnBackbone::Conv c;
  c.in_channels = in;
  c.out_channels = out;
  c.kernel = k;
  c.pad = k / 2;
  c.groups = groups;
  std::normal_distribution<float> w(0.f, std::sqrt(2.f / float(in / groups * k * k)));
  for (int64_t i = 0; i < out * (in / groups) * k * k; ++i) c.weights.push_back(w(rng));
  std::normal_distribution<float> b(0.f, 0.1f);
  for (int64_t o = 0; o < out; ++o) c.bias.push_back(b(rng));
  return c;
}

std::unique_ptr<OneDnnBackbone> small_backbone(OneDnnBackbone::Precision p) {
  std::mt19937 rng(5);
  OneDnnBackbone::Conv stem = random_conv(rng, 3, 16, 3, 1);
  stem.stride = 2;
  std::vector<OneDnnBackbone::Block> blocks(2);
  blocks[0].c1 = random_conv(rng, 16, 16, 1, 1);
  blocks[0].c2 = random_conv(rng, 16, 16, 3, 4);
  blocks[0].c3 = random_conv(rng, 16, 32, 1, 1);
  blocks[0].down = random_conv(rng, 16, 32, 1, 1);
  blocks[0].has_down = true;
  blocks[1].c1 = random_conv(rng, 32, 16, 1, 1);
  blocks[1].c2 = random_conv(rng, 16, 16, 3, 4);
  blocks[1].c3 = random_conv(rng, 16, 32, 1, 1);
  return std::make_unique<OneDnnBackbone>(stem, blocks, p);
}

std::vector<float> random_crops(int64_t n, int64_t size, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  std::vector<float> x(size_t(n * 3 * size * size));
  for (float& v : x) v = u(rng);
  return x;
}

std::vector<float> maps(OneDnnBackbone& b, const std::vector<float>& x, int64_t n, int64_t size) {
  std::vector<float> out(size_t(n * b.channels() * b.map_side(size) * b.map_side(size)));
  b.feature_map(x.data(), n, size, out.data());
  return out;
}

double relative(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, n = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d += double(a[i] - b[i]) * double(a[i] - b[i]);
    n += double(b[i]) * double(b[i]);
  }
  return std::sqrt(d / n);
}

}  // namespace

TEST(OneDnnBackboneInt8, CalibratingAgainGivesTheSameNetwork) {
  constexpr int64_t kSize = 32, kCalib = 8, kN = 3;
  const auto calib = random_crops(kCalib, kSize, 1), x = random_crops(kN, kSize, 2);
  auto f32 = small_backbone(OneDnnBackbone::Precision::f32);
  auto once = small_backbone(OneDnnBackbone::Precision::int8), twice = small_backbone(OneDnnBackbone::Precision::int8);
  once->calibrate(calib.data(), kCalib, kSize);
  twice->calibrate(calib.data(), kCalib, kSize);
  maps(*twice, x, kN, kSize);  // int8 plans and biases made, then calibrated again
  twice->calibrate(calib.data(), kCalib, kSize);
  const auto want = maps(*f32, x, kN, kSize), a = maps(*once, x, kN, kSize), b = maps(*twice, x, kN, kSize);
  EXPECT_LT(relative(b, a), 1e-6);
  EXPECT_LT(relative(a, want), 0.05);  // int8 near float32 ...
  EXPECT_GT(relative(a, want), 1e-5);  // ... and not it
}

TEST(OneDnnBackboneInt8, RefusesToRunUncalibratedAndToCalibrateFloats) {
  const auto x = random_crops(1, 32, 3);
  auto int8 = small_backbone(OneDnnBackbone::Precision::int8);
  std::vector<float> out(size_t(int8->channels() * int8->map_side(32) * int8->map_side(32)));
  EXPECT_THROW(int8->feature_map(x.data(), 1, 32, out.data()), std::logic_error);
  EXPECT_THROW(int8->calibrate(x.data(), 0, 32), std::invalid_argument);
  auto f32 = small_backbone(OneDnnBackbone::Precision::f32);
  EXPECT_THROW(f32->calibrate(x.data(), 1, 32), std::invalid_argument);
}

// Parity with the PyTorch module itself: the fixtures were computed by
// tests/python/reference_module.py on the same crops and checkpoint.
#include <gtest/gtest.h>

#include <cmath>
#include <opencv2/imgproc.hpp>

#include "model/model.h"
#include "reference_fixtures.h"

using namespace dfd;

namespace {
constexpr float kTol = 1e-4f;

// Relative for large logits: the recurrence is summed over many steps.
void expect_close(float got, float want, const char* what) {
  EXPECT_NEAR(got, want, kTol * std::max(1.f, std::fabs(want))) << what;
}

class Parity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = Model::load(test::ref_path("reference.pt"));
    crops_ = test::crops();
    exp_ = test::expected();
    feats_ = model_->features(crops_);
  }
  static std::shared_ptr<const Model> model_;
  static std::vector<cv::Mat> crops_;
  static nlohmann::json exp_;
  static std::vector<Feature> feats_;
  std::vector<const Feature*> ptrs(size_t from, size_t to) const {
    std::vector<const Feature*> v;
    for (size_t i = from; i < to; ++i) v.push_back(&feats_[i]);
    return v;
  }
};
std::shared_ptr<const Model> Parity::model_;
std::vector<cv::Mat> Parity::crops_;
nlohmann::json Parity::exp_;
std::vector<Feature> Parity::feats_;
}  // namespace

TEST_F(Parity, FixturesAreWhatTheTestsAssume) {
  ASSERT_EQ(crops_.size(), 6u);
  ASSERT_EQ(exp_["n"].get<size_t>(), crops_.size());
  // Probabilities spread over (0, 1): parity is tested where softmax is sensitive.
  auto p = exp_["per_frame_prob_fake"].get<std::vector<float>>();
  EXPECT_LT(*std::min_element(p.begin(), p.end()), 0.3f);
  EXPECT_GT(*std::max_element(p.begin(), p.end()), 0.7f);
}

TEST_F(Parity, BackboneFeaturesMatchPyTorch) {
  auto ref = test::features();
  ASSERT_EQ(ref.size(), feats_.size());
  double max_err = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    for (int k = 0; k < kFeatureDim; ++k)
      max_err = std::max(max_err, double(std::fabs(ref[i][size_t(k)] - feats_[i][size_t(k)])) / std::max(1.f, std::fabs(ref[i][size_t(k)])));
  EXPECT_LT(max_err, 1e-4);
}

TEST_F(Parity, BatchedAndSingleCropFeaturesAgree) {
  auto one = model_->features({crops_[2]});
  for (int k = 0; k < kFeatureDim; k += 97) EXPECT_NEAR(one[0][size_t(k)], feats_[2][size_t(k)], 1e-4f);
}

TEST_F(Parity, PerFrameReferenceLogitsAndProbabilities) {
  auto preds = model_->classify_frames(ptrs(0, feats_.size()));
  auto logits = exp_["per_frame_logits"];
  auto probs = exp_["per_frame_prob_fake"];
  ASSERT_EQ(preds.size(), logits.size());
  for (size_t i = 0; i < preds.size(); ++i) {
    expect_close(preds[i].logits[0], logits[i][0].get<float>(), "FAKE logit");
    expect_close(preds[i].logits[1], logits[i][1].get<float>(), "REAL logit");
    EXPECT_NEAR(preds[i].prob_fake, probs[i].get<float>(), kTol);
  }
}

TEST_F(Parity, ReferenceWindowIsTheModuleOutputEndToEnd) {
  // From crops, as the published forward: features then the window head.
  auto w = model_->classify_windows({ptrs(0, 4), ptrs(0, feats_.size()), ptrs(2, 3)}, HeadMode::Reference);
  ASSERT_EQ(w.size(), 3u);
  expect_close(w[0].logits[0], exp_["window_0_3_logits"][0].get<float>(), "window 0..3 FAKE");
  expect_close(w[0].logits[1], exp_["window_0_3_logits"][1].get<float>(), "window 0..3 REAL");
  expect_close(w[1].logits[0], exp_["window_all_logits"][0].get<float>(), "window all FAKE");
  expect_close(w[1].logits[1], exp_["window_all_logits"][1].get<float>(), "window all REAL");
  // A one-frame window is that frame's per-frame output.
  expect_close(w[2].logits[0], exp_["per_frame_logits"][2][0].get<float>(), "1-frame window");
}

TEST_F(Parity, TemporalWindowMatchesTimeMajorLSTM) {
  auto w = model_->classify_windows({ptrs(0, 4), ptrs(0, feats_.size())}, HeadMode::Temporal);
  expect_close(w[0].logits[0], exp_["temporal_0_3_logits"][0].get<float>(), "temporal 0..3 FAKE");
  expect_close(w[0].logits[1], exp_["temporal_0_3_logits"][1].get<float>(), "temporal 0..3 REAL");
  expect_close(w[1].logits[0], exp_["temporal_all_logits"][0].get<float>(), "temporal all FAKE");
  expect_close(w[1].logits[1], exp_["temporal_all_logits"][1].get<float>(), "temporal all REAL");
  // The recurrence really carries state: order matters, unlike the reference head.
  auto fwd = ptrs(0, 4);
  std::vector<const Feature*> rev(fwd.rbegin(), fwd.rend());
  auto r = model_->classify_windows({rev}, HeadMode::Temporal);
  EXPECT_GT(std::fabs(r[0].logits[0] - w[0].logits[0]), 1e-3f);
}

TEST_F(Parity, TemporalBatchesWindowsOfDifferentLengths) {
  auto both = model_->classify_windows({ptrs(0, 4), ptrs(1, 3), ptrs(0, 4)}, HeadMode::Temporal);
  auto alone = model_->classify_windows({ptrs(1, 3)}, HeadMode::Temporal);
  EXPECT_NEAR(both[1].logits[0], alone[0].logits[0], 1e-4f);
  EXPECT_NEAR(both[0].logits[0], both[2].logits[0], 1e-5f);
}

TEST_F(Parity, ActivationMapMatchesReferenceCam) {
  cv::Mat cam = model_->activation_map(crops_[0], kClassFake);
  ASSERT_EQ(cam.type(), CV_8UC1);
  ASSERT_EQ(cam.size(), cv::Size(112, 112));
  auto ref = exp_["cam_0_fake_4x4"].get<std::vector<float>>();
  // The hottest of the 16 cells is where the map is brightest.
  const int hot = int(std::max_element(ref.begin(), ref.end()) - ref.begin());
  cv::Point max_loc;
  cv::minMaxLoc(cam, nullptr, nullptr, nullptr, &max_loc);
  EXPECT_EQ(max_loc.y / 28 * 4 + max_loc.x / 28, hot);
}

TEST(ModelInput, RejectsBadCrops) {
  auto m = Model::load(test::ref_path("reference.pt"));
  EXPECT_THROW(m->features({cv::Mat()}), std::invalid_argument);
  EXPECT_THROW(m->features({cv::Mat(112, 112, CV_8UC1, cv::Scalar(0))}), std::invalid_argument);
  Feature short_feature(10);
  EXPECT_THROW(m->classify_frames({&short_feature}), std::invalid_argument);
  EXPECT_THROW(m->classify_windows({{}}, HeadMode::Temporal), std::invalid_argument);
}

TEST(ModelInput, NonSquareCropsAreResized) {
  auto m = Model::load(test::ref_path("reference.pt"));
  auto crops = test::crops();
  cv::Mat big;
  cv::resize(crops[0], big, cv::Size(224, 224), 0, 0, cv::INTER_NEAREST);  // nearest x2 then bilinear /2 ~ identity
  auto f = m->features({big, crops[0]});
  double diff = 0;
  for (int k = 0; k < kFeatureDim; ++k) diff += std::fabs(f[0][size_t(k)] - f[1][size_t(k)]);
  EXPECT_LT(diff / kFeatureDim, 0.05);
}

// The device-generic path (plain folded conv weights through torch::conv2d,
// pinned batches, chunked forwards) is what runs on CUDA. Here it runs on the
// CPU (ModelOptions::generic_path) and must match PyTorch and the prepacked
// CPU path as closely as the prepacked path matches PyTorch.
namespace {

ModelOptions generic(int batch = 0, const std::string& precision = "fp32") {
  ModelOptions o;
  o.generic_path = true;
  o.batch_size = batch;
  o.precision = precision;
  return o;
}

// One generic-path model for the tests that need no other batch size
// (loading reference.pt takes seconds on two cores).
std::shared_ptr<const Model> generic_model() {
  static const auto m = Model::load(test::ref_path("reference.pt"), generic());
  return m;
}

double max_rel_diff(const std::vector<Feature>& a, const std::vector<Feature>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t k = 0; k < a[i].size(); ++k)
      m = std::max(m, double(std::fabs(a[i][k] - b[i][k])) / std::max(1.f, std::fabs(b[i][k])));
  return m;
}

std::vector<const Feature*> all_of(const std::vector<Feature>& f) {
  std::vector<const Feature*> v;
  for (const auto& x : f) v.push_back(&x);
  return v;
}

}  // namespace

TEST_F(Parity, GenericPathFeaturesMatchPyTorchAndThePrepackedPath) {
  auto g = generic_model();
  EXPECT_EQ(g->device(), "cpu");
  EXPECT_EQ(g->batch_size(), 0);  // auto on CPU: one forward for all crops
  auto f = g->features(crops_);
  ASSERT_EQ(f.size(), feats_.size());
  auto ref = test::features();
  std::vector<Feature> ref_f(ref.begin(), ref.end());
  EXPECT_LT(max_rel_diff(f, ref_f), 1e-4);
  EXPECT_LT(max_rel_diff(f, feats_), 1e-4);
}

TEST_F(Parity, GenericPathProbabilitiesAndCamMatchPyTorch) {
  auto g = generic_model();
  auto preds = g->classify_crops(crops_);
  auto probs = exp_["per_frame_prob_fake"];
  ASSERT_EQ(preds.size(), probs.size());
  for (size_t i = 0; i < preds.size(); ++i) {
    EXPECT_NEAR(preds[i].prob_fake, probs[i].get<float>(), kTol);
    expect_close(preds[i].logits[0], exp_["per_frame_logits"][i][0].get<float>(), "generic FAKE logit");
  }
  auto ref = exp_["cam_0_fake_4x4"].get<std::vector<float>>();
  const int hot = int(std::max_element(ref.begin(), ref.end()) - ref.begin());
  cv::Point max_loc;
  cv::minMaxLoc(g->activation_map(crops_[0], kClassFake), nullptr, nullptr, nullptr, &max_loc);
  EXPECT_EQ(max_loc.y / 28 * 4 + max_loc.x / 28, hot);
}

TEST_F(Parity, ChunkedBatchesGiveTheSameFeatures) {
  // 6 crops in forwards of 4 and 2 (generic) and of 5 and 1 (prepacked).
  auto g = Model::load(test::ref_path("reference.pt"), generic(4));
  EXPECT_EQ(g->batch_size(), 4);
  EXPECT_LT(max_rel_diff(g->features(crops_), feats_), 1e-4);
  ModelOptions o;
  o.batch_size = 5;
  auto p = Model::load(test::ref_path("reference.pt"), o);
  EXPECT_LT(max_rel_diff(p->features(crops_), feats_), 1e-5);
}

TEST_F(Parity, ClassifyCropsIsFeaturesThenReferenceHead) {
  std::vector<Feature> f;
  auto preds = model_->classify_crops(crops_, &f);
  auto two_step = model_->classify_frames(ptrs(0, feats_.size()));
  ASSERT_EQ(preds.size(), two_step.size());
  EXPECT_LT(max_rel_diff(f, feats_), 1e-6);
  for (size_t i = 0; i < preds.size(); ++i) EXPECT_NEAR(preds[i].prob_fake, two_step[i].prob_fake, 1e-6f);
  EXPECT_TRUE(model_->classify_crops({}, &f).empty());
  EXPECT_TRUE(f.empty());
  EXPECT_THROW(model_->classify_crops({cv::Mat()}), std::invalid_argument);
}

TEST_F(Parity, GenericTemporalHeadMatchesPyTorch) {
  auto g = generic_model();
  auto gf = g->features(crops_);
  auto w = g->classify_windows({all_of(gf)}, HeadMode::Temporal);
  expect_close(w[0].logits[0], exp_["temporal_all_logits"][0].get<float>(), "generic temporal FAKE");
  expect_close(w[0].logits[1], exp_["temporal_all_logits"][1].get<float>(), "generic temporal REAL");
}

TEST_F(Parity, GenericBf16StaysNearFp32) {
  // The arithmetic CUDA's precision=bf16 uses, on a CPU with AVX512_BF16.
  std::shared_ptr<const Model> b;
  try {
    b = Model::load(test::ref_path("reference.pt"), generic(0, "bf16"));
  } catch (const std::runtime_error& e) {
    GTEST_SKIP() << "no bf16 here: " << e.what();
  }
  EXPECT_EQ(b->precision(), "bf16");
  auto f = b->features(crops_);
  const double d = max_rel_diff(f, feats_);
  EXPECT_GT(d, 1e-6);  // really computed in bf16, not silently fp32
  EXPECT_LT(d, 0.1);
  auto p = b->classify_crops(crops_);
  auto want = exp_["per_frame_prob_fake"];
  for (size_t i = 0; i < p.size(); ++i) EXPECT_NEAR(p[i].prob_fake, want[i].get<float>(), 0.1f);
}

TEST_F(Parity, FusedCudnnExperimentIsCudaOnly) {
  // DFD_CUDNN_FUSED=1 (bench/gpu's experiment) must not reach the CPU, where
  // cuDNN's fused convolutions do not exist.
  setenv("DFD_CUDNN_FUSED", "1", 1);
  auto g = Model::load(test::ref_path("reference.pt"), generic(2));
  unsetenv("DFD_CUDNN_FUSED");
  EXPECT_LT(max_rel_diff(g->features(crops_), feats_), 1e-4);
}

TEST(ModelDevice, CudaOnCpuOnlyLibTorchIsOneClearError) {
  if (std::getenv("DFD_EXPECT_CUDA")) GTEST_SKIP() << "DFD_EXPECT_CUDA set: this LibTorch has CUDA";
  for (const char* dev : {"cuda", "cuda:0", "cuda:1"}) {
    ModelOptions o;
    o.device = dev;
    try {
      Model::load(test::ref_path("reference.pt"), o);
      ADD_FAILURE() << dev << " loaded on a CPU-only LibTorch";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("no CUDA device: this LibTorch is CPU-only"), std::string::npos) << e.what();
    }
  }
}

TEST(ModelDevice, BadOptionsAreRejectedByName) {
  const auto path = test::ref_path("reference.pt");
  for (const char* dev : {"gpu", "CPU", "cuda:", "cuda:x", "cuda:-1", "cuda:0:1", "cuda:12345", ""}) {
    ModelOptions o;
    o.device = dev;
    EXPECT_THROW(Model::untrained(1, o), std::invalid_argument) << "device '" << dev << "'";
  }
  ModelOptions o;
  o.precision = "fp8";
  EXPECT_THROW(Model::untrained(1, o), std::invalid_argument);
  o.precision = "fp16";  // CUDA only
  try {
    Model::untrained(1, o);
    ADD_FAILURE() << "fp16 accepted on a CPU";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("needs a CUDA device"), std::string::npos) << e.what();
  }
  o = ModelOptions{};
  o.batch_size = -1;
  EXPECT_THROW(Model::untrained(1, o), std::invalid_argument);
  EXPECT_THROW(Model::load(path, o), std::invalid_argument);
}

// On the CPU the network runs on oneDNN without LibTorch (model/onednn_resnext.h:
// ReLUs and residual adds fused, the head on sgemm); backend=libtorch keeps
// LibTorch's mkldnn-tensor path. Both must match PyTorch, and each other, as
// closely, in every head.
TEST_F(Parity, LibTorchEngineMatchesTheOneDnnEngine) {
  EXPECT_EQ(model_->engine(), "onednn-fused");
  EXPECT_EQ(generic_model()->engine(), "libtorch");
  ModelOptions o;
  o.backend = "libtorch";
  auto aten = Model::load(test::ref_path("reference.pt"), o);
  EXPECT_EQ(aten->engine(), "libtorch-mkldnn");
  auto f = aten->features(crops_);
  EXPECT_LT(max_rel_diff(f, feats_), 1e-4);
  EXPECT_LT(max_rel_diff(f, test::features()), 1e-4);
  std::vector<const Feature*> window;
  for (const auto& x : feats_) window.push_back(&x);
  for (HeadMode mode : {HeadMode::Reference, HeadMode::Temporal}) {
    const auto a = aten->classify_windows({window}, mode)[0], b = model_->classify_windows({window}, mode)[0];
    EXPECT_NEAR(a.logits[0], b.logits[0], 1e-4 * std::max(1.f, std::abs(a.logits[0])));
    EXPECT_NEAR(a.logits[1], b.logits[1], 1e-4 * std::max(1.f, std::abs(a.logits[1])));
    EXPECT_NEAR(a.prob_fake, b.prob_fake, 1e-5);
  }
  const cv::Mat cam_a = aten->activation_map(crops_[0]), cam_b = model_->activation_map(crops_[0]);
  EXPECT_LE(cv::norm(cam_a, cam_b, cv::NORM_INF), 1) << "activation maps (0..255) differ";
  EXPECT_THROW({ o.backend = "onednn"; o.device = "cuda"; Model::untrained(1, o); }, std::invalid_argument);
}

TEST_F(Parity, EveryBatchSizeGivesTheSameFeatures) {
  // One oneDNN plan per batch size (more than the 16 it keeps, so the cache
  // is also emptied and rebuilt): crop 2's features wherever it sits.
  for (size_t n = 1; n <= 18; ++n) {
    std::vector<cv::Mat> batch;
    for (size_t i = 0; i < n; ++i) batch.push_back(crops_[(i + 2) % crops_.size()]);
    auto f = model_->features(batch);
    ASSERT_EQ(f.size(), n);
    EXPECT_LT(max_rel_diff({f[0]}, {feats_[2]}), 1e-5) << "batch of " << n;
    EXPECT_LT(max_rel_diff({f[n - 1]}, {feats_[(n + 1) % crops_.size()]}), 1e-5) << "batch of " << n;
  }
}

TEST_F(Parity, OneDnnBf16StaysNearFp32) {
  ModelOptions o;
  o.precision = "bf16";
  std::shared_ptr<const Model> b;
  try {
    b = Model::load(test::ref_path("reference.pt"), o);
  } catch (const std::runtime_error& e) {
    GTEST_SKIP() << "no bf16 here: " << e.what();
  }
  EXPECT_EQ(b->engine(), "onednn-fused");
  auto f = b->features(crops_);
  const double d = max_rel_diff(f, feats_);
  EXPECT_GT(d, 1e-6);  // really computed in bf16
  EXPECT_LT(d, 0.1);
  auto p = b->classify_crops(crops_);
  auto want = exp_["per_frame_prob_fake"];
  for (size_t i = 0; i < p.size(); ++i) EXPECT_NEAR(p[i].prob_fake, want[i].get<float>(), 0.1f);
}

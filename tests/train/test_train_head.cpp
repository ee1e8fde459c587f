// The trainable head: gradients, parity of the exported model with
// Model::classify_windows, frozen parts, resumable state, fine-tuning.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <random>

#include "model/architecture.h"
#include "faces/crop.h"
#include "model/model.h"
#include "train/train_head.h"

using namespace dfd;
using namespace dfd::train;
namespace fs = std::filesystem;

namespace {

const StateDict& init_sd() {
  static const StateDict sd = untrained_state_dict(11);
  return sd;
}

// Post-ReLU-like features: non-negative, with a class-dependent pattern.
std::vector<Feature> make_features(int n, int cls, uint64_t seed) {
  std::mt19937 rng{uint32_t(seed)};
  std::uniform_real_distribution<float> u(0.f, 0.1f);
  std::vector<Feature> out(static_cast<size_t>(n), Feature(kFeatureDim));
  for (auto& f : out)
    for (int k = 0; k < kFeatureDim; ++k) f[size_t(k)] = u(rng) + ((k % 7 == 0) == (cls == kClassFake) ? 0.08f : 0.f);
  return out;
}

struct Batch {
  std::vector<Feature> store;
  std::vector<FeatureWindowRef> windows;
  std::vector<int> labels;
};

Batch make_batch(int per_class, int T, uint64_t seed) {
  Batch b;
  b.store.reserve(size_t(2 * per_class * T));
  for (int cls : {kClassFake, kClassReal}) {
    auto f = make_features(per_class * T, cls, seed + uint64_t(cls));
    b.store.insert(b.store.end(), f.begin(), f.end());
  }
  for (int w = 0; w < 2 * per_class; ++w) {
    FeatureWindowRef r;
    for (int t = 0; t < T; ++t) r.push_back(&b.store[size_t(w * T + t)]);
    b.windows.push_back(r);
    b.labels.push_back(w < per_class ? kClassFake : kClassReal);
  }
  return b;
}

const TensorData& key(const StateDict& sd, const std::string& k) { return sd.at(k); }

double max_diff(const TensorData& a, const TensorData& b) {
  const float* x = reinterpret_cast<const float*>(a.bytes.data());
  const float* y = reinterpret_cast<const float*>(b.bytes.data());
  double d = 0;
  for (int64_t i = 0; i < a.numel(); ++i) d = std::max(d, double(std::abs(x[i] - y[i])));
  return d;
}

double parity(const Trainer& tr, HeadMode mode, const std::vector<FeatureWindowRef>& windows) {
  StateDict sd = init_sd();
  tr.export_into(sd);
  ModelCard card;
  card.head = mode;
  auto model = Model::from_state_dict(sd, card);
  auto a = tr.predict(windows);
  auto b = model->classify_windows(windows, mode);
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d = std::max(d, double(std::abs(a[i].prob_fake - b[i].prob_fake)));
    d = std::max(d, double(std::abs(a[i].logits[0] - b[i].logits[0])));
  }
  return d;
}

}  // namespace

TEST(TrainHead, LstmBackwardMatchesAutograd) {
  for (uint64_t s = 0; s < 3; ++s) EXPECT_LT(lstm_gradient_check(s), 1e-10) << "seed " << s;
}

TEST(TrainHead, TemporalTrainsAndExportsWhatTheModelComputes) {
  TrainerConfig c;
  c.lr = 1e-4;
  c.dropout = 0;
  Trainer tr(init_sd(), c);
  EXPECT_EQ(tr.trainable_parameters(), 2 * 8192 * 2048 + 2 * 2048 + 2);
  auto b = make_batch(4, 6, 1);
  const float first = tr.step(b.windows, b.labels, {1.f, 1.f});
  float last = first;
  for (int i = 0; i < 12; ++i) last = tr.step(b.windows, b.labels, {1.f, 1.f});
  EXPECT_LT(last, first * 0.8f) << "loss " << first << " -> " << last;
  // windows of several lengths, as the element's last windows may be
  auto v = make_batch(2, 9, 50);
  std::vector<FeatureWindowRef> mixed = v.windows;
  mixed.push_back(FeatureWindowRef(v.windows[0].begin(), v.windows[0].begin() + 3));
  mixed.push_back(FeatureWindowRef(v.windows[3].begin(), v.windows[3].begin() + 1));
  EXPECT_LT(parity(tr, HeadMode::Temporal, mixed), 2e-5);
  // the exported card-less state dict keeps the backbone
  StateDict sd = init_sd();
  tr.export_into(sd);
  EXPECT_EQ(max_diff(key(sd, "model.0.weight"), key(init_sd(), "model.0.weight")), 0.0);
  EXPECT_GT(max_diff(key(sd, "lstm.weight_hh_l0"), key(init_sd(), "lstm.weight_hh_l0")), 0.0);
}

TEST(TrainHead, ReferenceHeadTrainsOnlyWhatItUses) {
  TrainerConfig c;
  c.head = HeadMode::Reference;
  c.lr = 1e-4;
  c.dropout = 0;
  Trainer tr(init_sd(), c);
  EXPECT_EQ(tr.trainable_parameters(), 3 * 2048 * 2048 + 2 * 2048 + 2);
  auto b = make_batch(4, 5, 2);
  const float first = tr.step(b.windows, b.labels, {1.f, 1.f});
  float last = first;
  for (int i = 0; i < 10; ++i) last = tr.step(b.windows, b.labels, {1.f, 1.f});
  EXPECT_LT(last, first * 0.8f);
  EXPECT_LT(parity(tr, HeadMode::Reference, make_batch(3, 4, 60).windows), 2e-5);
  StateDict sd = init_sd();
  tr.export_into(sd);
  EXPECT_EQ(max_diff(key(sd, "lstm.weight_hh_l0"), key(init_sd(), "lstm.weight_hh_l0")), 0.0);
  // forget-gate rows (the second quarter of weight_ih) are carried unchanged
  const auto& a = key(sd, "lstm.weight_ih_l0");
  const auto& o = key(init_sd(), "lstm.weight_ih_l0");
  const size_t q = size_t(2048) * 2048 * sizeof(float);
  EXPECT_EQ(std::memcmp(a.bytes.data() + q, o.bytes.data() + q, q), 0);
  EXPECT_NE(std::memcmp(a.bytes.data(), o.bytes.data(), q), 0);
}

TEST(TrainHead, FrozenLstmTrainsTheLinearLayerOnly) {
  TrainerConfig c;
  c.freeze_lstm = true;
  c.lr = 1e-3;
  Trainer tr(init_sd(), c);
  EXPECT_EQ(tr.trainable_parameters(), 2 * 2048 + 2);
  auto b = make_batch(2, 3, 3);
  for (int i = 0; i < 3; ++i) tr.step(b.windows, b.labels, {1.f, 1.f});
  StateDict sd = init_sd();
  tr.export_into(sd);
  EXPECT_EQ(max_diff(key(sd, "lstm.weight_ih_l0"), key(init_sd(), "lstm.weight_ih_l0")), 0.0);
  EXPECT_EQ(max_diff(key(sd, "lstm.weight_hh_l0"), key(init_sd(), "lstm.weight_hh_l0")), 0.0);
  EXPECT_GT(max_diff(key(sd, "linear1.weight"), key(init_sd(), "linear1.weight")), 0.0);
}

TEST(TrainHead, CheckpointRestoresWeightsAndOptimiser) {
  const std::string path = (fs::temp_directory_path() / ("dfd-train-head-" + std::to_string(::getpid()) + ".pt")).string();
  TrainerConfig c;
  c.lr = 1e-4;
  c.dropout = 0.4;
  auto b = make_batch(2, 4, 4);
  Trainer a(init_sd(), c);
  a.reseed(1);
  for (int i = 0; i < 2; ++i) a.step(b.windows, b.labels, {1.f, 2.f});
  a.save(path);
  Trainer r(init_sd(), c);
  r.load(path);
  auto pa = a.predict(b.windows), pr = r.predict(b.windows);
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_EQ(pa[i].prob_fake, pr[i].prob_fake);
  // the same next step (dropout reseeded alike, Adam moments restored)
  a.reseed(2);
  const float la = a.step(b.windows, b.labels, {1.f, 2.f});
  r.reseed(2);
  const float lr = r.step(b.windows, b.labels, {1.f, 2.f});
  EXPECT_FLOAT_EQ(la, lr);
  pa = a.predict(b.windows);
  pr = r.predict(b.windows);
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_NEAR(pa[i].prob_fake, pr[i].prob_fake, 1e-6);
  // another head refuses the file
  TrainerConfig rc = c;
  rc.head = HeadMode::Reference;
  Trainer other(init_sd(), rc);
  try {
    other.load(path);
    ADD_FAILURE() << "loaded a temporal checkpoint into a reference trainer";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("temporal head"), std::string::npos) << e.what();
  }
  EXPECT_THROW(other.load(path + ".missing"), std::runtime_error);
  fs::remove(path);
}

TEST(TrainHead, LoadWeightsIsTheInverseOfExport) {
  for (HeadMode mode : {HeadMode::Temporal, HeadMode::Reference}) {
    TrainerConfig c;
    c.head = mode;
    c.lr = 1e-3;
    c.dropout = 0;
    c.clip_grad_norm = 0.5;
    auto b = make_batch(2, 3, 8);
    Trainer a(init_sd(), c);
    for (int i = 0; i < 2; ++i) a.step(b.windows, b.labels, {1.f, 1.f});
    StateDict trained;  // the trained tensors alone
    a.export_into(trained, /*validate=*/false);
    EXPECT_EQ(trained.size(), 4u);
    Trainer r(init_sd(), c);
    r.load_weights(trained);
    auto pa = a.predict(b.windows), pr = r.predict(b.windows);
    for (size_t i = 0; i < pa.size(); ++i) EXPECT_EQ(pa[i].prob_fake, pr[i].prob_fake);
    StateDict sa = init_sd(), sr = init_sd();
    a.export_into(sa);
    r.export_into(sr);
    EXPECT_EQ(max_diff(key(sa, "lstm.weight_ih_l0"), key(sr, "lstm.weight_ih_l0")), 0.0);
    trained.erase("linear1.bias");
    EXPECT_THROW(r.load_weights(trained), std::runtime_error);
  }
}

TEST(TrainHead, RejectsBadInput) {
  TrainerConfig c;
  c.freeze_lstm = true;
  Trainer tr(init_sd(), c);
  auto b = make_batch(1, 3, 5);
  EXPECT_THROW(tr.step(b.windows, {0}, {1.f, 1.f}), std::invalid_argument);       // label count
  EXPECT_THROW(tr.step(b.windows, {0, 2}, {1.f, 1.f}), std::invalid_argument);    // label value
  auto uneven = b.windows;
  uneven[1].pop_back();
  EXPECT_THROW(tr.step(uneven, {0, 1}, {1.f, 1.f}), std::invalid_argument);
  EXPECT_THROW(tr.step_crops({}, {}, {1.f, 1.f}), std::logic_error);
  StateDict bad = init_sd();
  bad.erase("lstm.weight_hh_l0");
  EXPECT_THROW(Trainer(bad, c), std::runtime_error);
  c.lr = 0;
  EXPECT_THROW(Trainer(init_sd(), c), std::invalid_argument);
  c.lr = 1e-3;
  c.clip_grad_norm = -1;
  EXPECT_THROW(Trainer(init_sd(), c), std::invalid_argument);
}

TEST(TrainHead, BackboneFineTuningMatchesTheModelAndMoves) {
  const char* dir = std::getenv("DFD_TEST_DATA");
  cv::Mat img = cv::imread(std::string(dir ? dir : "tests/data") + "/astronaut.png");
  ASSERT_FALSE(img.empty());
  std::vector<cv::Mat> crops;
  for (int i = 0; i < 4; ++i) crops.push_back(crop_face(img, cv::Rect(165 + 5 * i, 60 + 3 * i, 110, 120)));
  TrainerConfig c;
  c.finetune_backbone = true;
  c.lr = 1e-4;
  c.dropout = 0;
  Trainer tr(init_sd(), c);
  EXPECT_GT(tr.trainable_parameters(), 56000000);
  // before any step: the model's (batch-norm-folded) features
  auto model = Model::from_state_dict(init_sd(), ModelCard{});
  auto fm = model->features(crops);
  auto ft = tr.features(crops);
  double worst = 0, scale = 0;
  for (size_t i = 0; i < fm.size(); ++i)
    for (int k = 0; k < kFeatureDim; ++k) {
      worst = std::max(worst, double(std::abs(fm[i][size_t(k)] - ft[i][size_t(k)])));
      scale = std::max(scale, double(std::abs(fm[i][size_t(k)])));
    }
  EXPECT_LT(worst, 1e-3 * std::max(1.0, scale));
  std::vector<CropWindowRef> w{{&crops[0], &crops[1]}, {&crops[2], &crops[3]}};
  const float loss = tr.step_crops(w, {kClassFake, kClassReal}, {1.f, 1.f});
  EXPECT_TRUE(std::isfinite(loss));
  StateDict sd = init_sd();
  tr.export_into(sd);  // validates all 322 keys
  EXPECT_EQ(sd.size(), 322u);
  EXPECT_GT(max_diff(key(sd, "model.0.weight"), key(init_sd(), "model.0.weight")), 0.0);
  EXPECT_EQ(max_diff(key(sd, "model.1.running_mean"), key(init_sd(), "model.1.running_mean")), 0.0)
      << "batch-norm statistics stay (eval mode)";
  EXPECT_THROW(tr.step({}, {}, {1.f, 1.f}), std::logic_error);
}

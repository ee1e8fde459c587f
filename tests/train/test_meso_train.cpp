// The trainable MesoNet (src/train/mesonet_module.*): its eval outputs are the
// inference path's (model/mesonet.cpp, loaded from the exported file) to
// 1e-5, it starts from the shipped Keras weights exactly, it learns a
// separable synthetic set, and it refuses bad inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>

#include "analysis/feature.h"
#include "model/family.h"
#include "model/mesonet_layout.h"
#include "train/mesonet_module.h"
#include "meso_synthetic.h"

namespace fs = std::filesystem;
using namespace dfd;
using namespace dfd::train;

namespace {

// As the tools do: MesoNet's activations reused, not page-faulted in on every op.
const bool kReuse = (keep_freed_memory_for_reuse(), true);

std::string env(const char* k) {
  const char* v = std::getenv(k);
  return v ? v : "";
}

cv::Mat portrait() {
  cv::Mat p = cv::imread(env("DFD_TEST_DATA") + "/astronaut.png", cv::IMREAD_COLOR);
  EXPECT_FALSE(p.empty()) << "DFD_TEST_DATA/astronaut.png";
  return p;
}

std::vector<const cv::Mat*> ptrs(const std::vector<cv::Mat>& v, size_t from = 0, size_t n = SIZE_MAX) {
  std::vector<const cv::Mat*> p;
  for (size_t i = from; i < v.size() && i < from + n; ++i) p.push_back(&v[i]);
  return p;
}

double mean_bce(const std::vector<float>& logits, const std::vector<int>& labels) {
  double s = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const double p_real = 1.0 / (1.0 + std::exp(-double(logits[i])));
    const double p = labels[i] == kClassReal ? p_real : 1 - p_real;
    s -= std::log(std::max(p, 1e-7));
  }
  return s / double(logits.size());
}

MesoTrainerConfig quick_config() {
  MesoTrainerConfig c;
  c.threads = 2;
  c.seed = 1;
  return c;
}

class MesoParity : public ::testing::TestWithParam<MesoVariant> {};

// Train a few steps, export, load through the inference path: the same logits.
TEST_P(MesoParity, ExportedModelMatchesTrainerEvalOutputs) {
  const MesoVariant v = GetParam();
  std::vector<cv::Mat> crops;
  std::vector<int> labels;
  dfd_test::meso_synthetic_set(portrait(), 4, 10, crops, labels);
  MesoTrainer t(v, random_mesonet_state_dict(v, 3), quick_config());
  for (int s = 0; s < 3; ++s) t.step(ptrs(crops), labels, {1.f, 1.f});
  const auto sd = t.export_state_dict();
  // The running statistics moved away from their start: the export carries them.
  const auto& rv = sd.at("bn1.running_var");
  EXPECT_NE(reinterpret_cast<const float*>(rv.bytes.data())[0], 1.f);

  const auto want = t.logits(ptrs(crops));
  ModelCard card = mesonet_card(v, weights_checksum(sd), "test");
  card.trained = true;
  const fs::path file = fs::temp_directory_path() / ("dfd-meso-parity-" + std::to_string(::getpid()) + ".safetensors");
  write_safetensors(file.string(), sd, card);
  auto det = load_detector(file.string());
  fs::remove(file);
  EXPECT_EQ(det->info().architecture, architecture_name(v));
  const auto got = det->features(crops);
  ASSERT_EQ(got.size(), want.size());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, double(std::abs(got[i][0] - want[i])));
  EXPECT_LE(worst, 1e-5);
  // Not a trivially constant output: the crops get different logits.
  EXPECT_GT(std::abs(want[0] - want[1]) + std::abs(want[2] - want[3]), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Variants, MesoParity, ::testing::Values(MesoVariant::Meso4, MesoVariant::MesoInception4));

// Starting from the shipped weights, the trainer's eval output is the shipped
// detector's (the fine-tuning start is the model users run).
TEST(MesoTrainer, StartsFromTheShippedKerasWeights) {
  const std::string h5 = env("DFD_MESONET_DIR") + "/Meso4_DF.h5";
  if (!fs::exists(h5)) GTEST_SKIP() << "no " << h5;
  ResolvedCheckpoint r = resolve_checkpoint(read_checkpoint(h5), h5);
  ASSERT_EQ(r.card.architecture, "meso4");
  MesoTrainer t(MesoVariant::Meso4, r.tensors, quick_config());
  auto det = load_detector(h5);
  std::vector<cv::Mat> crops;
  std::vector<int> labels;
  dfd_test::meso_synthetic_set(portrait(), 2, 40, crops, labels);
  const auto want = det->features(crops);
  const auto got = t.logits(ptrs(crops));
  for (size_t i = 0; i < crops.size(); ++i) EXPECT_NEAR(got[i], want[i][0], 1e-5) << i;
}

// The loss on a separable set falls (40 steps of 8 crops): held-out log loss well below its start
// and below chance, training loss of the last steps below the first ones.
TEST(MesoTrainer, LossDecreasesOnASeparableSyntheticSet) {
  const cv::Mat p = portrait();
  std::vector<cv::Mat> train, test;
  std::vector<int> ytrain, ytest;
  dfd_test::meso_synthetic_set(p, 16, 100, train, ytrain);
  dfd_test::meso_synthetic_set(p, 8, 900, test, ytest);
  MesoTrainer t(MesoVariant::Meso4, random_mesonet_state_dict(MesoVariant::Meso4, 7), quick_config());
  const double before = mean_bce(t.logits(ptrs(test)), ytest);
  std::vector<float> losses;
  const size_t batch = 8;
  for (int epoch = 0; epoch < 10; ++epoch)
    for (size_t b = 0; b < train.size(); b += batch) {
      std::vector<int> y(ytrain.begin() + long(b), ytrain.begin() + long(std::min(train.size(), b + batch)));
      losses.push_back(t.step(ptrs(train, b, batch), y, {1.f, 1.f}));
    }
  const double after = mean_bce(t.logits(ptrs(test)), ytest);
  const auto avg = [&](size_t from, size_t n) {
    double s = 0;
    for (size_t i = from; i < from + n; ++i) s += losses[i];
    return s / double(n);
  };
  std::cout << "steps " << losses.size() << ": train loss " << avg(0, 4) << " -> " << avg(losses.size() - 4, 4)
            << ", held-out log loss " << before << " -> " << after << "\n";
  EXPECT_LT(avg(losses.size() - 4, 4), avg(0, 4));
  EXPECT_LT(after, 0.5 * before);
  EXPECT_LT(after, 0.5);  // chance is 0.693
  size_t right = 0;
  const auto z = t.logits(ptrs(test));
  for (size_t i = 0; i < z.size(); ++i) right += (z[i] > 0) == (ytest[i] == kClassReal);
  EXPECT_GE(right, z.size() - 2);
}

TEST(MesoTrainer, RefusesWeightsOfTheOtherVariant) {
  EXPECT_THROW(MesoTrainer(MesoVariant::Meso4, random_mesonet_state_dict(MesoVariant::MesoInception4, 1), quick_config()),
               std::runtime_error);
  StateDict sd = random_mesonet_state_dict(MesoVariant::Meso4, 1);
  sd["fc1.weight"].shape = {16, 512};
  EXPECT_THROW(MesoTrainer(MesoVariant::Meso4, sd, quick_config()), std::runtime_error);
}

TEST(MesoTrainer, RefusesBadBatches) {
  MesoTrainer t(MesoVariant::Meso4, random_mesonet_state_dict(MesoVariant::Meso4, 1), quick_config());
  cv::Mat c(256, 256, CV_8UC3, cv::Scalar(1, 2, 3));
  EXPECT_THROW(t.step({&c, &c}, {1}, {1.f, 1.f}), std::invalid_argument);
  EXPECT_THROW(t.step({&c}, {2}, {1.f, 1.f}), std::invalid_argument);
  EXPECT_THROW(t.step({}, {}, {1.f, 1.f}), std::invalid_argument);
  cv::Mat gray(256, 256, CV_8UC1, cv::Scalar(0));
  EXPECT_THROW(t.step({&gray}, {1}, {1.f, 1.f}), std::invalid_argument);
}

TEST(MesoTrainer, RandomWeightsFitTheLayoutAndDependOnTheSeed) {
  for (auto v : {MesoVariant::Meso4, MesoVariant::MesoInception4}) {
    const auto a = random_mesonet_state_dict(v, 1), b = random_mesonet_state_dict(v, 2);
    EXPECT_NO_THROW(validate_mesonet_state_dict(a, v));
    EXPECT_NE(weights_checksum(a), weights_checksum(b));
    EXPECT_EQ(weights_checksum(a), weights_checksum(random_mesonet_state_dict(v, 1)));
  }
}

}  // namespace

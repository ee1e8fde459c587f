// MesoNet through the model family: parity with an independent PyTorch
// rebuild of the authors' Keras graph (tests/python/make_mesonet_reference.py),
// the authors' four sample faces as models/README states, import to our
// format, the family interface for both architectures.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "mesonet_paths.h"
#include "model/family.h"
#include "model/mesonet_layout.h"
#include "reference_fixtures.h"

using namespace dfd;
using namespace mesonet_test;

namespace {


nlohmann::json expected() {
  std::ifstream f(fixture("mesonet_expected.json"));
  return nlohmann::json::parse(f);
}

// The 256x256 BGR crops the PyTorch rebuild saw.
std::vector<cv::Mat> crops() {
  std::ifstream f(fixture("mesonet_crops.u8"), std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), {});
  const size_t one = 256 * 256 * 3;
  std::vector<cv::Mat> out;
  for (size_t off = 0; off + one <= bytes.size(); off += one) {
    cv::Mat m(256, 256, CV_8UC3);
    std::memcpy(m.data, bytes.data() + off, one);
    out.push_back(m);
  }
  return out;
}

const char* kFiles[] = {"Meso4_DF.h5", "Meso4_F2F.h5", "MesoInception_DF.h5", "MesoInception_F2F.h5"};

}  // namespace

TEST(MesoNetParity, FixturesAreWhatTheTestsAssume) {
  auto e = expected();
  ASSERT_EQ(crops().size(), e["n"].get<size_t>());
  ASSERT_GE(crops().size(), 8u);
  // Outputs spread over (0, 1) for at least one model: parity is tested where the sigmoid is sensitive.
  auto p = e["models"]["Meso4_DF.h5"]["p_real"].get<std::vector<double>>();
  EXPECT_LT(*std::min_element(p.begin(), p.end()), 0.1);
  EXPECT_GT(*std::max_element(p.begin(), p.end()), 0.9);
  int mid = 0;
  for (double v : p) mid += v > 0.2 && v < 0.95;
  EXPECT_GE(mid, 2);
}

TEST(MesoNetParity, EveryPublishedFileMatchesThePyTorchRebuild) {
  const auto c = crops();
  const auto e = expected();
  for (const char* file : kFiles) {
    SCOPED_TRACE(file);
    auto det = load_detector(model_path(file));
    const auto logits = e["models"][file]["logit"].get<std::vector<double>>();
    const auto p_real = e["models"][file]["p_real"].get<std::vector<double>>();
    const auto feats = det->features(c);
    const auto p_fake = det->score_crops(c);
    ASSERT_EQ(feats.size(), logits.size());
    double max_logit = 0, max_p = 0;
    for (size_t i = 0; i < feats.size(); ++i) {
      ASSERT_EQ(feats[i].size(), 1u);
      max_logit = std::max(max_logit, std::fabs(feats[i][0] - logits[i]) / std::max(1.0, std::fabs(logits[i])));
      max_p = std::max(max_p, std::fabs(double(p_fake[i]) - (1.0 - p_real[i])));
    }
    EXPECT_LT(max_logit, 1e-5);
    EXPECT_LT(max_p, 1e-5);
    std::printf("[ parity   ] %s: max |logit diff| (relative) %.2e, max |P(FAKE) diff| %.2e\n", file, max_logit, max_p);
  }
}

// models/README.md (from the MesoNet authors' sample images): Meso4_DF gives
// P(real) 0.048 and 0.025 for the df* faces, 0.990 and 0.997 for the real* ones.
TEST(MesoNetFaces, Meso4DFGivesTheDocumentedProbabilities) {
  auto det = load_detector(model_path("Meso4_DF.h5"));
  const std::pair<const char*, double> want[] = {
      {"df00204.jpg", 0.048}, {"df01254.jpg", 0.025}, {"real00240.jpg", 0.990}, {"real00772.jpg", 0.997}};
  std::vector<cv::Mat> imgs;
  for (auto& [f, p] : want) {
    imgs.push_back(cv::imread(face(f), cv::IMREAD_COLOR));  // BGR, any size: the detector resizes
    ASSERT_FALSE(imgs.back().empty()) << f;
  }
  const auto p_fake = det->score_crops(imgs);
  for (size_t i = 0; i < imgs.size(); ++i) {
    std::printf("[ faces    ] %s: P(real) %.4f (README %.3f)\n", want[i].first, 1.0 - p_fake[i], want[i].second);
    EXPECT_NEAR(1.0 - p_fake[i], want[i].second, 1e-3) << want[i].first;
  }
  // The verdicts at the card's threshold.
  for (size_t i = 0; i < imgs.size(); ++i) EXPECT_EQ(p_fake[i] > det->card().threshold, i < 2) << want[i].first;
}

TEST(MesoNetFamily, InfoDescribesTheCropAndOutput) {
  auto det = load_detector(model_path("Meso4_DF.h5"));
  const auto& in = det->info();
  EXPECT_EQ(in.architecture, "meso4");
  EXPECT_EQ(in.input_size, 256);
  EXPECT_EQ(in.colour_order, ColourOrder::RGB);
  EXPECT_TRUE(in.normalisation.swap_rb);
  EXPECT_FLOAT_EQ(in.normalisation.mean[0], 0.f);
  EXPECT_FLOAT_EQ(in.normalisation.std[2], 1.f);
  EXPECT_FLOAT_EQ(in.crop_margin, 0.2f);
  EXPECT_TRUE(in.per_crop);
  EXPECT_FALSE(in.needs_window);
  EXPECT_FALSE(in.has_cam);
  EXPECT_EQ(in.feature_dim, 1);
  EXPECT_EQ(det->resnext_model(), nullptr);
  EXPECT_THROW(det->activation_map(cv::Mat(256, 256, CV_8UC3, cv::Scalar(0, 0, 0))), std::logic_error);
  EXPECT_EQ(load_detector(model_path("MesoInception_F2F.h5"))->info().architecture, "mesoinception4");
}

TEST(MesoNetFamily, PublishedFilesGetTheirCard) {
  auto det = load_detector(model_path("MesoInception_F2F.h5"));
  const ModelCard& c = det->card();
  EXPECT_EQ(c.name, "mesoinception4-f2f");
  EXPECT_EQ(c.architecture, "mesoinception4");
  EXPECT_EQ(c.input_size, 256);
  EXPECT_EQ(c.channel_order, "RGB");
  EXPECT_EQ(c.licence, "Apache-2.0");
  EXPECT_TRUE(c.trained);
  EXPECT_NE(c.provenance.find("github.com/DariusAf/MesoNet"), std::string::npos);
  EXPECT_NE(c.provenance.find("WIFS 2018"), std::string::npos);
  EXPECT_NE(c.training_data.find("Face2Face"), std::string::npos);
  EXPECT_EQ(c.class_names, (std::vector<std::string>{"FAKE", "REAL"}));
  EXPECT_FLOAT_EQ(c.threshold, 0.5f);
}

TEST(MesoNetFamily, UnknownKerasWeightsGetAnHonestCard) {
  // Same layout, one weight changed: not one of the authors' files.
  Checkpoint ck = read_checkpoint(model_path("Meso4_DF.h5"));
  reinterpret_cast<float*>(ck.tensors.at("dense_4/bias").bytes.data())[0] += 1.f;
  auto r = resolve_checkpoint(std::move(ck), "/x/mine.h5");
  EXPECT_EQ(r.card.architecture, "meso4");
  EXPECT_EQ(r.card.name, "mine.h5");
  EXPECT_EQ(r.card.licence, "");
  EXPECT_EQ(r.card.training_data, "not recorded in the file");
  EXPECT_NE(r.card.provenance.find("origin not recorded"), std::string::npos);
}

TEST(MesoNetFamily, WindowsAreTheMeanOfTheirCrops) {
  auto det = load_detector(model_path("Meso4_DF.h5"));
  const auto c = crops();
  const auto f = det->features(c);
  const auto frames = det->classify_frames({&f[0], &f[2], &f[4]});
  const auto win = det->classify_windows({{&f[0], &f[2], &f[4]}, {&f[1]}}, HeadMode::Temporal);
  ASSERT_EQ(win.size(), 2u);
  const double mean = (frames[0].prob_fake + frames[1].prob_fake + frames[2].prob_fake) / 3.0;
  EXPECT_NEAR(win[0].prob_fake, mean, 1e-6);
  EXPECT_NEAR(win[1].prob_fake, det->score_crops({c[1]})[0], 1e-6);
  // Logits [FAKE, REAL] whose softmax is the probability.
  EXPECT_NEAR(1.0 / (1.0 + std::exp(win[0].logits[1] - win[0].logits[0])), win[0].prob_fake, 1e-5);
  const auto sw = det->score_windows({{c[0], c[2], c[4]}});
  EXPECT_NEAR(sw[0], mean, 1e-6);
  EXPECT_THROW(det->classify_windows({{}}, HeadMode::Reference), std::invalid_argument);
  Feature wrong(2048, 0.f);
  EXPECT_THROW(det->classify_frames({&wrong}), std::invalid_argument);
}

TEST(MesoNetFamily, CropsOfAnySizeAreResizedBilinear) {
  auto det = load_detector(model_path("Meso4_DF.h5"));
  cv::Mat big = cv::imread(face("df00204.jpg"));
  ASSERT_EQ(big.rows, 342);
  cv::Mat small;
  cv::resize(big, small, cv::Size(256, 256), 0, 0, cv::INTER_LINEAR);
  EXPECT_FLOAT_EQ(det->score_crops({big})[0], det->score_crops({small})[0]);
  EXPECT_THROW(det->score_crops({cv::Mat()}), std::invalid_argument);
}

TEST(MesoNetImport, SafetensorsRoundTripKeepsOutputsAndCard) {
  const std::string out = ::testing::TempDir() + "/meso4_df.safetensors";
  auto r = resolve_checkpoint(read_checkpoint(model_path("Meso4_DF.h5")), model_path("Meso4_DF.h5"));
  EXPECT_EQ(r.format, "keras-h5");
  EXPECT_EQ(r.tensors.size(), 28u);
  EXPECT_EQ(r.tensors.at("fc1.weight").shape, (std::vector<int64_t>{16, 1024}));
  EXPECT_EQ(r.tensors.at("conv2.weight").shape, (std::vector<int64_t>{8, 8, 5, 5}));
  write_safetensors(out, r.tensors, r.card);
  auto a = load_detector(model_path("Meso4_DF.h5"));
  auto b = load_detector(out);
  EXPECT_EQ(b->card().architecture, "meso4");
  EXPECT_EQ(b->card().licence, "Apache-2.0");
  EXPECT_EQ(b->card().name, "meso4-df");
  EXPECT_EQ(a->checksum(), b->checksum());
  const auto c = crops();
  EXPECT_EQ(a->score_crops(c), b->score_crops(c));
  std::remove(out.c_str());
}

TEST(MesoNetImport, ACardForTheWrongArchitectureIsRefused) {
  auto r = resolve_checkpoint(read_checkpoint(model_path("Meso4_DF.h5")), "Meso4_DF.h5");
  ModelCard card = r.card;
  card.architecture = "mesoinception4";
  const std::string out = ::testing::TempDir() + "/mislabelled.safetensors";
  write_safetensors(out, r.tensors, card);
  try {
    load_detector(out);
    FAIL() << "loaded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not a mesoinception4 state_dict"), std::string::npos) << e.what();
  }
  std::remove(out.c_str());
  card = r.card;
  card.input_size = 112;
  EXPECT_THROW(ModelCard::from_json(card.to_json()), std::runtime_error);
}

TEST(MesoNetFamily, OldModelApiRefusesMesoNetWithAPointer) {
  try {
    Model::load(model_path("Meso4_DF.h5"));
    FAIL() << "loaded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("load_detector"), std::string::npos) << e.what();
  }
}

TEST(MesoNetFamily, SharedLoadsShareOneInstance) {
  auto a = load_detector_shared(model_path("Meso4_DF.h5"));
  auto b = load_detector_shared(model_path("Meso4_DF.h5"));
  EXPECT_EQ(a.get(), b.get());
  ModelOptions bf16;
  bf16.precision = "bf16";
  EXPECT_THROW(load_detector(model_path("Meso4_DF.h5"), bf16), std::invalid_argument);
}

// The same interface over the ResNeXt50+LSTM reference (tests/python/make_reference.py).
TEST(ResNeXtFamily, InfoAndScoresMatchTheReference) {
  auto det = load_detector(test::ref_path("reference.pt"));
  const auto& in = det->info();
  EXPECT_EQ(in.architecture, "resnext50_32x4d+lstm2048");
  EXPECT_EQ(in.input_size, 112);
  EXPECT_EQ(in.colour_order, ColourOrder::BGR);
  EXPECT_FALSE(in.normalisation.swap_rb);
  EXPECT_FLOAT_EQ(in.crop_margin, 0.f);
  EXPECT_TRUE(in.per_crop);
  EXPECT_FALSE(in.needs_window);
  EXPECT_TRUE(in.has_cam);
  EXPECT_EQ(in.feature_dim, 2048);
  ASSERT_NE(det->resnext_model(), nullptr);
  const auto p = det->score_crops(test::crops());
  const auto want = test::expected()["per_frame_prob_fake"].get<std::vector<float>>();
  ASSERT_EQ(p.size(), want.size());
  for (size_t i = 0; i < p.size(); ++i) EXPECT_NEAR(p[i], want[i], 1e-4);
  EXPECT_EQ(det->activation_map(test::crops()[0]).type(), CV_8UC1);
}

TEST(ResNeXtFamily, SharedDetectorSharesTheModelCache) {
  auto d = load_detector_shared(test::ref_path("reference.pt"));
  auto m = Model::load_shared(test::ref_path("reference.pt"));
  EXPECT_EQ(d->resnext_model().get(), m.get());
}

TEST(Registry, ATestFamilyCanBeRegistered) {
  struct Fake : Detector {
    DetectorInfo i;
    ModelCard c;
    std::string s = "fake";
    const DetectorInfo& info() const override { return i; }
    const ModelCard& card() const override { return c; }
    const std::string& checksum() const override { return s; }
    const std::string& source() const override { return s; }
    std::vector<Feature> features(const std::vector<cv::Mat>& crops) const override {
      return std::vector<Feature>(crops.size(), Feature{0.25f});
    }
    std::vector<Prediction> classify_frames(const std::vector<const Feature*>& f) const override {
      std::vector<Prediction> out(f.size());
      for (auto& p : out) p.prob_fake = 0.25f;
      return out;
    }
    std::vector<Prediction> classify_windows(const std::vector<std::vector<const Feature*>>& w, HeadMode) const override {
      return std::vector<Prediction>(w.size());
    }
  };
  register_detector_family("fake-for-tests", [](const StateDict&, const ModelCard& card, const ModelOptions&,
                                                const std::string&) {
    auto f = std::make_shared<Fake>();
    f->c = card;
    f->i.architecture = card.architecture;
    return std::shared_ptr<const Detector>(f);
  });
  ModelCard card;
  card.architecture = "fake-for-tests";
  auto det = detector_from_state_dict({}, card);
  EXPECT_EQ(det->info().architecture, "fake-for-tests");
  EXPECT_EQ(det->score_crops({cv::Mat(), cv::Mat()}), (std::vector<float>{0.25f, 0.25f}));
  const auto archs = detector_architectures();
  EXPECT_NE(std::find(archs.begin(), archs.end(), "meso4"), archs.end());
  card.architecture = "nobody";
  EXPECT_THROW(detector_from_state_dict({}, card), std::runtime_error);
}

// Not a check: the figures for the report (crops/s on this machine). The
// fastest of several batches, so that other work on the machine counts less;
// with glibc's defaults, then with keep_freed_memory_for_reuse().
TEST(MesoNetSpeed, CropsPerSecond) {
  const auto c = crops();
  for (const char* allocator : {"glibc defaults", "keep_freed_memory_for_reuse"}) {
    if (std::string(allocator) != "glibc defaults") keep_freed_memory_for_reuse();
    for (const char* file : {"Meso4_DF.h5", "MesoInception_DF.h5"}) {
      auto det = load_detector(model_path(file));
      for (size_t batch : {size_t(1), size_t(16)}) {
        std::vector<cv::Mat> b;
        for (size_t i = 0; i < batch; ++i) b.push_back(c[i % c.size()]);
        det->score_crops(b);  // warm up
        double best = 1e9, total = 0;
        for (int rep = 0; rep < 20 && total < 2.0; ++rep) {
          const auto t0 = std::chrono::steady_clock::now();
          det->score_crops(b);
          const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          best = std::min(best, s);
          total += s;
        }
        std::printf("[ speed    ] %s, %s, batch %zu: %.0f crops/s (best batch %.1f ms)\n", allocator, file, batch,
                    double(batch) / best, best * 1e3);
      }
    }
  }
}

// deepfake-train end to end on a synthetic dataset made here from the
// astronaut portrait (synthetic.h): a short CPU run lowers the loss, separates
// the held-out videos, exports a model that loads with Model::load, and the
// deepfakedetect element with that model separates new clips. Also: skipped
// videos are reported, --resume continues, Ctrl-C leaves a resumable
// checkpoint, --evaluate, the reference head with self-blended fakes.
//
// The backbone is untrained (random weights): what is learnt here is the
// difference the artefact makes to random features, nothing about deepfakes.
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "model/model.h"
#include "synthetic.h"
#include "train_test_util.h"

using namespace dfd_test;
using json = nlohmann::json;

namespace {

// Settings for a quick run: the untrained backbone's features are ~10x
// smaller than a trained one's, hence a larger learning rate than the
// original's 1e-5; no dropout, short windows, overlapping training windows.
const std::vector<std::string> kQuick = {"--window", "8", "--train-stride", "2", "--batch-size", "8",
                                         "--lr", "1e-4", "--dropout", "0", "--val-fraction", "0.34",
                                         "--threads", "2", "--no-progress"};

class TrainE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("train-e2e");
    portrait_ = new cv::Mat(cv::imread(env_or("DFD_TEST_DATA", "tests/data") + "/astronaut.png"));
    ASSERT_FALSE(portrait_->empty()) << "tests/data/astronaut.png missing (DFD_TEST_DATA)";
    init_ = env_or("DFD_TRAIN_INIT_MODEL", "");
    ASSERT_FALSE(init_.empty()) << "DFD_TRAIN_INIT_MODEL not set";
    // 6 real and 6 fake clips of 16 frames, and three unusable videos
    ASSERT_TRUE(make_dataset(*dir_ / "ds", *portrait_, 6, 6, 1, 16));
    std::ofstream(*dir_ / "ds/real/broken.avi") << std::string(5000, 'x');
    cv::VideoWriter w(*dir_ / "ds/fake/blank.avi", cv::CAP_FFMPEG, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 25.0, cv::Size(160, 160));
    for (int i = 0; i < 16; ++i) w.write(cv::Mat(160, 160, CV_8UC3, cv::Scalar(90, 100, 110)));
    w.release();
    ClipSpec s;
    s.seed = 99;
    s.frames = 5;
    ASSERT_TRUE(write_clip(*dir_ / "ds/real/short.avi", *portrait_, s));

    std::vector<std::string> args = {"--data", *dir_ / "ds", "--out", *dir_ / "model.safetensors", "--init-model", init_,
                                      "--epochs", "5", "--cache-dir", *dir_ / "cache", "--metrics", *dir_ / "metrics.json"};
    args.insert(args.end(), kQuick.begin(), kQuick.end());
    const auto t0 = std::chrono::steady_clock::now();
    *run_ = run_cmd(train_cmd(args));
    seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << run_->out << run_->err << "(run took " << seconds_ << " s)\n";
    ASSERT_EQ(run_->status, 0) << run_->err;
    *metrics_ = json::parse(slurp(*dir_ / "metrics.json"));
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete portrait_;
  }
  static TempDir* dir_;
  static cv::Mat* portrait_;
  static std::string init_;
  static RunResult* run_;
  static json* metrics_;
  static double seconds_;
};
TempDir* TrainE2E::dir_ = nullptr;
cv::Mat* TrainE2E::portrait_ = nullptr;
std::string TrainE2E::init_;
RunResult* TrainE2E::run_ = new RunResult;
json* TrainE2E::metrics_ = new json;
double TrainE2E::seconds_ = 0;

// P(FAKE) of the video's summary from the deepfakedetect element (-1 on failure).
double element_probability(const std::string& clip, const std::string& model, int window, double threshold,
                           std::string* verdict) {
  const std::string line = "filesrc location=\"" + clip + "\" ! decodebin ! videoconvert ! deepfakedetect model=\"" + model +
                           "\" window-size=" + std::to_string(window) + " threshold=" + std::to_string(threshold) +
                           " ! fakesink";
  GError* err = nullptr;
  GstElement* pipe = gst_parse_launch(line.c_str(), &err);
  if (!pipe) {
    ADD_FAILURE() << "gst_parse_launch: " << (err ? err->message : "?");
    if (err) g_error_free(err);
    return -1;
  }
  gst_element_set_state(pipe, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(pipe);
  double prob = -1;
  bool done = false;
  while (!done) {
    GstMessage* m = gst_bus_timed_pop(bus, 120 * GST_SECOND);
    if (!m) {
      ADD_FAILURE() << "timeout on " << clip;
      break;
    }
    switch (GST_MESSAGE_TYPE(m)) {
      case GST_MESSAGE_ELEMENT: {
        const GstStructure* s = gst_message_get_structure(m);
        if (s && gst_structure_has_name(s, "deepfakedetect-summary")) {
          gst_structure_get_double(s, "fake-probability", &prob);
          if (verdict) *verdict = gst_structure_get_string(s, "verdict");
        }
        break;
      }
      case GST_MESSAGE_ERROR: {
        GError* e = nullptr;
        gst_message_parse_error(m, &e, nullptr);
        ADD_FAILURE() << "pipeline error on " << clip << ": " << (e ? e->message : "?");
        if (e) g_error_free(e);
        done = true;
        break;
      }
      case GST_MESSAGE_EOS: done = true; break;
      default: break;
    }
    gst_message_unref(m);
  }
  gst_element_set_state(pipe, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(pipe);
  return prob;
}

}  // namespace

TEST_F(TrainE2E, LossFallsAndHeldOutVideosSeparate) {
  const auto& h = (*metrics_)["training"]["history"];
  ASSERT_EQ(h.size(), 5u);
  const double first = h.front()["train_loss"], last = h.back()["train_loss"];
  const double vfirst = h.front()["val_loss"], vlast = h.back()["val_loss"];
  EXPECT_LT(last, first) << "training loss " << first << " -> " << last;
  EXPECT_LT(vlast, vfirst) << "validation loss " << vfirst << " -> " << vlast;
  const auto& v = (*metrics_)["validation"];
  EXPECT_EQ(v["video"]["n"], 4);  // 2 real + 2 fake held out
  EXPECT_GE(v["window"]["accuracy"].get<double>(), 0.75) << v.dump(2);
  EXPECT_GE(v["video"]["accuracy"].get<double>(), 0.75) << v.dump(2);
  EXPECT_GE(v["window"]["roc_auc"].get<double>(), 0.75) << v.dump(2);
  EXPECT_LT((*metrics_)["export"]["parity_max_abs_diff"].get<double>(), 1e-4);
  // the exported epoch is the one with the lowest validation loss
  int best = 0;
  double lowest = 1e30;
  for (auto& e : h)
    if (e["val_loss"].get<double>() < lowest) lowest = e["val_loss"], best = e["epoch"];
  EXPECT_EQ((*metrics_)["training"]["selected_epoch"], best);
  EXPECT_NEAR(v["window"]["log_loss"].get<double>(), lowest, 1e-4);
  // the table on stdout
  EXPECT_NE(run_->out.find("validation split (threshold"), std::string::npos);
  EXPECT_NE(run_->out.find("  window "), std::string::npos);
  std::cout << "seconds per epoch: " << (*metrics_)["training"]["seconds_per_epoch"] << "\n";
}

TEST_F(TrainE2E, UnusableVideosAreReportedNotSilent) {
  const auto& sk = (*metrics_)["dataset"]["skipped"];
  ASSERT_EQ(sk.size(), 3u) << sk.dump();
  std::map<std::string, std::string> why;
  for (auto& s : sk) why[s["video"]] = s["reason"];
  EXPECT_EQ(why["real/broken.avi"], "unreadable");
  EXPECT_EQ(why["fake/blank.avi"], "no face");
  EXPECT_EQ(why["real/short.avi"], "too short");
  EXPECT_NE(run_->out.find("12 usable, 3 skipped"), std::string::npos) << run_->out;
  EXPECT_NE(run_->err.find("real/short.avi: too short"), std::string::npos) << run_->err;
}

TEST_F(TrainE2E, ExportLoadsWithAFilledCard) {
  auto m = dfd::Model::load(*dir_ / "model.safetensors");
  const auto& c = m->card();
  EXPECT_TRUE(c.trained);
  EXPECT_EQ(c.head, dfd::HeadMode::Temporal);
  EXPECT_EQ(c.window_size, 8);
  EXPECT_NEAR(c.threshold, (*metrics_)["threshold"]["value"].get<double>(), 1e-6);
  EXPECT_GE(c.threshold, 0.f);
  EXPECT_LE(c.threshold, 1.f);
  EXPECT_NE(c.training_data.find("6 real and 6 fake usable videos"), std::string::npos) << c.training_data;
  EXPECT_NE(c.training_data.find("backbone UNTRAINED"), std::string::npos) << c.training_data;
  EXPECT_NE(c.provenance.find("deepfake-train"), std::string::npos);
  auto mj = json::parse(c.metrics_json);
  EXPECT_TRUE(mj.contains("validation"));
  EXPECT_EQ(mj["dataset"]["skipped_count"], 3);
  // the backbone is the starting model's
  auto start = dfd::Model::load(init_);
  cv::Mat crop = cv::Mat(112, 112, CV_8UC3, cv::Scalar(40, 90, 160));
  EXPECT_EQ(m->features({crop})[0], start->features({crop})[0]);
}

TEST_F(TrainE2E, ElementWithTheExportSeparatesNewClips) {
  gst_init(nullptr, nullptr);
  if (!gst_element_factory_find("deepfakedetect")) GTEST_SKIP() << "deepfakedetect plugin not found (GST_PLUGIN_PATH)";
  auto m = dfd::Model::load(*dir_ / "model.safetensors");
  const double thr = m->card().threshold;
  std::vector<double> real, fake;
  int correct = 0;
  for (int i = 0; i < 6; ++i) {
    ClipSpec c;
    c.fake = i % 2 == 1;
    c.seed = 500 + uint64_t(i);  // clips the model has never seen
    c.frames = 16;
    const std::string clip = *dir_ / ("new_" + std::to_string(i) + ".avi");
    ASSERT_TRUE(write_clip(clip, *portrait_, c));
    std::string verdict;
    const double p = element_probability(clip, *dir_ / "model.safetensors", 8, thr, &verdict);
    ASSERT_GE(p, 0.0) << "no summary from the element for " << clip;
    (c.fake ? fake : real).push_back(p);
    correct += verdict == (c.fake ? "FAKE" : "REAL");
    std::cout << clip << (c.fake ? " (fake)" : " (real)") << ": P(FAKE) " << p << " -> " << verdict << "\n";
  }
  EXPECT_GE(correct, 5) << "of 6 new clips at the card's threshold " << thr;
  const double mr = (real[0] + real[1] + real[2]) / 3, mf = (fake[0] + fake[1] + fake[2]) / 3;
  EXPECT_GT(mf, mr);
}

TEST_F(TrainE2E, DeepfakeScanWithTheExport) {
  const std::string scan = env_or("DFD_SCAN_BIN", "");
  if (scan.empty() || !fs::exists(scan)) GTEST_SKIP() << "deepfake-scan not built";
  auto m = dfd::Model::load(*dir_ / "model.safetensors");
  char thr[32];
  std::snprintf(thr, sizeof thr, "%.6f", double(m->card().threshold));
  double p[2] = {-1, -1};
  for (int fake = 0; fake < 2; ++fake) {
    ClipSpec c;
    c.fake = fake == 1;
    c.seed = 900 + uint64_t(fake);
    const std::string clip = *dir_ / ("scan_" + std::to_string(fake) + ".avi");
    ASSERT_TRUE(write_clip(clip, *portrait_, c));
    auto r = run_cmd({scan, "--model", *dir_ / "model.safetensors", "--window-size", "8", "--threshold", thr, "--json",
                      *dir_ / "scan.json", "--quiet", clip});
    EXPECT_EQ(r.status, fake ? 10 : 0) << "exit 0 = REAL, 10 = FAKE; " << r.err;
    auto j = json::parse(slurp(*dir_ / "scan.json"));
    p[fake] = j["fake_probability"];
    EXPECT_EQ(j["model"]["trained"], true);
    EXPECT_EQ(j["model"]["head"], "temporal");
  }
  EXPECT_GT(p[1], p[0]);
}

TEST_F(TrainE2E, EvaluateAnExportedModelOnNewVideos) {
  ASSERT_TRUE(make_dataset(*dir_ / "new", *portrait_, 3, 3, 700, 16));
  auto r = run_cmd(train_cmd({"--data", *dir_ / "new", "--evaluate", *dir_ / "model.safetensors", "--cache-dir",
                              *dir_ / "cache", "--metrics", *dir_ / "eval.json", "--no-progress"}));
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = json::parse(slurp(*dir_ / "eval.json"));
  EXPECT_EQ(j["mode"], "evaluate");
  EXPECT_EQ(j["evaluation"]["video"]["n"], 6);
  EXPECT_GE(j["evaluation"]["video"]["accuracy"].get<double>(), 0.66) << j["evaluation"].dump(2);
  EXPECT_NE(r.out.find("evaluation of"), std::string::npos);
}

TEST_F(TrainE2E, ResumeContinuesFromTheLastEpoch) {
  std::vector<std::string> args = {"--data", *dir_ / "ds", "--out", *dir_ / "model.safetensors", "--init-model", init_,
                                    "--epochs", "6", "--cache-dir", *dir_ / "cache", "--resume"};
  args.insert(args.end(), kQuick.begin(), kQuick.end());
  auto r = run_cmd(train_cmd(args));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("resumed from"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("after epoch 5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("epoch 6/6"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("epoch 1/6"), std::string::npos) << r.out;
  // other settings refuse the checkpoint
  std::vector<std::string> bad = args;
  bad.push_back("--seed");
  bad.push_back("5");
  auto b = run_cmd(train_cmd(bad));
  EXPECT_EQ(b.status, 1);
  EXPECT_NE(last_line(b.err).find("made with other settings"), std::string::npos) << b.err;
}

TEST_F(TrainE2E, CtrlCSavesAResumableCheckpoint) {
  std::vector<std::string> args = {"--data", *dir_ / "ds", "--out", *dir_ / "int.safetensors", "--init-model", init_,
                                   "--epochs", "50", "--cache-dir", *dir_ / "cache"};
  args.insert(args.end(), kQuick.begin(), kQuick.end());
  auto r = run_cmd(train_cmd(args), "epoch 1/50");
  EXPECT_EQ(r.status, 130) << r.out << r.err;
  EXPECT_NE(r.err.find("saved a resumable checkpoint"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(*dir_ / "int.safetensors"));
  auto st = json::parse(slurp(*dir_ / "int.train/train_state.json"));
  const int done = st["epochs_done"];
  EXPECT_GE(done, 1);
  // continue to one more epoch than was done
  std::vector<std::string> more = args;
  more[7] = std::to_string(done + 1);
  more.push_back("--resume");
  auto c = run_cmd(train_cmd(more));
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_NE(c.out.find("after epoch " + std::to_string(done)), std::string::npos) << c.out;
  EXPECT_TRUE(fs::exists(*dir_ / "int.safetensors"));
}

TEST_F(TrainE2E, ReferenceHeadFromRealVideosWithSelfBlendedFakes) {
  // the real clips only, through a CSV (same files: the crop cache is reused)
  std::ofstream csv(*dir_ / "reals.csv");
  csv << "file,label\n";
  for (int i = 0; i < 6; ++i) csv << "ds/real/real_0" << i << ".avi,REAL\n";
  csv.close();
  std::vector<std::string> args = {"--data", *dir_ / "reals.csv", "--out", *dir_ / "sbi.safetensors", "--init-model", init_,
                                   "--epochs", "2", "--cache-dir", *dir_ / "cache", "--head", "reference", "--self-blend",
                                   "--metrics", *dir_ / "sbi.json"};
  args.insert(args.end(), kQuick.begin(), kQuick.end());
  auto r = run_cmd(train_cmd(args));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("self-blended"), std::string::npos) << r.out;
  auto j = json::parse(slurp(*dir_ / "sbi.json"));
  EXPECT_TRUE(j["dataset"]["self_blend"].get<bool>());
  EXPECT_EQ(j["validation"]["video"]["n_fake"], j["validation"]["video"]["n_real"]);
  auto m = dfd::Model::load(*dir_ / "sbi.safetensors");
  EXPECT_EQ(m->card().head, dfd::HeadMode::Reference);
  EXPECT_NE(m->card().training_data.find("self-blended"), std::string::npos);
}

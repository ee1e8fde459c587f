// deepfake-train --arch meso4|mesoinception4 and --init-backbone from the
// command line: a tiny end-to-end run on synthetic face images (fine-tuning
// the shipped Meso4_DF with self-blended fakes) whose export the inference
// path loads with a filled card, and one clear error (exit 1) for each bad
// option.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "model/family.h"
#include "meso_synthetic.h"
#include "train_test_util.h"

using namespace dfd_test;

namespace {

std::string env(const char* k) {
  const char* v = std::getenv(k);
  return v ? v : "";
}
std::string meso_dir() { return env("DFD_MESONET_DIR"); }

// One line on stderr, "deepfake-train: error: ...", exit 1.
void expect_one_line_error(const RunResult& r, const std::string& fragment) {
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  std::string e = r.err;
  while (!e.empty() && e.back() == '\n') e.pop_back();
  EXPECT_EQ(e.find('\n'), std::string::npos) << r.err;
  EXPECT_EQ(e.rfind("deepfake-train: error: ", 0), 0u) << r.err;
  EXPECT_NE(e.find(fragment), std::string::npos) << r.err;
}

// real/ and fake/ folders of synthetic face crops (PNG images).
void write_image_set(const std::string& root, int n_real, int n_fake) {
  cv::Mat portrait = cv::imread(env("DFD_TEST_DATA") + "/astronaut.png", cv::IMREAD_COLOR);
  ASSERT_FALSE(portrait.empty());
  fs::create_directories(root + "/real");
  fs::create_directories(root + "/fake");
  for (int i = 0; i < n_real; ++i)
    cv::imwrite(root + "/real/r" + std::to_string(i) + ".png", meso_synthetic_crop(portrait, false, uint64_t(50 + i)));
  for (int i = 0; i < n_fake; ++i)
    cv::imwrite(root + "/fake/f" + std::to_string(i) + ".png", meso_synthetic_crop(portrait, true, uint64_t(80 + i)));
}

TEST(MesoCli, FineTunesTheShippedWeightsWithSelfBlendAndExportsALoadableModel) {
  TempDir d("meso-cli-e2e");
  write_image_set(d / "data", 8, 4);
  const std::string out = d / "mine.safetensors";
  auto r = run_cmd(train_cmd({"--arch", "meso4", "--data", d / "data", "--out", out, "--init", meso_dir() + "/Meso4_DF.h5",
                              "--self-blend", "--epochs", "2", "--batch-size", "8", "--lr", "1e-4", "--val-fraction",
                              "0.25", "--threads", "2", "--no-progress"}));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("epoch 2/2"), std::string::npos) << r.out;
  auto det = dfd::load_detector(out);
  const auto& c = det->card();
  EXPECT_EQ(c.architecture, "meso4");
  EXPECT_EQ(c.input_size, 256);
  EXPECT_EQ(c.channel_order, "RGB");
  EXPECT_EQ(c.mean[0], 0.f);
  EXPECT_EQ(c.std[0], 1.f);
  EXPECT_EQ(c.class_names, (std::vector<std::string>{"FAKE", "REAL"}));
  EXPECT_TRUE(c.trained);
  EXPECT_EQ(c.name, "mine");
  EXPECT_EQ(c.licence, "Apache-2.0");  // derived from the authors' Apache-2.0 weights
  EXPECT_NE(c.provenance.find("Meso4_DF.h5"), std::string::npos) << c.provenance;
  EXPECT_NE(c.provenance.find("deepfake-train"), std::string::npos) << c.provenance;
  EXPECT_NE(c.training_data.find("self-blended"), std::string::npos) << c.training_data;
  EXPECT_NE(c.training_data.find("12 usable items"), std::string::npos) << c.training_data;
  auto m = nlohmann::json::parse(c.metrics_json);
  EXPECT_EQ(m["training"]["history"].size(), 3u);  // epoch 0 (the start) and two epochs
  // The weights moved: not the shipped file's checksum.
  EXPECT_NE(det->checksum(), dfd::load_detector(meso_dir() + "/Meso4_DF.h5")->checksum());
  auto metrics = nlohmann::json::parse(slurp(d / "mine.train/metrics.json"));
  EXPECT_LE(double(metrics["export"]["parity_max_abs_logit_diff"]), 1e-5);
  EXPECT_TRUE(metrics["dataset"]["self_blend"].get<bool>());
}

TEST(MesoCli, TrainsMesoInceptionFromScratch) {
  TempDir d("meso-cli-scratch");
  write_image_set(d / "data", 4, 4);
  const std::string out = d / "incep.safetensors";
  auto r = run_cmd(train_cmd({"--arch", "mesoinception4", "--data", d / "data", "--out", out, "--epochs", "1",
                              "--batch-size", "4", "--threads", "2", "--no-progress"}));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  auto det = dfd::load_detector(out);
  EXPECT_EQ(det->card().architecture, "mesoinception4");
  EXPECT_TRUE(det->card().licence.empty());
  EXPECT_NE(det->card().provenance.find("from scratch"), std::string::npos);
}

TEST(MesoCli, UnknownArchitecture) {
  TempDir d("meso-cli-arch");
  expect_one_line_error(run_cmd(train_cmd({"--arch", "meso5", "--data", d.path.string(), "--out", d / "m.safetensors"})),
                        "unknown --arch 'meso5'");
}

TEST(MesoCli, MissingData) {
  TempDir d("meso-cli-nodata");
  expect_one_line_error(run_cmd(train_cmd({"--arch", "meso4", "--data", d / "nothing", "--out", d / "m.safetensors"})),
                        "nothing");
  expect_one_line_error(run_cmd(train_cmd({"--arch", "meso4", "--out", d / "m.safetensors"})), "--data");
}

TEST(MesoCli, RealOnlyDataNeedsSelfBlend) {
  TempDir d("meso-cli-realonly");
  write_image_set(d / "data", 3, 0);
  expect_one_line_error(run_cmd(train_cmd({"--arch", "meso4", "--data", d / "data", "--out", d / "m.safetensors"})),
                        "--self-blend");
}

TEST(MesoCli, WrongInitFiles) {
  TempDir d("meso-cli-init");
  write_image_set(d / "data", 2, 2);
  auto run_init = [&](const std::string& arch, const std::string& init) {
    return run_cmd(train_cmd({"--arch", arch, "--data", d / "data", "--out", d / "m.safetensors", "--init", init}));
  };
  expect_one_line_error(run_init("meso4", d / "missing.h5"), "does not exist");
  expect_one_line_error(run_init("meso4", meso_dir() + "/MesoInception_DF.h5"), "not meso4");
  expect_one_line_error(run_init("meso4", env("DFD_TRAIN_INIT_MODEL")), "not meso4");
  std::ofstream(d / "junk.h5") << "not a model";
  expect_one_line_error(run_init("meso4", d / "junk.h5"), "--init");
  EXPECT_FALSE(fs::exists(d / "m.safetensors"));
}

TEST(MesoCli, OptionsOfTheOtherTrainerAreRefused) {
  TempDir d("meso-cli-opts");
  expect_one_line_error(run_cmd(train_cmd({"--arch", "meso4", "--data", d.path.string(), "--out", d / "m.safetensors",
                                           "--init-model", "x.pt"})),
                        "--init-model does not apply to --arch meso4");
  expect_one_line_error(run_cmd(train_cmd({"--arch", "meso4", "--data", d.path.string(), "--out", d / "m.safetensors",
                                           "--window", "8"})),
                        "--window does not apply");
  expect_one_line_error(run_cmd(train_cmd({"--data", d.path.string(), "--out", d / "m.safetensors", "--init", "x.h5"})),
                        "--init is for MesoNet");
}

TEST(InitBackboneCli, BadFilesGiveOneError) {
  TempDir d("tv-cli");
  const std::string fx = env("DFD_TORCHVISION_FIXTURES");
  for (auto [file, fragment] : {std::pair<std::string, std::string>{"tv_missing_key.pt", "missing key"},
                                {"tv_wrong_shape.pt", "shape mismatch"},
                                {"tv_not_torchvision.pt", "not a torchvision"}}) {
    fs::create_directories(d / "data/real");
    fs::create_directories(d / "data/fake");
    std::ofstream(d / "data/real/a.avi") << "x";
    std::ofstream(d / "data/fake/b.avi") << "x";
    expect_one_line_error(run_cmd(train_cmd({"--data", d / "data", "--out", d / "m.safetensors", "--init-backbone",
                                             fx + "/" + file, "--no-progress"})),
                          fragment);
  }
  expect_one_line_error(run_cmd(train_cmd({"--data", d / "data", "--out", d / "m.safetensors", "--init-backbone",
                                           fx + "/tv_resnext50.pt", "--init-model", env("DFD_TRAIN_INIT_MODEL")})),
                        "does not combine");
}

}  // namespace

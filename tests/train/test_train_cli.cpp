// deepfake-train refuses bad input with one clear line and exit status 1.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include "synthetic.h"
#include "train_test_util.h"

using namespace dfd_test;

namespace {

void touch(const std::string& p, const std::string& content = std::string(2048, 'q')) {
  fs::create_directories(fs::path(p).parent_path());
  std::ofstream(p) << content;
}

// Exit 1 and a single "deepfake-train: error: ..." line containing `what`.
void expect_error(const RunResult& r, const std::string& what) {
  EXPECT_EQ(r.status, 1) << r.err;
  const std::string line = last_line(r.err);
  EXPECT_EQ(line.rfind("deepfake-train: error: ", 0), 0u) << r.err;
  EXPECT_NE(line.find(what), std::string::npos) << "wanted '" << what << "' in: " << r.err;
}

cv::Mat portrait() { return cv::imread(env_or("DFD_TEST_DATA", "tests/data") + "/astronaut.png"); }

}  // namespace

TEST(TrainCli, UsageAndOptions) {
  auto h = run_cmd(train_cmd({"--help"}));
  EXPECT_EQ(h.status, 0);
  EXPECT_NE(h.out.find("--data DIR|CSV"), std::string::npos);
  EXPECT_EQ(run_cmd(train_cmd({})).status, 1);
  expect_error(run_cmd(train_cmd({"--data", "x", "--bogus"})), "unknown option --bogus");
  expect_error(run_cmd(train_cmd({"--data", "x", "--out", "m.safetensors", "--epochs", "two"})), "--epochs must be an integer");
  expect_error(run_cmd(train_cmd({"--data", "x", "--out", "m.safetensors", "--head", "sideways"})), "unknown head mode");
  expect_error(run_cmd(train_cmd({"--data", "x", "--out", "m.safetensors", "--val-fraction", "0.7", "--test-fraction", "0.5"})),
               "sum to less than 1");
  expect_error(run_cmd(train_cmd({"--out", "m.safetensors"})), "--data DIR|CSV is required");
  expect_error(run_cmd(train_cmd({"--data", "x"})), "--out MODEL.safetensors is required");
  expect_error(run_cmd(train_cmd({"--data", "x", "--out", "m.safetensors", "--window", "8", "--min-frames", "4"})),
               "--min-frames (4) must be at least --window (8)");
  expect_error(run_cmd(train_cmd({"--data", "x", "--out", "m.safetensors", "--threshold", "1.5"})),
               "--threshold must be eer, accuracy or a number");
}

TEST(TrainCli, BadLayouts) {
  TempDir d("train-cli-layout");
  expect_error(run_cmd(train_cmd({"--data", d / "nope", "--out", d / "m.safetensors"})), "does not exist");
  touch(d / "flat/a.avi");
  expect_error(run_cmd(train_cmd({"--data", d / "flat", "--out", d / "m.safetensors"})), "neither a real/ nor a fake/");
  fs::create_directories(d.path / "empty/real");
  fs::create_directories(d.path / "empty/fake");
  expect_error(run_cmd(train_cmd({"--data", d / "empty", "--out", d / "m.safetensors"})), "no videos found");
  std::ofstream(d / "bad.csv") << "file,label\nreal.avi,REAL\nfake.avi,deepfake\n";
  expect_error(run_cmd(train_cmd({"--data", d / "bad.csv", "--out", d / "m.safetensors"})), "bad.csv:3: label 'deepfake'");
}

TEST(TrainCli, OneClassOnly) {
  TempDir d("train-cli-oneclass");
  touch(d / "reals/real/a.avi");
  touch(d / "reals/real/b.avi");
  expect_error(run_cmd(train_cmd({"--data", d / "reals", "--out", d / "m.safetensors"})),
               "only REAL videos (2); FAKE videos are needed too, or pass --self-blend");
  touch(d / "fakes/fake/a.avi");
  expect_error(run_cmd(train_cmd({"--data", d / "fakes", "--out", d / "m.safetensors", "--self-blend"})),
               "only FAKE videos (1); REAL videos are needed too");
  std::ofstream(d / "one.csv") << "x.avi,fake\ny.avi,FAKE\n";
  expect_error(run_cmd(train_cmd({"--data", d / "one.csv", "--out", d / "m.safetensors"})), "only FAKE videos (2)");
}

TEST(TrainCli, UnreadableVideosAreSkippedAndNamed) {
  TempDir d("train-cli-unreadable");
  touch(d / "ds/real/broken.avi");
  touch(d / "ds/fake/also_broken.mp4");
  auto r = run_cmd(train_cmd({"--data", d / "ds", "--out", d / "m.safetensors", "--init-model",
                              env_or("DFD_TRAIN_INIT_MODEL", ""), "--no-progress"}));
  expect_error(r, "no usable video: all 2 were skipped");
  EXPECT_NE(r.err.find("real/broken.avi: unreadable"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("fake/also_broken.mp4: unreadable"), std::string::npos) << r.err;

  // a good real clip and a broken fake one: one class usable
  cv::Mat p = portrait();
  ASSERT_FALSE(p.empty());
  ClipSpec c;
  c.frames = 10;
  ASSERT_TRUE(write_clip(d / "ds/real/good.avi", p, c));
  const std::string init = env_or("DFD_TRAIN_INIT_MODEL", "");
  auto s = run_cmd(train_cmd({"--data", d / "ds", "--out", d / "m.safetensors", "--window", "8", "--init-model", init, "--no-progress"}));
  expect_error(s, "only REAL videos are usable (1); every FAKE video was skipped");
  EXPECT_NE(s.err.find("skipped 2 of 3 videos"), std::string::npos) << s.err;
  // a clip shorter than the window is skipped as too short
  auto t = run_cmd(train_cmd({"--data", d / "ds", "--out", d / "m.safetensors", "--window", "20", "--init-model", init, "--no-progress"}));
  EXPECT_NE(t.err.find("real/good.avi: too short"), std::string::npos) << t.err;
  expect_error(t, "no usable video: all 3 were skipped");
}

TEST(TrainCli, ResumeNeedsACheckpointAndInitModelMustExist) {
  TempDir d("train-cli-resume");
  cv::Mat p = portrait();
  ASSERT_FALSE(p.empty());
  ASSERT_TRUE(make_dataset(d / "ds", p, 1, 1, 40, 8));
  expect_error(run_cmd(train_cmd({"--data", d / "ds", "--out", d / "m.safetensors", "--window", "4", "--resume",
                                  "--init-model", env_or("DFD_TRAIN_INIT_MODEL", ""), "--no-progress"})),
               "no checkpoint");
  auto r = run_cmd(train_cmd({"--data", d / "ds", "--out", d / "m.safetensors", "--init-model", d / "missing.safetensors"}));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(last_line(r.err).find("missing.safetensors"), std::string::npos) << r.err;
}

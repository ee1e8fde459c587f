// Dataset listing, the split, preprocessing with the element's face code,
// and the crop/feature cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "synthetic.h"
#include "train/train_data.h"

namespace fs = std::filesystem;
using namespace dfd::train;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("dfd-train-data-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  static int& counter() {
    static int n = 0;
    return n;
  }
  std::string operator/(const std::string& s) const { return (path / s).string(); }
};

void touch(const std::string& p, const std::string& content = "x") {
  fs::create_directories(fs::path(p).parent_path());
  std::ofstream(p) << content;
}

cv::Mat portrait() {
  const char* dir = std::getenv("DFD_TEST_DATA");
  return cv::imread(std::string(dir ? dir : "tests/data") + "/astronaut.png");
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const DatasetError& e) {
    return e.what();
  }
  return "(no DatasetError)";
}

}  // namespace

TEST(Dataset, DirectoryLayout) {
  TempDir d;
  touch(d / "real/a.avi");
  touch(d / "real/nested/b.MP4");
  touch(d / "real/notes.txt");
  touch(d / "fake/c.mkv");
  auto ds = list_dataset(d.path.string());
  EXPECT_EQ(ds.layout, "directory");
  ASSERT_EQ(ds.items.size(), 3u);
  EXPECT_EQ(ds.items[0].id, "real/a.avi");
  EXPECT_FALSE(ds.items[0].fake);
  EXPECT_EQ(ds.items[1].id, "real/nested/b.MP4");
  EXPECT_EQ(ds.items[2].id, "fake/c.mkv");
  EXPECT_TRUE(ds.items[2].fake);
  ASSERT_EQ(ds.ignored.size(), 1u);
  EXPECT_EQ(ds.ignored[0], "real/notes.txt");
}

TEST(Dataset, UppercaseClassDirectoriesAndOneClassListing) {
  TempDir d;
  touch(d / "REAL/a.avi");
  auto ds = list_dataset(d.path.string());  // one class is the caller's to refuse
  ASSERT_EQ(ds.items.size(), 1u);
  EXPECT_FALSE(ds.items[0].fake);
}

TEST(Dataset, BadLayoutsAreNamed) {
  TempDir d;
  EXPECT_NE(error_of([&] { list_dataset(d / "missing"); }).find("does not exist"), std::string::npos);
  touch(d / "videos/a.avi");
  EXPECT_NE(error_of([&] { list_dataset(d.path.string()); }).find("neither a real/ nor a fake/"), std::string::npos);
  TempDir e;
  fs::create_directories(e.path / "real");
  fs::create_directories(e.path / "fake");
  touch(e / "fake/readme.md");
  EXPECT_NE(error_of([&] { list_dataset(e.path.string()); }).find("no videos found"), std::string::npos);
  touch(e / "clip.mp4");
  EXPECT_NE(error_of([&] { list_dataset(e / "clip.mp4"); }).find("single video"), std::string::npos);
}

TEST(Dataset, CsvWithHeaderQuotesAndRelativePaths) {
  TempDir d;
  std::ofstream(d / "meta.csv") << "file,label\n"
                                   "videos/a.mp4,REAL\n"
                                   "\"videos/b, with comma.mp4\",fake\n"
                                   "\n# a comment\n"
                                   "/abs/c.mp4,Fake\r\n"
                                   "videos/a.mp4,real\n";  // a repeated row
  auto ds = list_dataset(d / "meta.csv");
  EXPECT_EQ(ds.layout, "csv");
  ASSERT_EQ(ds.items.size(), 3u);
  EXPECT_EQ(ds.items[0].path, (d.path / "videos/a.mp4").string());
  EXPECT_FALSE(ds.items[0].fake);
  EXPECT_EQ(ds.items[1].id, "videos/b, with comma.mp4");
  EXPECT_TRUE(ds.items[1].fake);
  EXPECT_EQ(ds.items[2].path, "/abs/c.mp4");
  EXPECT_TRUE(ds.items[2].fake);
}

TEST(Dataset, CsvWithoutHeaderAndOtherColumnOrder) {
  TempDir d;
  std::ofstream(d / "a.csv") << "x.avi,REAL\ny.avi,FAKE\n";
  EXPECT_EQ(list_dataset(d / "a.csv").items.size(), 2u);
  std::ofstream(d / "b.csv") << "label,split,filename\nFAKE,train,x.avi\n";
  auto ds = list_dataset(d / "b.csv");
  ASSERT_EQ(ds.items.size(), 1u);
  EXPECT_EQ(ds.items[0].id, "x.avi");
  EXPECT_TRUE(ds.items[0].fake);
}

TEST(Dataset, CsvErrorsNameTheLine) {
  TempDir d;
  std::ofstream(d / "bad.csv") << "file,label\na.avi,REAL\nb.avi,maybe\n";
  const std::string e = error_of([&] { list_dataset(d / "bad.csv"); });
  EXPECT_NE(e.find(":3:"), std::string::npos) << e;
  EXPECT_NE(e.find("'maybe' is neither REAL nor FAKE"), std::string::npos) << e;
  std::ofstream(d / "both.csv") << "a.avi,REAL\na.avi,FAKE\n";
  EXPECT_NE(error_of([&] { list_dataset(d / "both.csv"); }).find("both REAL and FAKE"), std::string::npos);
  std::ofstream(d / "empty.csv") << "file,label\n";
  EXPECT_NE(error_of([&] { list_dataset(d / "empty.csv"); }).find("lists no videos"), std::string::npos);
  std::ofstream(d / "short.csv") << "a.avi\n";
  EXPECT_NE(error_of([&] { list_dataset(d / "short.csv"); }).find("expected file,label"), std::string::npos);
}

TEST(Split, DeterministicStratifiedAndOrderFree) {
  std::vector<VideoItem> items;
  for (int i = 0; i < 10; ++i) items.push_back({"", "real/" + std::to_string(i) + ".mp4", false});
  for (int i = 0; i < 20; ++i) items.push_back({"", "fake/" + std::to_string(i) + ".mp4", true});
  auto a = split_videos(items, 0.2, 0.1, 7);
  EXPECT_EQ(a, split_videos(items, 0.2, 0.1, 7));
  int val[2] = {0, 0}, test[2] = {0, 0};
  for (size_t i = 0; i < items.size(); ++i) {
    if (a[i] == Split::Validation) val[items[i].fake]++;
    if (a[i] == Split::Test) test[items[i].fake]++;
  }
  EXPECT_EQ(val[0], 2);
  EXPECT_EQ(val[1], 4);
  EXPECT_EQ(test[0], 1);
  EXPECT_EQ(test[1], 2);
  // the listing order does not matter: each video keeps its split
  std::vector<size_t> perm(items.size());
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), std::mt19937(3));
  std::vector<VideoItem> shuffled;
  for (auto p : perm) shuffled.push_back(items[p]);
  auto b = split_videos(shuffled, 0.2, 0.1, 7);
  for (size_t k = 0; k < perm.size(); ++k) EXPECT_EQ(b[k], a[perm[k]]);
  // another seed, another split
  EXPECT_NE(split_videos(items, 0.2, 0.1, 8), a);
  // a class of two keeps one for training; a class of one is never held out
  std::vector<VideoItem> small{{"", "r1", false}, {"", "r2", false}, {"", "f1", true}};
  auto s = split_videos(small, 0.5, 0, 0);
  EXPECT_EQ(std::count(s.begin(), s.end(), Split::Validation), 1);
  EXPECT_EQ(s[2], Split::Train);
  EXPECT_THROW(split_videos(items, 0.6, 0.5, 0), std::invalid_argument);
}

class Preprocess : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    cv::Mat p = portrait();
    ASSERT_FALSE(p.empty()) << "tests/data/astronaut.png missing (DFD_TEST_DATA)";
    dfd_test::ClipSpec c;
    c.seed = 5;
    c.frames = 12;
    ASSERT_TRUE(dfd_test::write_clip(*dir_ / "face.avi", p, c));
    cv::VideoWriter w(*dir_ / "grey.avi", cv::CAP_FFMPEG, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 25.0, cv::Size(160, 160));
    for (int i = 0; i < 6; ++i) w.write(cv::Mat(160, 160, CV_8UC3, cv::Scalar(120, 120, 120)));
    w.release();
    std::ofstream(*dir_ / "garbage.avi") << std::string(4096, 'z');
  }
  static void TearDownTestSuite() { delete dir_; }
  static TempDir* dir_;
};
TempDir* Preprocess::dir_ = nullptr;

TEST_F(Preprocess, FaceClipGivesOneTrackOfCrops) {
  PreprocessConfig cfg;
  auto r = preprocess_video(*dir_ / "face.avi", cfg);
  ASSERT_EQ(r.status, VideoStatus::Ok) << r.message;
  EXPECT_EQ(r.frames_decoded, 12);
  ASSERT_GE(r.tracks.size(), 1u);
  const auto& t = r.tracks[0];
  EXPECT_GE(t.crops.size(), 10u);
  EXPECT_EQ(t.crops.size(), t.boxes.size());
  EXPECT_EQ(t.crops.size(), t.frame_indices.size());
  EXPECT_EQ(t.crops[0].size(), cv::Size(112, 112));
  EXPECT_EQ(t.crops[0].type(), CV_8UC3);
  EXPECT_TRUE(std::is_sorted(t.frame_indices.begin(), t.frame_indices.end()));
  // the track is the face: its box centre near the frame centre
  const cv::Rect b = t.boxes[0];
  EXPECT_NEAR(b.x + b.width / 2, 80, 30);
  // max_frames stops early
  cfg.max_frames = 5;
  EXPECT_EQ(preprocess_video(*dir_ / "face.avi", cfg).frames_decoded, 5);
}

TEST_F(Preprocess, UnusableVideosAreReportedNotThrown) {
  PreprocessConfig cfg;
  auto g = preprocess_video(*dir_ / "garbage.avi", cfg);
  EXPECT_TRUE(g.status == VideoStatus::Unreadable || g.status == VideoStatus::NoFrames) << to_string(g.status);
  EXPECT_FALSE(g.message.empty());
  auto m = preprocess_video(*dir_ / "missing.avi", cfg);
  EXPECT_EQ(m.status, VideoStatus::Unreadable);
  EXPECT_EQ(m.message, "file does not exist");
  auto n = preprocess_video(*dir_ / "grey.avi", cfg);
  EXPECT_EQ(n.status, VideoStatus::NoFace);
  EXPECT_NE(n.message.find("no face found in 6 frames"), std::string::npos) << n.message;
}

TEST_F(Preprocess, SelectTracksRefusesShortTracks) {
  PreprocessConfig cfg;
  auto r = preprocess_video(*dir_ / "face.avi", cfg);
  ASSERT_EQ(r.status, VideoStatus::Ok);
  auto keep = r;
  cfg.min_frames = 8;
  select_tracks(keep, cfg);
  EXPECT_EQ(keep.status, VideoStatus::Ok);
  EXPECT_EQ(keep.tracks.size(), 1u);
  cfg.min_frames = 100;
  select_tracks(r, cfg);
  EXPECT_EQ(r.status, VideoStatus::TooShort);
  EXPECT_NE(r.message.find("fewer than the 100 needed"), std::string::npos) << r.message;
  EXPECT_TRUE(r.tracks.empty());
}

TEST_F(Preprocess, CacheRoundTripIsLosslessAndKeyed) {
  TempDir c;
  CropCache cache((c.path / "cache").string());
  PreprocessConfig cfg;
  const std::string key = cache.key(*dir_ / "face.avi", cfg);
  ASSERT_FALSE(key.empty());
  PreprocessResult loaded;
  EXPECT_FALSE(cache.load(key, loaded));
  auto r = preprocess_video(*dir_ / "face.avi", cfg);
  cache.store(key, r);
  ASSERT_TRUE(cache.load(key, loaded));
  EXPECT_TRUE(loaded.from_cache);
  EXPECT_EQ(loaded.status, r.status);
  EXPECT_EQ(loaded.frames_decoded, r.frames_decoded);
  ASSERT_EQ(loaded.tracks.size(), r.tracks.size());
  for (size_t t = 0; t < r.tracks.size(); ++t) {
    ASSERT_EQ(loaded.tracks[t].crops.size(), r.tracks[t].crops.size());
    EXPECT_EQ(loaded.tracks[t].boxes, r.tracks[t].boxes);
    EXPECT_EQ(loaded.tracks[t].frame_indices, r.tracks[t].frame_indices);
    for (size_t k = 0; k < r.tracks[t].crops.size(); ++k)
      EXPECT_EQ(cv::norm(loaded.tracks[t].crops[k], r.tracks[t].crops[k], cv::NORM_INF), 0.0);
  }
  // a failed video is cached too (with its reason)
  const std::string gkey = cache.key(*dir_ / "grey.avi", cfg);
  cache.store(gkey, preprocess_video(*dir_ / "grey.avi", cfg));
  ASSERT_TRUE(cache.load(gkey, loaded));
  EXPECT_EQ(loaded.status, VideoStatus::NoFace);
  // the key follows the face configuration and the file
  PreprocessConfig other = cfg;
  other.faces.detector.min_face_size = 30;
  EXPECT_NE(cache.key(*dir_ / "face.avi", other), key);
  other = cfg;
  other.min_frames = 99;  // applied after the cache: same key
  EXPECT_EQ(cache.key(*dir_ / "face.avi", other), key);
  fs::copy_file(*dir_ / "face.avi", c / "copy.avi");
  EXPECT_NE(cache.key(c / "copy.avi", cfg), key);
  EXPECT_TRUE(cache.key(c / "nope.avi", cfg).empty());
  // features
  std::vector<dfd::Feature> f(3, dfd::Feature(dfd::kFeatureDim));
  for (size_t i = 0; i < f.size(); ++i)
    for (int k = 0; k < dfd::kFeatureDim; ++k) f[i][size_t(k)] = float(i) + float(k) * 1e-3f;
  cache.store_features("feat-key", f);
  std::vector<dfd::Feature> g;
  ASSERT_TRUE(cache.load_features("feat-key", g));
  EXPECT_EQ(g, f);
  EXPECT_FALSE(cache.load_features("other-key", g));
}

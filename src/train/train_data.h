// Training data for deepfake-train, without LibTorch: the dataset listing,
// the train/validation/test split, and the preprocessing of each video into
// face-crop sequences with the element's own face code (dfd::FaceStage:
// detector, tracker, crop), cached on disk so later runs do not decode again.
#pragma once
#include <cstdint>
#include <opencv2/core.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "analysis/feature.h"
#include "analysis/stream_analyzer.h"

namespace dfd::train {

// A problem with the dataset itself (layout, labels, classes): the tool
// prints it as one line and exits non-zero.
struct DatasetError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct VideoItem {
  std::string path;  // as opened
  std::string id;    // path relative to the dataset root (what the split hashes)
  bool fake = false;
};

struct Dataset {
  std::string source;       // the directory or CSV file given
  std::string layout;       // "directory" or "csv"
  std::vector<VideoItem> items;
  std::vector<std::string> ignored;  // files under real/ or fake/ without a video extension
};

// A directory holding real/ and fake/ (videos found recursively, by
// extension), or a CSV file of `file,label` rows (label REAL or FAKE, any
// case; an optional header row; paths relative to the CSV's directory).
// Throws DatasetError naming the problem: missing path, neither layout,
// a bad CSV row or label, no videos at all.
// With include_images, still images (.jpg .jpeg .png .bmp .webp) count as
// items too (deepfake-eval scores them; training needs videos).
Dataset list_dataset(const std::string& path, bool include_images = false);

bool has_video_extension(const std::string& path);
bool has_image_extension(const std::string& path);

enum class Split { Train, Validation, Test };
const char* to_string(Split s);

// Deterministic, stratified split by video: within each class the videos are
// ordered by a hash of (id, seed); the first round(fraction * n) go to
// validation (at least one when the class has two or more videos and the
// fraction is > 0), the next ones to test, the rest to training. The same
// dataset and seed always give the same split, whatever the listing order.
std::vector<Split> split_videos(const std::vector<VideoItem>& items, double val_fraction, double test_fraction,
                                uint64_t seed);

// 64-bit FNV-1a of a string, as 16 hex digits.
std::string hash_hex(const std::string& s);
uint64_t hash64(const std::string& s);

struct PreprocessConfig {
  AnalyzerConfig faces;     // detector, tracker, interval, detect_interval, crop_margin (window fields unused)
  int64_t max_frames = 0;   // decode at most this many frames from the start (0 = whole video)
  int min_frames = 20;      // a track needs this many crops to be used
  bool all_tracks = false;  // every long-enough track, not only the longest
  std::string describe() const;  // every field that changes the crops (the cache key)
};

struct FaceSequence {
  uint64_t track_id = 0;
  std::vector<int64_t> frame_indices;
  std::vector<cv::Rect> boxes;
  std::vector<cv::Mat> crops;  // 112x112 BGR CV_8UC3
};

enum class VideoStatus { Ok, Unreadable, NoFrames, NoFace, TooShort };
const char* to_string(VideoStatus s);

struct PreprocessResult {
  VideoStatus status = VideoStatus::Ok;
  std::string message;       // why it is unusable, for the report
  int64_t frames_decoded = 0;
  std::vector<FaceSequence> tracks;  // usable tracks, longest first
  bool from_cache = false;
};

// Decodes `path` with OpenCV's FFmpeg backend, runs FaceStage on every
// frame and gathers every track's crops (longest first; min_frames and
// all_tracks are applied by select_tracks, so the cache holds the raw
// result). Never throws for a bad video: the status says what went wrong.
// `progress` (may be null) is called with the frame count now and then;
// returning false stops early (status Unreadable, message "interrupted").
using FrameProgress = bool (*)(void* user, int64_t frames);
PreprocessResult preprocess_video(const std::string& path, const PreprocessConfig& config,
                                  FrameProgress progress = nullptr, void* user = nullptr);

// Applies min_frames and all_tracks to a raw result: status TooShort when no
// track is long enough; only the longest track unless all_tracks.
void select_tracks(PreprocessResult& r, const PreprocessConfig& config);

// The crop cache: one file per (video path, size, mtime, config).
class CropCache {
 public:
  explicit CropCache(std::string dir);  // creates the directory; throws std::runtime_error when it cannot
  // The key of a video, from its path, size and modification time; empty if it cannot be stat'ed.
  std::string key(const std::string& path, const PreprocessConfig& config) const;
  bool load(const std::string& key, PreprocessResult& out) const;
  void store(const std::string& key, const PreprocessResult& r) const;  // best effort; atomic rename
  // Backbone features of one sequence (keyed by the crop key, track, variant and model checksum).
  bool load_features(const std::string& key, std::vector<Feature>& out) const;
  void store_features(const std::string& key, const std::vector<Feature>& f) const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

}  // namespace dfd::train

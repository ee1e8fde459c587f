// deepfake-bench: per-stage timings of the library on a clip, and clip
// generation for bench/run. Speed is measured here and printed, never
// asserted.
//   deepfake-bench clip   --portrait PNG --out X.avi [--width W --height H --faces N --frames N --codec MJPG|FFV1]
//   deepfake-bench stages --clip X.avi --model M [--width W --height H --faces N]
//                         [--detect-interval K] [--detect-max-side S] [--detector haar|lbp] [--scale-factor F] [--threads T] [--json OUT]
#include <sys/resource.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <string>
#include <vector>

#include "clip_maker.h"
#include "faces/crop.h"
#include "faces/face_detector.h"
#include "model/model.h"
#include "faces/tracker.h"

using namespace dfd;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::map<std::string, std::string> parse(int argc, char** argv) {
  std::map<std::string, std::string> m;
  for (int i = 2; i + 1 < argc; i += 2) m[argv[i]] = argv[i + 1];
  return m;
}

int geti(const std::map<std::string, std::string>& m, const std::string& k, int def) {
  auto it = m.find(k);
  return it == m.end() ? def : std::stoi(it->second);
}

bench::ClipSpec spec_of(const std::map<std::string, std::string>& a) {
  bench::ClipSpec s;
  s.width = geti(a, "--width", 1280);
  s.height = geti(a, "--height", 720);
  s.faces = geti(a, "--faces", 1);
  s.frames = geti(a, "--frames", 300);
  if (a.count("--codec")) s.fourcc = a.at("--codec");
  return s;
}

// A face counts as found on a frame when some box's centre lies in its portrait.
int found(const std::vector<cv::Rect>& truth, const std::vector<cv::Rect>& boxes) {
  int n = 0;
  for (auto& t : truth)
    for (auto& b : boxes)
      if (t.contains(cv::Point(b.x + b.width / 2, b.y + b.height / 2))) {
        ++n;
        break;
      }
  return n;
}

long peak_rss_kb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

int cmd_stages(const std::map<std::string, std::string>& a) {
  const bench::ClipSpec spec = spec_of(a);
  ModelOptions mo;
  mo.num_threads = geti(a, "--threads", 2);
  auto t0 = Clock::now();
  auto model = Model::load(a.at("--model"), mo);
  const double load_ms = ms_since(t0);

  FaceDetectorConfig fast;
  fast.detect_max_side = geti(a, "--detect-max-side", 480);
  fast.max_faces = 8;
  if (a.count("--min-face-size")) fast.min_face_size = std::stoi(a.at("--min-face-size"));
  if (a.count("--detector")) fast.kind = detector_kind_from_string(a.at("--detector"));
  if (a.count("--scale-factor")) fast.scale_factor = std::stof(a.at("--scale-factor"));
  FaceDetectorConfig full;  // the baseline's detector: Haar on the full frame
  full.detect_max_side = 0;
  auto det_fast = FaceDetector::create(fast);
  auto det_full = FaceDetector::create(full);
  const int k = geti(a, "--detect-interval", 3);
  Tracker tracker;
  int64_t last_detect = -1;

  cv::VideoCapture cap(a.at("--clip"));
  if (!cap.isOpened()) throw std::runtime_error("cannot open " + a.at("--clip"));
  double decode_ms = 0, full_ms = 0, fast_ms = 0, track_ms = 0, crop_ms = 0;
  int frames = 0, full_frames = 0, detect_runs = 0, truth_faces = 0, found_faces = 0, full_truth = 0, full_found = 0;
  std::vector<cv::Mat> crops;
  cv::Mat frame;
  while (true) {
    t0 = Clock::now();
    if (!cap.read(frame)) break;
    decode_ms += ms_since(t0);
    auto truth = bench::portrait_boxes(spec, frames);
    if (frames < 30) {  // the baseline's way, on a sample: full frame, every frame
      t0 = Clock::now();
      auto d = det_full->detect(frame);
      full_ms += ms_since(t0);
      ++full_frames;
      std::vector<cv::Rect> b;
      for (auto& x : d) b.push_back(x.box);
      full_truth += int(truth.size());
      full_found += found(truth, b);
    }
    std::vector<Track> live;
    if (frames % k == 0) {
      t0 = Clock::now();
      auto d = det_fast->detect(frame);
      fast_ms += ms_since(t0);
      ++detect_runs;
      t0 = Clock::now();
      live = tracker.update(d, frames);
      last_detect = frames;
      track_ms += ms_since(t0);
    } else {
      t0 = Clock::now();
      live = tracker.coast(frames);
      track_ms += ms_since(t0);
    }
    std::vector<cv::Rect> boxes;
    t0 = Clock::now();
    for (auto& t : live) {
      if (t.last_seen != last_detect) continue;  // as FaceStage: only tracks the last detection confirmed
      boxes.push_back(t.box);
      crops.push_back(crop_face(frame, t.box));
    }
    crop_ms += ms_since(t0);
    truth_faces += int(truth.size());
    found_faces += found(truth, boxes);
    ++frames;
  }
  if (crops.empty()) throw std::runtime_error("no face crops: nothing to time");

  // Backbone: batched by 8 over all crops (at most 160), and one at a time.
  const size_t nb = std::min<size_t>(crops.size(), 160);
  model->features({crops[0]});  // warm-up: oneDNN primitives, thread pool
  t0 = Clock::now();
  std::vector<Feature> feats;
  for (size_t i = 0; i < nb; i += 8) {
    std::vector<cv::Mat> b(crops.begin() + long(i), crops.begin() + long(std::min(nb, i + 8)));
    auto f = model->features(b);
    feats.insert(feats.end(), f.begin(), f.end());
  }
  const double bb8 = ms_since(t0) / double(nb);
  const size_t n1 = std::min<size_t>(nb, 24);
  t0 = Clock::now();
  for (size_t i = 0; i < n1; ++i) model->features({crops[i]});
  const double bb1 = ms_since(t0) / double(n1);

  // Head: the reference per-frame step for 20 frames in one batch, and the
  // temporal recurrence over one 20-frame window and over 4 windows at once.
  std::vector<const Feature*> w20;
  for (size_t i = 0; i < 20; ++i) w20.push_back(&feats[i % feats.size()]);
  model->classify_frames(w20);
  t0 = Clock::now();
  for (int r = 0; r < 5; ++r) model->classify_frames(w20);
  const double ref20 = ms_since(t0) / 5;
  model->classify_windows({w20}, HeadMode::Temporal);
  t0 = Clock::now();
  for (int r = 0; r < 3; ++r) model->classify_windows({w20}, HeadMode::Temporal);
  const double temp1 = ms_since(t0) / 3;
  t0 = Clock::now();
  for (int r = 0; r < 3; ++r) model->classify_windows({w20, w20, w20, w20}, HeadMode::Temporal);
  const double temp4 = ms_since(t0) / 3;

  nlohmann::json j;
  j["clip"] = {{"width", spec.width}, {"height", spec.height}, {"faces", spec.faces}, {"frames", frames}};
  j["threads"] = mo.num_threads;
  j["model_load_ms"] = load_ms;
  j["decode_ms_per_frame"] = decode_ms / frames;
  j["detect_full_frame_every_frame_ms"] = full_ms / std::max(full_frames, 1);
  j["detect_full_frame_rate"] = double(full_found) / std::max(full_truth, 1);
  j["detect_ms_per_run"] = fast_ms / std::max(detect_runs, 1);
  j["detect_interval"] = k;
  j["detect_max_side"] = fast.detect_max_side;
  j["min_face_size"] = fast.min_face_size;
  j["detect_ms_per_frame"] = (fast_ms + track_ms) / frames;
  j["detection_rate"] = double(found_faces) / std::max(truth_faces, 1);
  j["crop_ms_per_frame"] = crop_ms / frames;
  j["backbone_ms_per_crop_batch8"] = bb8;
  j["backbone_ms_per_crop_single"] = bb1;
  j["head_reference_ms_per_20_frames"] = ref20;
  j["head_temporal_ms_per_20_frame_window"] = temp1;
  j["head_temporal_ms_per_window_4_batched"] = temp4 / 4;
  j["crops"] = crops.size();
  j["peak_rss_mb"] = peak_rss_kb() / 1024.0;
  const std::string out = a.count("--json") ? a.at("--json") : "-";
  if (out == "-") {
    std::cout << j.dump(2) << "\n";
  } else {
    std::ofstream(out) << j.dump(2) << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: deepfake-bench clip|stages ...\n";
    return 1;
  }
  try {
    auto a = parse(argc, argv);
    const std::string cmd = argv[1];
    if (cmd == "clip") {
      int n = bench::make_clip(a.at("--portrait"), a.at("--out"), spec_of(a));
      std::cout << "wrote " << a.at("--out") << " (" << n << " frames)\n";
      return 0;
    }
    if (cmd == "stages") return cmd_stages(a);
    throw std::invalid_argument("unknown command " + cmd);
  } catch (const std::out_of_range&) {
    std::cerr << "deepfake-bench: error: missing a required option\n";
  } catch (const std::exception& e) {
    std::cerr << "deepfake-bench: error: " << e.what() << "\n";
  }
  return 1;
}

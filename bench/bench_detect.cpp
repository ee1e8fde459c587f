// deepfake-bench-detect: face detection settings side by side, on the real
// face stage (dfd::FaceStage: detection, tracking, crops as the element
// makes them). Prints figures, asserts nothing.
//
//   deepfake-bench-detect [--dev DIR] [--synthetic WxH,...] [--portrait PNG]
//                         [--frames N] [--configs NAME,...] [--json OUT]
//
// --dev DIR: every video below DIR (the dev clips: one face in almost every
//   frame, no boxes given). A frame counts as found when the stage puts at
//   least one face box on it (detected or tracked); boxes per frame show
//   false faces.
// --synthetic: clips made here (bench/clip_maker: the fixture portrait
//   drifting over a textured background, one face, MJPG) at each size; a face
//   counts as found when some box's centre lies inside its true box.
// Configs are named KIND-SIDE-INTERVAL: haar-480-1 is the old element
// default (Haar cascade, frame downscaled to 480 px but never so far that a
// 40 px face falls below its window, detection every frame); yunet-320-2 is
// YuNet on a copy whose longer side is 320 px, detection every 2nd frame,
// tracking in between; yunet-320-1-0.6 sets YuNet's score threshold. Times are per call of FaceStage::process, decoding
// excluded; "per detection" is the mean over the frames where the detector
// ran (detection + tracking + crops), "per frame" over all frames; CPU is
// the process's CPU time over the same calls (all threads), which other
// load on the machine skews less than wall time.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/videoio.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "analysis/stream_analyzer.h"
#include "clip_maker.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Config {
  std::string name;
  dfd::DetectorKind kind;
  int max_side, interval;
  float score_threshold = -1;  // YuNet; negative: the detector's default
};

Config parse_config(const std::string& name) {
  std::stringstream ss(name);
  std::string kind, side, interval, threshold;
  if (!std::getline(ss, kind, '-') || !std::getline(ss, side, '-') || !std::getline(ss, interval, '-'))
    throw std::invalid_argument("config '" + name + "' is not KIND-SIDE-INTERVAL[-THRESHOLD]");
  Config c{name, dfd::detector_kind_from_string(kind), std::stoi(side), std::stoi(interval)};
  if (std::getline(ss, threshold)) c.score_threshold = std::stof(threshold);
  return c;
}

struct Clip {
  std::string name, path;
  bool synthetic = false;
  dfd::bench::ClipSpec spec;  // synthetic only: where the faces are
};

struct Result {
  int frames = 0, width = 0, height = 0;
  int detect_runs = 0;
  double detect_frame_ms = 0, total_ms = 0;
  double cpu_ms = 0;  // process CPU time (every thread: OpenCV's DNN runs on a pool), less skewed by other load
  int frames_found = 0;            // dev: frames with a box; synthetic: faces found
  int truth = 0;                   // synthetic: faces present
  int boxes = 0, false_boxes = 0;  // false: synthetic only (centre in no true box)
  int tracks = 0, long_tracks = 0;  // distinct track ids; those on 5 frames or more
};

double cpu_ms_now() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

bool centre_in(const cv::Rect& box, const cv::Rect& r) {
  return r.contains(cv::Point(box.x + box.width / 2, box.y + box.height / 2));
}

Result run(const Clip& clip, const Config& cfg, int max_frames) {
  dfd::AnalyzerConfig c;
  c.detector.kind = cfg.kind;
  c.detector.detect_max_side = cfg.max_side;
  c.detect_interval = cfg.interval;
  if (cfg.score_threshold >= 0) c.detector.score_threshold = cfg.score_threshold;
  c.window_size = 1;  // as the element with MesoNet: every crop its own window
  c.crop_size = 256;
  c.crop_margin = 0.2f;
  dfd::FaceStage stage(c);
  cv::VideoCapture cap(clip.path);
  if (!cap.isOpened()) throw std::runtime_error("cannot open " + clip.path);
  Result r;
  std::map<uint64_t, int> track_frames;
  cv::Mat frame;
  while (r.frames < max_frames && cap.read(frame)) {
    dfd::FrameTimes t;
    t.index = r.frames;
    const double c0 = cpu_ms_now();
    const auto t0 = Clock::now();
    const dfd::FaceStageOutput out = stage.process(frame, t);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    r.cpu_ms += cpu_ms_now() - c0;
    r.total_ms += ms;
    if (out.detector_ran) {
      ++r.detect_runs;
      r.detect_frame_ms += ms;
    }
    r.width = frame.cols;
    r.height = frame.rows;
    r.boxes += int(out.faces.size());
    for (const auto& f : out.faces) ++track_frames[f.track_id];
    if (clip.synthetic) {
      const auto truth = dfd::bench::portrait_boxes(clip.spec, r.frames);
      r.truth += int(truth.size());
      for (const auto& tr : truth)
        for (const auto& f : out.faces)
          if (centre_in(f.box, tr)) {
            ++r.frames_found;
            break;
          }
      for (const auto& f : out.faces) {
        bool hit = false;
        for (const auto& tr : truth) hit = hit || centre_in(f.box, tr);
        r.false_boxes += !hit;
      }
    } else {
      r.truth += 1;
      r.frames_found += !out.faces.empty();
    }
    ++r.frames;
  }
  r.tracks = int(track_frames.size());
  for (const auto& kv : track_frames) r.long_tracks += kv.second >= 5;
  return r;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');)
    if (!x.empty()) out.push_back(x);
  return out;
}

nlohmann::json to_json(const Result& r) {
  return {{"frames", r.frames},
          {"size", std::to_string(r.width) + "x" + std::to_string(r.height)},
          {"detect_runs", r.detect_runs},
          {"ms_per_detection", r.detect_runs ? r.detect_frame_ms / r.detect_runs : 0.0},
          {"ms_per_frame", r.frames ? r.total_ms / r.frames : 0.0},
          {"cpu_ms_per_frame", r.frames ? r.cpu_ms / r.frames : 0.0},
          {"found", r.frames_found},
          {"truth", r.truth},
          {"recall", r.truth ? double(r.frames_found) / r.truth : 0.0},
          {"boxes_per_frame", r.frames ? double(r.boxes) / r.frames : 0.0},
          {"false_boxes", r.false_boxes},
          {"tracks", r.tracks},
          {"tracks_5_frames_or_more", r.long_tracks}};
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> a;
  for (int i = 1; i + 1 < argc; i += 2) a[argv[i]] = argv[i + 1];
  if (argc % 2 == 0 || (!a.count("--dev") && !a.count("--synthetic"))) {
    std::cerr << "usage: deepfake-bench-detect [--dev DIR] [--synthetic 1280x720,1920x1080 --portrait PNG] "
                 "[--frames N] [--configs haar-480-1,yunet-320-2,...] [--json OUT]\n";
    return 1;
  }
  try {
    const int max_frames = a.count("--frames") ? std::stoi(a.at("--frames")) : 300;
    std::vector<Config> configs;
    for (const auto& n : split(a.count("--configs") ? a.at("--configs") : "haar-480-1,yunet-480-1,yunet-320-1,yunet-320-2,yunet-320-3"))
      configs.push_back(parse_config(n));

    std::vector<Clip> clips;
    if (a.count("--dev")) {
      std::vector<fs::path> found;
      for (const auto& e : fs::recursive_directory_iterator(a.at("--dev")))
        if (e.is_regular_file() && (e.path().extension() == ".mp4" || e.path().extension() == ".avi")) found.push_back(e.path());
      std::sort(found.begin(), found.end());
      for (const auto& p : found) clips.push_back({p.stem().string(), p.string(), false, {}});
    }
    if (a.count("--synthetic")) {
      const std::string dir = fs::temp_directory_path() / ("dfd-bench-detect-" + std::to_string(::getpid()));
      fs::create_directories(dir);
      for (const auto& size : split(a.at("--synthetic"))) {
        Clip c;
        c.synthetic = true;
        if (std::sscanf(size.c_str(), "%dx%d", &c.spec.width, &c.spec.height) != 2)
          throw std::invalid_argument("bad size " + size);
        c.spec.frames = max_frames;
        c.name = "synthetic-" + size;
        c.path = dir + "/" + size + ".avi";
        dfd::bench::make_clip(a.at("--portrait"), c.path, c.spec);
        clips.push_back(c);
      }
    }

    nlohmann::json j = nlohmann::json::object();
    std::map<std::string, Result> sum;  // per config, over the dev clips
    std::cout << std::fixed << std::setprecision(2);
    for (const auto& clip : clips) {
      for (const auto& cfg : configs) {
        const Result r = run(clip, cfg, max_frames);
        const nlohmann::json rj = to_json(r);
        j[clip.name][cfg.name] = rj;
        std::cout << clip.name << " " << rj["size"].get<std::string>() << " " << cfg.name << ": "
                  << rj["ms_per_detection"].get<double>() << " ms/detection, " << rj["ms_per_frame"].get<double>()
                  << " ms/frame (CPU " << rj["cpu_ms_per_frame"].get<double>() << "), recall " << rj["recall"].get<double>() << " (" << r.frames_found << "/" << r.truth
                  << "), boxes/frame " << rj["boxes_per_frame"].get<double>() << ", tracks " << r.tracks
                  << " (" << rj["tracks_5_frames_or_more"].get<int>() << " of 5+ frames)";
        if (clip.synthetic) std::cout << ", false boxes " << r.false_boxes;
        std::cout << "\n";
        if (!clip.synthetic) {
          Result& s = sum[cfg.name];
          s.frames += r.frames;
          s.detect_runs += r.detect_runs;
          s.detect_frame_ms += r.detect_frame_ms;
          s.total_ms += r.total_ms;
          s.cpu_ms += r.cpu_ms;
          s.frames_found += r.frames_found;
          s.truth += r.truth;
          s.boxes += r.boxes;
          s.tracks += r.tracks;
          s.long_tracks += r.long_tracks;
        }
      }
    }
    for (const auto& [name, s] : sum) {
      const nlohmann::json sj = to_json(s);
      j["dev-total"][name] = sj;
      std::cout << "dev clips, all frames, " << name << ": " << sj["ms_per_detection"].get<double>() << " ms/detection, "
                << sj["ms_per_frame"].get<double>() << " ms/frame (CPU " << sj["cpu_ms_per_frame"].get<double>()
                << "), recall " << sj["recall"].get<double>() << " ("
                << s.frames_found << "/" << s.truth << "), boxes/frame " << sj["boxes_per_frame"].get<double>()
                << ", tracks " << s.tracks << " (" << sj["tracks_5_frames_or_more"].get<int>()
                << " of 5+ frames)\n";
    }
    if (a.count("--json")) std::ofstream(a.at("--json")) << j.dump(2) << "\n";
    if (a.count("--synthetic")) fs::remove_all(fs::path(clips.back().path).parent_path());
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "deepfake-bench-detect: error: " << e.what() << "\n";
    return 1;
  }
}

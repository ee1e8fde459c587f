// deepfake-bench-precision: what a reduced precision changes, side by side
// with float32 on the same crops: P(FAKE) per crop (mean, p99 and largest
// change, verdicts flipped), per clip (mean P(FAKE), verdict, and the AUC of
// the clips' scores when their paths say fake/ or real/), and crops/s at
// batch 1 and 4 (rounds alternate between the two precisions so a busy
// machine slows both alike). It prints figures; it asserts nothing.
//   deepfake-bench-precision [--model M] [--precision int8] [--every K] [--json OUT] INPUT...
// INPUT: a picture (a face crop, used whole), a video (faces found and
// cropped as the element does: YuNet every 5th frame, tracking between;
// every Kth frame's crops, default 5), or a directory of either.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>
#include <string>
#include <vector>

#include "analysis/stream_analyzer.h"
#include "model/family.h"

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

struct Options {
  std::string model, precision = "int8", json;
  int every = 5;
  std::vector<std::string> inputs;
};

struct Input {
  std::string path;
  int label = -1;  // 1 fake, 0 real, -1 unknown (from a fake/ or real/ folder in the path)
  std::vector<cv::Mat> crops;
};

bool has_ext(const fs::path& p, std::initializer_list<const char*> exts) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  for (const char* x : exts)
    if (e == x) return true;
  return false;
}
bool is_picture(const fs::path& p) { return has_ext(p, {".jpg", ".jpeg", ".png"}); }
bool is_video(const fs::path& p) { return has_ext(p, {".mp4", ".avi", ".mkv", ".mov", ".webm"}); }

int label_of(const std::string& path) {
  if (path.find("/fake/") != std::string::npos) return 1;
  if (path.find("/real/") != std::string::npos) return 0;
  return -1;
}

// The crops the element would score on a video: its face stage with the
// model's crop size and margin, one crop per window.
std::vector<cv::Mat> video_crops(const std::string& path, const dfd::DetectorInfo& info, int every) {
  dfd::AnalyzerConfig c;
  c.window_size = 1;
  c.crop_size = info.input_size;
  c.crop_margin = info.crop_margin;
  c.interval = every;
  dfd::FaceStage stage(c);
  cv::VideoCapture cap(path);
  if (!cap.isOpened()) throw std::runtime_error("cannot open " + path);
  std::vector<cv::Mat> crops;
  cv::Mat frame;
  for (int64_t i = 0; cap.read(frame); ++i) {
    dfd::FrameTimes t;
    t.index = i;
    for (auto& w : stage.process(frame, t).windows)
      for (auto& f : w.frames) crops.push_back(f.crop);
  }
  return crops;
}

std::vector<Input> gather(const Options& o, const dfd::DetectorInfo& info) {
  std::vector<std::string> files;
  for (const auto& in : o.inputs) {
    if (fs::is_directory(in)) {
      for (const auto& e : fs::recursive_directory_iterator(in))
        if (e.is_regular_file() && (is_picture(e.path()) || is_video(e.path()))) files.push_back(e.path().string());
    } else {
      files.push_back(in);
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<Input> out;
  for (const auto& f : files) {
    Input in{f, label_of(f), {}};
    if (is_picture(f)) {
      cv::Mat img = cv::imread(f);
      if (img.empty()) throw std::runtime_error("not a picture: " + f);
      in.crops.push_back(img);
    } else {
      in.crops = video_crops(f, info, o.every);
    }
    std::fprintf(stderr, "%s: %zu crops\n", f.c_str(), in.crops.size());
    if (!in.crops.empty()) out.push_back(std::move(in));
  }
  return out;
}

std::vector<double> p_fake(const dfd::Detector& d, const std::vector<cv::Mat>& crops) {
  std::vector<double> out;
  for (size_t from = 0; from < crops.size(); from += 32) {
    const std::vector<cv::Mat> part(crops.begin() + from, crops.begin() + std::min(crops.size(), from + 32));
    const auto feats = d.features(part);
    std::vector<const dfd::Feature*> ptrs;
    for (const auto& f : feats) ptrs.push_back(&f);
    for (const auto& p : d.classify_frames(ptrs)) out.push_back(p.prob_fake);
  }
  return out;
}

// Crops per second through features() in batches of `batch`, over `crops`.
double crops_per_s(const dfd::Detector& d, const std::vector<cv::Mat>& crops, size_t batch) {
  const auto t0 = Clock::now();
  for (size_t from = 0; from + batch <= crops.size(); from += batch)
    d.features(std::vector<cv::Mat>(crops.begin() + from, crops.begin() + from + batch));
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  return double(crops.size() / batch * batch) / s;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Area under the ROC curve of scores against labels (1 = fake), ties half.
double auc(const std::vector<double>& score, const std::vector<int>& label) {
  double pairs = 0, wins = 0;
  for (size_t i = 0; i < score.size(); ++i)
    for (size_t j = 0; j < score.size(); ++j)
      if (label[i] == 1 && label[j] == 0) {
        pairs += 1;
        wins += score[i] > score[j] ? 1 : score[i] == score[j] ? 0.5 : 0;
      }
  return pairs > 0 ? wins / pairs : NAN;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--model") o.model = next();
    else if (a == "--precision") o.precision = next();
    else if (a == "--every") o.every = std::stoi(next());
    else if (a == "--json") o.json = next();
    else if (!a.empty() && a[0] == '-') throw std::invalid_argument("unknown option " + a);
    else o.inputs.push_back(a);
  }
  if (o.inputs.empty()) throw std::invalid_argument("no INPUT");
  if (o.model.empty()) o.model = dfd::find_default_model();
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    o = parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deepfake-bench-precision: %s\nusage: deepfake-bench-precision [--model M] "
                         "[--precision int8|bf16] [--every K] [--json OUT] INPUT...\n", e.what());
    return 2;
  }
  dfd::ModelOptions f32, low;
  low.precision = o.precision;
  const auto ref = dfd::load_detector(o.model, f32);
  const auto t_load = Clock::now();
  const auto red = dfd::load_detector(o.model, low);
  const double load_s = std::chrono::duration<double>(Clock::now() - t_load).count();
  const auto inputs = gather(o, ref->info());

  // P(FAKE) per crop and per input.
  std::vector<double> diffs, clip_a, clip_b;
  std::vector<int> labels;
  int crop_flips = 0, clip_flips = 0;
  nlohmann::json per_input = nlohmann::json::array();
  std::vector<cv::Mat> all;
  for (const auto& in : inputs) {
    const auto a = p_fake(*ref, in.crops), b = p_fake(*red, in.crops);
    double ma = 0, mb = 0, largest = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      diffs.push_back(std::fabs(a[i] - b[i]));
      largest = std::max(largest, diffs.back());
      crop_flips += (a[i] > 0.5) != (b[i] > 0.5);
      ma += a[i] / a.size();
      mb += b[i] / b.size();
    }
    clip_flips += (ma > 0.5) != (mb > 0.5);
    clip_a.push_back(ma);
    clip_b.push_back(mb);
    labels.push_back(in.label);
    per_input.push_back({{"input", in.path}, {"label", in.label}, {"crops", a.size()}, {"p_fake_fp32", ma},
                         {"p_fake_" + o.precision, mb}, {"largest_change", largest}});
    std::printf("%-50s %4zu crops  P(FAKE) fp32 %.4f  %s %.4f  largest change %.4f\n", in.path.c_str(), a.size(), ma,
                o.precision.c_str(), mb, largest);
    all.insert(all.end(), in.crops.begin(), in.crops.end());
  }
  std::vector<double> sorted = diffs;
  std::sort(sorted.begin(), sorted.end());
  double mean = 0;
  for (double d : diffs) mean += d / diffs.size();
  const double p99 = sorted.empty() ? 0 : sorted[std::min(sorted.size() - 1, size_t(0.99 * sorted.size()))];
  const double largest = sorted.empty() ? 0 : sorted.back();

  // Speed: alternate rounds over up to 64 crops.
  std::vector<cv::Mat> bench(all.begin(), all.begin() + std::min<size_t>(all.size(), 64));
  std::map<std::string, std::vector<double>> rates;
  for (int round = 0; round < 5 && !bench.empty(); ++round)
    for (size_t batch : {size_t(1), size_t(4)}) {
      rates["fp32@" + std::to_string(batch)].push_back(crops_per_s(*ref, bench, batch));
      rates[o.precision + "@" + std::to_string(batch)].push_back(crops_per_s(*red, bench, batch));
    }

  std::printf("\n%zu crops from %zu inputs; %s against fp32:\n", diffs.size(), inputs.size(), o.precision.c_str());
  std::printf("  |change in P(FAKE)| per crop: mean %.4f, p99 %.4f, largest %.4f; verdicts flipped %d of %zu crops, "
              "%d of %zu inputs (mean P(FAKE) > 0.5)\n",
              mean, p99, largest, crop_flips, diffs.size(), clip_flips, inputs.size());
  const double auc_a = auc(clip_a, labels), auc_b = auc(clip_b, labels);
  if (!std::isnan(auc_a)) std::printf("  AUC of the inputs' mean P(FAKE): fp32 %.3f, %s %.3f\n", auc_a, o.precision.c_str(), auc_b);
  nlohmann::json speed;
  for (size_t batch : {size_t(1), size_t(4)}) {
    const double a = median(rates["fp32@" + std::to_string(batch)]);
    const double b = median(rates[o.precision + "@" + std::to_string(batch)]);
    std::printf("  crops/s at batch %zu: fp32 %.1f, %s %.1f (%.2fx)\n", batch, a, o.precision.c_str(), b, b / a);
    speed["batch" + std::to_string(batch)] = {{"fp32", a}, {o.precision, b}};
  }
  std::printf("  load with %s: %.3f s\n", o.precision.c_str(), load_s);
  if (!o.json.empty()) {
    nlohmann::json j = {{"model", o.model}, {"precision", o.precision}, {"crops", diffs.size()},
                        {"mean_change", mean}, {"p99_change", p99}, {"largest_change", largest},
                        {"crop_flips", crop_flips}, {"input_flips", clip_flips}, {"speed", speed},
                        {"load_s", load_s}, {"inputs", per_input}};
    if (!std::isnan(auc_a)) j["auc"] = {{"fp32", auc_a}, {o.precision, auc_b}};
    std::ofstream(o.json) << j.dump(2) << "\n";
  }
  return 0;
}

#include "train/train_data.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <sstream>
#include <unistd.h>

namespace fs = std::filesystem;

namespace dfd::train {

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

// One CSV row: commas separate fields; a field may be double-quoted ("" inside quotes is a quote).
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') cur += '"', ++i;
      else if (c == '"') quoted = false;
      else cur += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.push_back(trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(trim(cur));
  return out;
}

int label_of(const std::string& s) {  // 1 fake, 0 real, -1 neither
  const std::string l = lower(trim(s));
  if (l == "fake") return 1;
  if (l == "real") return 0;
  return -1;
}

Dataset list_directory(const fs::path& root, bool include_images) {
  Dataset d;
  d.source = root.string();
  d.layout = "directory";
  fs::path real, fake;
  for (const auto& e : fs::directory_iterator(root)) {
    if (!e.is_directory()) continue;
    const std::string n = lower(e.path().filename().string());
    if (n == "real") real = e.path();
    if (n == "fake") fake = e.path();
  }
  if (real.empty() && fake.empty())
    throw DatasetError("dataset directory '" + root.string() +
                       "' has neither a real/ nor a fake/ subdirectory (expected real/ and fake/ holding videos, "
                       "or a CSV file of file,label rows)");
  for (const auto& [dir, is_fake] : {std::pair{real, false}, std::pair{fake, true}}) {
    if (dir.empty()) continue;
    std::vector<fs::path> files;
    for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink);
         it != fs::recursive_directory_iterator(); ++it)
      if (it->is_regular_file()) files.push_back(it->path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      const std::string id = fs::relative(f, root).generic_string();
      if (!has_video_extension(f.string()) && !(include_images && has_image_extension(f.string()))) {
        d.ignored.push_back(id);
        continue;
      }
      d.items.push_back({f.string(), id, is_fake});
    }
  }
  if (d.items.empty())
    throw DatasetError("no videos found under '" + root.string() + "/real' or '" + root.string() +
                       "/fake' (looked for .mp4 .avi .mov .mkv .webm .m4v .mpg .mpeg .ts .wmv .flv)");
  return d;
}

Dataset list_csv(const fs::path& csv) {
  Dataset d;
  d.source = csv.string();
  d.layout = "csv";
  std::ifstream in(csv);
  if (!in) throw DatasetError("cannot read CSV file '" + csv.string() + "'");
  const fs::path base = csv.parent_path();
  std::string line;
  int lineno = 0, file_col = 0, label_col = 1;
  bool first = true;
  std::map<std::string, bool> seen;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (lineno == 1 && line.size() >= 3 && (unsigned char)line[0] == 0xEF) line = line.substr(3);  // BOM
    if (trim(line).empty() || trim(line)[0] == '#') continue;
    auto f = csv_fields(line);
    if (first) {
      first = false;
      // A header names the columns; otherwise column 0 is the file, column 1 the label.
      bool header = true;
      for (auto& s : f) header &= label_of(s) < 0;
      if (header && f.size() >= 2) {
        file_col = label_col = -1;
        for (size_t i = 0; i < f.size(); ++i) {
          const std::string n = lower(f[i]);
          if (label_col < 0 && n == "label") label_col = int(i);
          if (file_col < 0 && (n == "file" || n == "filename" || n == "path" || n == "video" || n == "uri"))
            file_col = int(i);
        }
        if (label_col < 0 || file_col < 0)
          throw DatasetError(csv.string() + ":1: header must name a file column (file, filename, path, video) and a label column");
        continue;
      }
    }
    if (int(f.size()) <= std::max(file_col, label_col))
      throw DatasetError(csv.string() + ":" + std::to_string(lineno) + ": expected file,label, got '" + line + "'");
    const int lab = label_of(f[size_t(label_col)]);
    if (lab < 0)
      throw DatasetError(csv.string() + ":" + std::to_string(lineno) + ": label '" + f[size_t(label_col)] +
                         "' is neither REAL nor FAKE");
    const std::string file = f[size_t(file_col)];
    if (file.empty()) throw DatasetError(csv.string() + ":" + std::to_string(lineno) + ": empty file name");
    fs::path p(file);
    if (p.is_relative()) p = base / p;
    const std::string id = fs::path(file).lexically_normal().generic_string();
    auto it = seen.find(id);
    if (it != seen.end()) {
      if (it->second != (lab == 1))
        throw DatasetError(csv.string() + ":" + std::to_string(lineno) + ": '" + file + "' is listed as both REAL and FAKE");
      continue;  // a repeated row
    }
    seen[id] = lab == 1;
    d.items.push_back({p.string(), id, lab == 1});
  }
  if (d.items.empty()) throw DatasetError("CSV file '" + csv.string() + "' lists no videos");
  return d;
}

// --- little binary helpers for the cache files
struct Writer {
  std::ofstream& o;
  void u64(uint64_t v) { o.write(reinterpret_cast<const char*>(&v), 8); }
  void i64(int64_t v) { o.write(reinterpret_cast<const char*>(&v), 8); }
  void i32(int32_t v) { o.write(reinterpret_cast<const char*>(&v), 4); }
  void str(const std::string& s) {
    u64(s.size());
    o.write(s.data(), std::streamsize(s.size()));
  }
  void bytes(const void* p, size_t n) { o.write(static_cast<const char*>(p), std::streamsize(n)); }
};

struct Reader {
  std::ifstream& in;
  bool ok = true;
  template <class T>
  T get() {
    T v{};
    if (!in.read(reinterpret_cast<char*>(&v), sizeof v)) ok = false;
    return v;
  }
  std::string str(size_t max = size_t(1) << 30) {
    const uint64_t n = get<uint64_t>();
    if (!ok || n > max) {
      ok = false;
      return {};
    }
    std::string s(size_t(n), '\0');
    if (!in.read(s.data(), std::streamsize(n))) ok = false;
    return s;
  }
};

constexpr char kCropMagic[8] = {'D', 'F', 'D', 'C', 'R', 'O', 'P', '1'};
constexpr char kFeatMagic[8] = {'D', 'F', 'D', 'F', 'E', 'A', 'T', '1'};

void atomic_write(const fs::path& path, const std::function<void(Writer&)>& fill) {
  const fs::path tmp = path.string() + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream o(tmp, std::ios::binary | std::ios::trunc);
    if (!o) return;
    Writer w{o};
    fill(w);
    if (!o) {
      o.close();
      std::error_code ec;
      fs::remove(tmp, ec);
      return;
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) fs::remove(tmp, ec);
}

}  // namespace

bool has_image_extension(const std::string& path) {
  static const char* exts[] = {".jpg", ".jpeg", ".png", ".bmp", ".webp"};
  std::string lower = fs::path(path).extension().string();
  for (auto& ch : lower) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  for (const char* e : exts)
    if (lower == e) return true;
  return false;
}

bool has_video_extension(const std::string& path) {
  static const char* exts[] = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv"};
  const std::string e = lower(fs::path(path).extension().string());
  for (auto* x : exts)
    if (e == x) return true;
  return false;
}

Dataset list_dataset(const std::string& path, bool include_images) {
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) throw DatasetError("dataset '" + path + "' does not exist");
  if (fs::is_directory(st)) return list_directory(fs::path(path), include_images);
  if (fs::is_regular_file(st)) {
    if (has_video_extension(path))
      throw DatasetError("dataset '" + path + "' is a single video; give a directory with real/ and fake/ or a CSV file");
    return list_csv(fs::path(path));
  }
  throw DatasetError("dataset '" + path + "' is neither a directory nor a CSV file");
}

const char* to_string(Split s) {
  switch (s) {
    case Split::Train: return "train";
    case Split::Validation: return "validation";
    case Split::Test: return "test";
  }
  return "?";
}

uint64_t hash64(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string hash_hex(const std::string& s) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(hash64(s)));
  return buf;
}

namespace {
// splitmix64's finaliser: every input bit reaches every output bit, so a new
// seed reorders the videos completely (FNV-1a alone does not).
uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
}  // namespace

std::vector<Split> split_videos(const std::vector<VideoItem>& items, double val_fraction, double test_fraction,
                                uint64_t seed) {
  if (!(val_fraction >= 0 && test_fraction >= 0 && val_fraction + test_fraction < 1))
    throw std::invalid_argument("validation and test fractions must be >= 0 and sum to less than 1");
  std::vector<Split> out(items.size(), Split::Train);
  for (bool cls : {false, true}) {
    std::vector<std::pair<uint64_t, size_t>> order;
    for (size_t i = 0; i < items.size(); ++i)
      if (items[i].fake == cls) order.emplace_back(mix64(hash64(items[i].id) ^ mix64(seed + 0x5EEDull)), i);
    std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : items[a.second].id < items[b.second].id;
    });
    const int64_t n = int64_t(order.size());
    int64_t nv = std::llround(val_fraction * double(n));
    if (val_fraction > 0 && nv == 0 && n >= 2) nv = 1;
    nv = std::max<int64_t>(0, std::min(nv, n - 1));
    int64_t nt = std::llround(test_fraction * double(n));
    if (test_fraction > 0 && nt == 0 && n - nv >= 2) nt = 1;
    nt = std::max<int64_t>(0, std::min(nt, n - nv - 1));
    for (int64_t k = 0; k < n; ++k)
      out[order[size_t(k)].second] = k < nv ? Split::Validation : (k < nv + nt ? Split::Test : Split::Train);
  }
  return out;
}

std::string PreprocessConfig::describe() const {
  std::ostringstream o;
  const auto& d = faces.detector;
  o << "detector=" << to_string(d.kind) << ",model=" << d.model_path << ",max_side=" << d.detect_max_side
    << ",min_face=" << d.min_face_size << ",max_faces=" << d.max_faces << ",score=" << d.score_threshold
    << ",iou=" << faces.tracker.iou_threshold << ",unseen=" << faces.tracker.max_unseen
    << ",interval=" << faces.interval << ",detect_interval=" << faces.detect_interval
    << ",margin=" << faces.crop_margin << ",max_frames=" << max_frames;
  if (faces.crop_size != 112) o << ",size=" << faces.crop_size;  // MesoNet's 256; 112 keeps older cache keys
  return o.str();
}

const char* to_string(VideoStatus s) {
  switch (s) {
    case VideoStatus::Ok: return "ok";
    case VideoStatus::Unreadable: return "unreadable";
    case VideoStatus::NoFrames: return "no frames";
    case VideoStatus::NoFace: return "no face";
    case VideoStatus::TooShort: return "too short";
  }
  return "?";
}

PreprocessResult preprocess_video(const std::string& path, const PreprocessConfig& config, FrameProgress progress,
                                  void* user) {
  PreprocessResult r;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    r.status = VideoStatus::Unreadable;
    r.message = fs::exists(path, ec) ? "not a regular file" : "file does not exist";
    return r;
  }
  AnalyzerConfig ac = config.faces;
  ac.window_size = 1;  // every crop comes out at once, as a one-frame window
  ac.window_stride = 1;
  FaceStage stage(ac);
  std::map<uint64_t, FaceSequence> seqs;
  auto take = [&](const std::vector<WindowJob>& jobs) {
    for (const auto& job : jobs)
      for (const auto& f : job.frames) {
        auto& s = seqs[job.track_id];
        s.track_id = job.track_id;
        s.frame_indices.push_back(f.times.index);
        s.boxes.push_back(f.box);
        s.crops.push_back(f.crop);
      }
  };
  try {
    cv::VideoCapture cap;
    if (!cap.open(path, cv::CAP_FFMPEG)) {
      r.status = VideoStatus::Unreadable;
      r.message = "cannot be opened as a video by FFmpeg (not a video, or no decoder for it)";
      return r;
    }
    cv::Mat frame, bgr;
    while (config.max_frames <= 0 || r.frames_decoded < config.max_frames) {
      if (!cap.read(frame) || frame.empty()) break;
      if (frame.type() == CV_8UC3) bgr = frame;
      else if (frame.type() == CV_8UC1) cv::cvtColor(frame, bgr, cv::COLOR_GRAY2BGR);
      else if (frame.type() == CV_8UC4) cv::cvtColor(frame, bgr, cv::COLOR_BGRA2BGR);
      else frame.convertTo(bgr, CV_8UC3);
      FrameTimes t;
      t.index = r.frames_decoded;
      take(stage.process(bgr, t).windows);
      ++r.frames_decoded;
      if (progress && r.frames_decoded % 8 == 0 && !progress(user, r.frames_decoded)) {
        r.status = VideoStatus::Unreadable;
        r.message = "interrupted";
        return r;
      }
    }
    take(stage.finish());
  } catch (const cv::Exception& e) {
    r.status = VideoStatus::Unreadable;
    r.message = std::string("decoding failed: ") + e.what();
    return r;
  }
  if (r.frames_decoded == 0) {
    r.status = VideoStatus::NoFrames;
    r.message = "no frame could be decoded";
    return r;
  }
  std::vector<FaceSequence> all;
  for (auto& [id, s] : seqs) all.push_back(std::move(s));
  std::stable_sort(all.begin(), all.end(), [](const FaceSequence& a, const FaceSequence& b) { return a.crops.size() > b.crops.size(); });
  if (all.empty()) {
    r.status = VideoStatus::NoFace;
    r.message = "no face found in " + std::to_string(r.frames_decoded) + " frames";
    return r;
  }
  r.tracks = std::move(all);
  return r;
}

void select_tracks(PreprocessResult& r, const PreprocessConfig& config) {
  if (r.status != VideoStatus::Ok || r.tracks.empty()) return;
  const size_t longest = r.tracks.front().crops.size();
  std::vector<FaceSequence> keep;
  for (auto& s : r.tracks)
    if (int64_t(s.crops.size()) >= config.min_frames) keep.push_back(std::move(s));
  r.tracks = std::move(keep);
  if (r.tracks.empty()) {
    r.status = VideoStatus::TooShort;
    r.message = "longest face track has " + std::to_string(longest) + " crops, fewer than the " +
                std::to_string(config.min_frames) + " needed (" + std::to_string(r.frames_decoded) + " frames decoded)";
    return;
  }
  if (!config.all_tracks) r.tracks.resize(1);
}

CropCache::CropCache(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(fs::path(dir_) / "crops", ec);
  fs::create_directories(fs::path(dir_) / "features", ec);
  if (!fs::is_directory(fs::path(dir_) / "crops") || !fs::is_directory(fs::path(dir_) / "features"))
    throw std::runtime_error("cannot create cache directory '" + dir_ + "'");
}

std::string CropCache::key(const std::string& path, const PreprocessConfig& config) const {
  std::error_code ec;
  const fs::path abs = fs::absolute(path, ec);
  const auto size = fs::file_size(path, ec);
  if (ec) return {};
  const auto mtime = fs::last_write_time(path, ec);
  if (ec) return {};
  std::ostringstream o;
  o << "crops-v1|" << abs.lexically_normal().string() << "|" << size << "|"
    << mtime.time_since_epoch().count() << "|" << config.describe();
  return o.str();
}

bool CropCache::load(const std::string& key, PreprocessResult& out) const {
  if (key.empty()) return false;
  std::ifstream in(fs::path(dir_) / "crops" / (hash_hex(key) + ".bin"), std::ios::binary);
  if (!in) return false;
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, kCropMagic, 8) != 0) return false;
  Reader rd{in};
  if (rd.str() != key || !rd.ok) return false;
  PreprocessResult r;
  r.status = static_cast<VideoStatus>(rd.get<int32_t>());
  r.message = rd.str();
  r.frames_decoded = rd.get<int64_t>();
  const uint64_t ntracks = rd.get<uint64_t>();
  if (!rd.ok || ntracks > 100000) return false;
  for (uint64_t t = 0; t < ntracks && rd.ok; ++t) {
    FaceSequence s;
    s.track_id = rd.get<uint64_t>();
    const uint64_t n = rd.get<uint64_t>();
    if (!rd.ok || n > 10000000) return false;
    for (uint64_t i = 0; i < n && rd.ok; ++i) {
      s.frame_indices.push_back(rd.get<int64_t>());
      const int32_t x = rd.get<int32_t>(), y = rd.get<int32_t>(), w = rd.get<int32_t>(), h = rd.get<int32_t>();
      s.boxes.emplace_back(x, y, w, h);
      const std::string png = rd.str(size_t(1) << 24);
      if (!rd.ok) return false;
      cv::Mat crop = cv::imdecode(cv::Mat(1, int(png.size()), CV_8UC1, const_cast<char*>(png.data())), cv::IMREAD_COLOR);
      if (crop.empty()) return false;
      s.crops.push_back(crop);
    }
    r.tracks.push_back(std::move(s));
  }
  if (!rd.ok) return false;
  r.from_cache = true;
  out = std::move(r);
  return true;
}

void CropCache::store(const std::string& key, const PreprocessResult& r) const {
  if (key.empty()) return;
  atomic_write(fs::path(dir_) / "crops" / (hash_hex(key) + ".bin"), [&](Writer& w) {
    w.bytes(kCropMagic, 8);
    w.str(key);
    w.i32(int32_t(r.status));
    w.str(r.message);
    w.i64(r.frames_decoded);
    w.u64(r.tracks.size());
    std::vector<uchar> png;
    for (const auto& s : r.tracks) {
      w.u64(s.track_id);
      w.u64(s.crops.size());
      for (size_t i = 0; i < s.crops.size(); ++i) {
        w.i64(s.frame_indices[i]);
        w.i32(s.boxes[i].x);
        w.i32(s.boxes[i].y);
        w.i32(s.boxes[i].width);
        w.i32(s.boxes[i].height);
        cv::imencode(".png", s.crops[i], png, {cv::IMWRITE_PNG_COMPRESSION, 1});  // lossless
        w.str(std::string(png.begin(), png.end()));
      }
    }
  });
}

bool CropCache::load_features(const std::string& key, std::vector<Feature>& out) const {
  std::ifstream in(fs::path(dir_) / "features" / (hash_hex(key) + ".bin"), std::ios::binary);
  if (!in) return false;
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, kFeatMagic, 8) != 0) return false;
  Reader rd{in};
  if (rd.str() != key || !rd.ok) return false;
  const uint64_t n = rd.get<uint64_t>(), dim = rd.get<uint64_t>();
  if (!rd.ok || dim != uint64_t(kFeatureDim) || n > 10000000) return false;
  std::vector<Feature> f(size_t(n), Feature(static_cast<size_t>(dim)));
  for (auto& v : f)
    if (!in.read(reinterpret_cast<char*>(v.data()), std::streamsize(dim * sizeof(float)))) return false;
  out = std::move(f);
  return true;
}

void CropCache::store_features(const std::string& key, const std::vector<Feature>& f) const {
  atomic_write(fs::path(dir_) / "features" / (hash_hex(key) + ".bin"), [&](Writer& w) {
    w.bytes(kFeatMagic, 8);
    w.str(key);
    w.u64(f.size());
    w.u64(uint64_t(kFeatureDim));
    for (const auto& v : f) w.bytes(v.data(), v.size() * sizeof(float));
  });
}

}  // namespace dfd::train

#include "train/train_pipeline.h"

#include <algorithm>
#include <type_traits>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <set>
#include <sstream>

#include "model/architecture.h"
#include "dfd_config.h"
#include "train/log_format.h"
#include "train/metrics.h"
#include "model/model.h"
#include "train/self_blend.h"
#include "train/torchvision_backbone.h"
#include "checkpoint/state_dict.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace dfd::train {

namespace {

// A progress bar on stderr, redrawn at most ten times a second.
class Bar {
 public:
  Bar(bool on, std::string label, int64_t total) : on_(on), label_(std::move(label)), total_(total), start_(Clock::now()) {
    if (on_) draw(0, "");
  }
  ~Bar() { finish(); }
  void update(int64_t done, const std::string& note = "") {
    if (!on_) return;
    auto now = Clock::now();
    if (done < total_ && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    draw(done, note);
  }
  void finish() {
    if (!on_ || finished_) return;
    finished_ = true;
    std::cerr << "\r\033[K" << std::flush;
  }

 private:
  void draw(int64_t done, const std::string& note) {
    constexpr int width = 28;
    const int64_t t = std::max<int64_t>(total_, 1);
    const int filled = int(std::min<int64_t>(width, done * width / t));
    std::string bar(size_t(filled), '#');
    bar.resize(width, '.');
    std::ostringstream o;
    o << "\r\033[K" << label_ << " [" << bar << "] " << done << "/" << total_;
    const double el = seconds_since(start_);
    if (done > 0 && done < total_) o << " eta " << int(el / double(done) * double(total_ - done)) << "s";
    else o << " " << int(el) << "s";
    if (!note.empty()) o << "  " << (note.size() > 48 ? "..." + note.substr(note.size() - 45) : note);
    std::cerr << o.str() << std::flush;
  }
  bool on_;
  bool finished_ = false;
  std::string label_;
  int64_t total_;
  Clock::time_point start_, last_{};
};

struct Sequence {
  size_t video = 0;  // index into the dataset items
  bool fake = false;
  bool self_blended = false;
  Split split = Split::Train;
  uint64_t track_id = 0;
  std::string crop_key;
  std::vector<cv::Mat> crops;     // kept while needed
  std::vector<Feature> features;  // one per crop
  size_t length() const { return std::max(crops.size(), features.size()); }
};

struct WindowRef {
  size_t seq;
  size_t start;
};

// The element's windows over a track of `len` crops (FaceStage with
// window_stride = window_size): [0, W), [W, 2W), ... and, when crops are left
// over, a last window of the final W crops.
std::vector<size_t> eval_starts(size_t len, size_t W) {
  std::vector<size_t> s;
  if (len < W) return s;
  size_t st = 0;
  for (; st + W <= len; st += W) s.push_back(st);
  if (s.back() + W < len) s.push_back(len - W);
  return s;
}

std::vector<size_t> train_starts(size_t len, size_t W, size_t stride) {
  std::vector<size_t> s;
  if (len < W) return s;
  for (size_t st = 0; st + W <= len; st += stride) s.push_back(st);
  if (s.back() + W < len) s.push_back(len - W);
  return s;
}

// An epoch's order: each class shuffled, then merged so that every stretch
// of the order (every batch) holds the classes in the proportion of the whole
// epoch. Random batches of a few windows swing between mostly-real and
// mostly-fake, and with non-negative (post-ReLU) features that pushes every
// logit back and forth; stratified batches leave the difference to learn.
std::vector<WindowRef> stratified_order(const std::vector<WindowRef>& windows, const std::vector<Sequence>& seqs,
                                        std::mt19937_64& rng) {
  std::vector<WindowRef> cls[2];
  for (const auto& w : windows) cls[seqs[w.seq].fake ? 0 : 1].push_back(w);
  for (auto& c : cls) std::shuffle(c.begin(), c.end(), rng);
  std::vector<WindowRef> out;
  out.reserve(windows.size());
  size_t i[2] = {0, 0};
  const double n0 = double(cls[0].size()), n1 = double(cls[1].size());
  // Take next from the class that is furthest behind its share; ties by a coin.
  while (i[0] < cls[0].size() || i[1] < cls[1].size()) {
    const double p0 = n0 > 0 ? (double(i[0]) + 0.5) / n0 : 2, p1 = n1 > 0 ? (double(i[1]) + 0.5) / n1 : 2;
    int c = p0 < p1 ? 0 : (p1 < p0 ? 1 : int(rng() & 1));
    if (i[size_t(c)] >= cls[c].size()) c = 1 - c;
    out.push_back(cls[c][i[size_t(c)]++]);
  }
  return out;
}

struct Level {
  std::vector<float> p;
  std::vector<bool> fake;
  void add(float prob, bool f) {
    p.push_back(prob);
    fake.push_back(f);
  }
};

struct Scores {
  Level frame, window, video;
  std::vector<Prediction> window_preds;  // in window order (for the export check)
};

using WindowPredictor = std::function<std::vector<Prediction>(const std::vector<FeatureWindowRef>&)>;
using FramePredictor = std::function<std::vector<Prediction>(const std::vector<const Feature*>&)>;

// Scores of sequences `idx` at window and video level (and frame level when
// `frames` is given). Video level: each track's window probabilities
// aggregated as the element does, the video as fake as its worst track.
Scores score(const std::vector<Sequence>& seqs, const std::vector<size_t>& idx, size_t W, Aggregation agg,
             const WindowPredictor& windows, const FramePredictor* frames) {
  Scores s;
  std::vector<FeatureWindowRef> ws;
  std::vector<size_t> owner;
  for (size_t i : idx) {
    const auto& q = seqs[i];
    for (size_t st : eval_starts(q.features.size(), W)) {
      FeatureWindowRef w;
      for (size_t k = st; k < st + W; ++k) w.push_back(&q.features[k]);
      ws.push_back(std::move(w));
      owner.push_back(i);
    }
  }
  for (size_t b = 0; b < ws.size(); b += 64) {
    std::vector<FeatureWindowRef> part(ws.begin() + long(b), ws.begin() + long(std::min(ws.size(), b + 64)));
    auto p = windows(part);
    s.window_preds.insert(s.window_preds.end(), p.begin(), p.end());
  }
  // video key: (video, self_blended) -> worst track aggregate
  std::map<std::pair<size_t, bool>, float> video;
  std::map<size_t, VerdictAggregator> track;  // by sequence
  for (size_t k = 0; k < ws.size(); ++k) {
    const auto& q = seqs[owner[k]];
    s.window.add(s.window_preds[k].prob_fake, q.fake);
    track.try_emplace(owner[k], agg, 0.3f).first->second.add(s.window_preds[k].prob_fake);
  }
  for (auto& [i, a] : track) {
    auto key = std::make_pair(seqs[i].video, seqs[i].self_blended);
    auto it = video.find(key);
    if (it == video.end()) video[key] = a.value();
    else it->second = std::max(it->second, a.value());
  }
  for (auto& [key, p] : video) {
    bool fake = false;
    for (size_t i : idx)
      if (seqs[i].video == key.first && seqs[i].self_blended == key.second) fake = seqs[i].fake;
    s.video.add(p, fake);
  }
  if (frames) {
    for (size_t i : idx) {
      const auto& q = seqs[i];
      for (size_t b = 0; b < q.features.size(); b += 256) {
        std::vector<const Feature*> f;
        for (size_t k = b; k < std::min(q.features.size(), b + 256); ++k) f.push_back(&q.features[k]);
        for (auto& p : (*frames)(f)) s.frame.add(p.prob_fake, q.fake);
      }
    }
  }
  return s;
}

json level_json(const Level& l, float threshold) {
  return json::parse(metrics::summarize(l.p, l.fake, threshold).to_json());
}

void print_table(std::ostream& out, const std::string& title, const Scores& s, float threshold) {
  out << title << "\n";
  out << "  level    n  real  fake   acc  balacc    AUC    EER  logloss   real>R real>F fake>R fake>F\n";
  for (auto [name, l] : {std::pair<const char*, const Level*>{"frame", &s.frame}, {"window", &s.window}, {"video", &s.video}}) {
    if (l->p.empty()) continue;
    auto m = metrics::summarize(l->p, l->fake, threshold);
    out << "  " << std::left << std::setw(6) << name << std::right << std::setw(6) << m.n << std::setw(6) << m.n_real
        << std::setw(6) << m.n_fake << std::setw(6) << fmt(m.accuracy, 3) << std::setw(8) << fmt(m.balanced_accuracy, 3)
        << std::setw(7) << fmt(m.auc, 3) << std::setw(7) << fmt(m.eer, 3) << std::setw(9) << fmt(m.log_loss, 4)
        << std::setw(9) << m.cm.real_as_real << std::setw(7) << m.cm.real_as_fake << std::setw(7) << m.cm.fake_as_real
        << std::setw(7) << m.cm.fake_as_fake << "\n";
  }
}

float parse_threshold_rule(const std::string& rule) {  // NaN for eer/accuracy
  if (rule == "eer" || rule == "accuracy") return std::numeric_limits<float>::quiet_NaN();
  try {
    size_t pos = 0;
    const float v = std::stof(rule, &pos);
    if (pos == rule.size() && v >= 0.f && v <= 1.f) return v;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument("--threshold must be eer, accuracy or a number in [0, 1], got '" + rule + "'");
}

std::string basename_no_ext(const std::string& p) { return fs::path(p).stem().string(); }

// Feature cache key of a sequence for a given backbone.
std::string feature_key(const Sequence& q, const std::string& variant, const Model& m) {
  const auto& c = m.card();
  std::ostringstream o;
  o << "features-v1|" << q.crop_key << "|track=" << q.track_id << "|" << variant << "|model=" << m.checksum()
    << "|" << c.channel_order << "|" << c.mean[0] << "," << c.mean[1] << "," << c.mean[2] << "|" << c.std[0] << ","
    << c.std[1] << "," << c.std[2];
  return o.str();
}

std::string split_counts(const std::vector<Sequence>& seqs, Split sp) {
  std::set<size_t> real, fake, sbi;
  for (auto& q : seqs) {
    if (q.split != sp) continue;
    (q.self_blended ? sbi : (q.fake ? fake : real)).insert(q.video);
  }
  std::ostringstream o;
  o << real.size() << " real, " << fake.size() << " fake";
  if (!sbi.empty()) o << " + " << sbi.size() << " self-blended";
  return o.str();
}

}  // namespace

int run(const TrainOptions& opt, const TrainIO& io) {
  std::ostream& out = io.out ? *io.out : std::cout;
  std::ostream& log = io.log ? *io.log : std::cerr;
  auto stopped = [&] { return io.stop && io.stop->load(); };
  const bool evaluate_only = !opt.evaluate_model.empty();
  const auto t_start = Clock::now();

  // ---- options
  if (opt.data.empty()) throw std::invalid_argument("--data DIR|CSV is required");
  if (!evaluate_only && !opt.preprocess_only && opt.out.empty()) throw std::invalid_argument("--out MODEL.safetensors is required");
  if (opt.window < 1) throw std::invalid_argument("--window must be >= 1");
  if (opt.epochs < 0) throw std::invalid_argument("--epochs must be >= 0");
  if (opt.batch_size < 1) throw std::invalid_argument("--batch-size must be >= 1");
  if (opt.train_stride < 0) throw std::invalid_argument("--train-stride must be >= 1 (0 = window)");
  if (opt.prep.min_frames < 0) throw std::invalid_argument("--min-frames must be >= 1 (0 = the window)");
  if (opt.select != "best" && opt.select != "last") throw std::invalid_argument("--select must be best or last");
  if (opt.threshold_level != "frame" && opt.threshold_level != "window" && opt.threshold_level != "video")
    throw std::invalid_argument("--threshold-level must be frame, window or video");
  const float fixed_threshold = parse_threshold_rule(opt.threshold_rule);
  if (!evaluate_only && opt.prep.min_frames > 0 && opt.prep.min_frames < opt.window)
    throw std::invalid_argument("--min-frames (" + std::to_string(opt.prep.min_frames) + ") must be at least --window (" +
                                std::to_string(opt.window) + ")");
  std::string out_dir = opt.out_dir;
  if (out_dir.empty()) {
    const std::string base = !opt.out.empty() ? opt.out : (evaluate_only ? opt.evaluate_model : opt.data);
    out_dir = (fs::path(base).parent_path() / (basename_no_ext(base) + ".train")).string();
  }
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (!fs::is_directory(out_dir)) throw std::runtime_error("cannot create output directory '" + out_dir + "'");
  if (opt.resume && (!fs::exists(fs::path(out_dir) / "checkpoint.pt") || !fs::exists(fs::path(out_dir) / "train_state.json")))
    throw std::runtime_error("--resume: no checkpoint in '" + out_dir + "' (expected checkpoint.pt and train_state.json)");
  if (!opt.init_backbone.empty() && (!opt.init_model.empty() || evaluate_only))
    throw std::invalid_argument("--init-backbone gives an untrained model its backbone; it does not combine with --init-model or --evaluate");
  for (const auto& [flag, path] : {std::pair{"--init-model", opt.init_model}, std::pair{"--evaluate", opt.evaluate_model},
                                   std::pair{"--init-backbone", opt.init_backbone}})
    if (!path.empty() && !fs::is_regular_file(path)) throw std::runtime_error(std::string(flag) + " '" + path + "' does not exist");
  CropCache cache(opt.cache_dir.empty() ? (fs::path(out_dir) / "cache").string() : opt.cache_dir);

  // ---- dataset
  Dataset ds = list_dataset(opt.data);
  size_t n_real = 0, n_fake = 0;
  for (auto& it : ds.items) (it.fake ? n_fake : n_real)++;
  out << "dataset: " << ds.source << " (" << ds.layout << "): " << ds.items.size() << " videos, " << n_real << " real, "
      << n_fake << " fake\n";
  if (!ds.ignored.empty())
    log << "deepfake-train: ignored " << ds.ignored.size() << " file(s) without a video extension, e.g. " << ds.ignored.front() << "\n";
  if (!evaluate_only) {
    if (n_real == 0) throw DatasetError("the dataset has only FAKE videos (" + std::to_string(n_fake) + "); REAL videos are needed too");
    if (n_fake == 0 && !opt.self_blend)
      throw DatasetError("the dataset has only REAL videos (" + std::to_string(n_real) +
                         "); FAKE videos are needed too, or pass --self-blend to make fakes from the real ones");
  }

  // A model to evaluate is loaded first: its card's window sets the shortest usable track.
  ModelOptions mo;
  mo.num_threads = opt.trainer.threads;
  std::shared_ptr<const Model> model;
  if (evaluate_only) model = Model::load(opt.evaluate_model, mo);

  // ---- the starting (or evaluated) model
  StateDict start_sd;
  ModelCard start_card;
  std::string start_desc;
  if (evaluate_only) {
    start_card = model->card();
    start_desc = opt.evaluate_model;
  } else if (!opt.init_model.empty()) {
    Checkpoint ck = read_checkpoint(opt.init_model);
    try {
      validate_state_dict(ck.tensors);
    } catch (const std::exception& e) {
      throw std::runtime_error(opt.init_model + ": " + e.what());
    }
    if (ck.card) start_card = *ck.card;
    else start_card.trained = true;  // a published-style .pt
    start_sd = std::move(ck.tensors);
    model = Model::from_state_dict(start_sd, start_card, mo);
    start_desc = opt.init_model + " (" + (start_card.trained ? "trained" : "UNTRAINED") + ", checksum " + model->checksum() + ")";
  } else {
    start_sd = untrained_state_dict(opt.init_seed);
    start_card = Model::untrained_card(opt.init_seed);
    start_desc = "untrained random weights, seed " + std::to_string(opt.init_seed);
    if (!opt.init_backbone.empty()) {
      // ImageNet weights were learnt on RGB input (torchvision's order).
      load_torchvision_backbone(start_sd, opt.init_backbone);
      start_card.channel_order = "RGB";
      start_desc = "backbone from torchvision state dict " + opt.init_backbone + " (ImageNet layout, RGB input), head " + start_desc;
    }
    model = Model::from_state_dict(start_sd, start_card, mo);
  }
  // The backbone is trained when the starting model is, or when it came from torchvision.
  const bool backbone_trained = start_card.trained || !opt.init_backbone.empty();
  if (!evaluate_only && !backbone_trained)
    log << "deepfake-train: note: the starting backbone is UNTRAINED (random weights): its features carry little "
           "information, so expect a weak model unless --finetune-backbone or --init-model gives it a trained backbone\n";

  const std::string start_checksum = model->checksum();
  PreprocessConfig prep = opt.prep;
  if (prep.min_frames == 0) prep.min_frames = evaluate_only ? model->card().window_size : opt.window;

  // ---- preprocessing: decode, detect, track, crop (cached)
  try {
    FaceStage probe(prep.faces);  // a bad detector configuration fails here, once
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("face detector: ") + e.what());
  }
  struct Skip {
    std::string id, reason, detail;
  };
  std::vector<Skip> skipped;
  std::vector<Sequence> seqs;
  size_t cached = 0;
  {
    Bar bar(io.progress, "preprocess", int64_t(ds.items.size()));
    struct Ctx {
      Bar* bar;
      const std::string* id;
      int64_t done;
      const TrainIO* io;
    } ctx{&bar, nullptr, 0, &io};
    auto cb = [](void* u, int64_t frames) -> bool {
      auto* c = static_cast<Ctx*>(u);
      c->bar->update(c->done, *c->id + " frame " + std::to_string(frames));
      return !(c->io->stop && c->io->stop->load());
    };
    for (size_t i = 0; i < ds.items.size(); ++i) {
      const auto& item = ds.items[i];
      ctx.id = &item.id;
      ctx.done = int64_t(i);
      bar.update(int64_t(i), item.id);
      if (stopped()) break;
      const std::string key = cache.key(item.path, prep);
      PreprocessResult r;
      if (cache.load(key, r)) {
        ++cached;
      } else {
        r = preprocess_video(item.path, prep, cb, &ctx);
        if (stopped()) break;
        cache.store(key, r);
      }
      select_tracks(r, prep);
      if (r.status != VideoStatus::Ok) {
        skipped.push_back({item.id, to_string(r.status), r.message});
        continue;
      }
      for (auto& t : r.tracks) {
        Sequence q;
        q.video = i;
        q.fake = item.fake;
        q.track_id = t.track_id;
        q.crop_key = key;
        q.crops = std::move(t.crops);
        seqs.push_back(std::move(q));
      }
    }
    bar.update(int64_t(ds.items.size()));
  }
  if (stopped()) {
    log << "deepfake-train: interrupted during preprocessing; the videos done so far are cached in " << cache.dir()
        << ", run the same command again to continue\n";
    return 130;
  }
  out << "preprocessed " << ds.items.size() << " videos (" << cached << " from the cache): " << (ds.items.size() - skipped.size())
      << " usable, " << skipped.size() << " skipped\n";
  if (!skipped.empty()) {
    log << "deepfake-train: skipped " << skipped.size() << " of " << ds.items.size() << " videos:\n";
    for (auto& s : skipped) log << "  " << s.id << ": " << s.reason << " (" << s.detail << ")\n";
  }
  size_t use_real = 0, use_fake = 0;
  {
    std::set<size_t> r, f;
    for (auto& q : seqs) (q.fake ? f : r).insert(q.video);
    use_real = r.size();
    use_fake = f.size();
  }
  if (seqs.empty())
    throw DatasetError("no usable video: all " + std::to_string(ds.items.size()) +
                       " were skipped (unreadable, no face, or fewer than " + std::to_string(prep.min_frames) + " face crops)");
  if (!evaluate_only) {
    if (use_real == 0)
      throw DatasetError("only FAKE videos are usable (" + std::to_string(use_fake) + "); every REAL video was skipped");
    if (use_fake == 0 && !opt.self_blend)
      throw DatasetError("only REAL videos are usable (" + std::to_string(use_real) +
                         "); every FAKE video was skipped (or pass --self-blend)");
  }

  // ---- split (over usable videos, stratified, by a hash of the path and the seed)
  if (evaluate_only) {
    for (auto& q : seqs) q.split = Split::Test;
  } else {
    std::vector<VideoItem> usable;
    std::vector<size_t> map_back;
    std::set<size_t> seen;
    for (auto& q : seqs)
      if (seen.insert(q.video).second) {
        usable.push_back(ds.items[q.video]);
        map_back.push_back(q.video);
      }
    auto sp = split_videos(usable, opt.val_fraction, opt.test_fraction, opt.seed);
    std::map<size_t, Split> by_video;
    for (size_t k = 0; k < usable.size(); ++k) by_video[map_back[k]] = sp[k];
    for (auto& q : seqs) q.split = by_video[q.video];
  }

  // ---- self-blended fakes: for every real sequence of the training split,
  // and of the held-out splits when they hold no fake video of their own.
  if (opt.self_blend && !evaluate_only) {
    std::map<Split, bool> has_fake;
    for (auto& q : seqs)
      if (q.fake) has_fake[q.split] = true;
    const size_t n = seqs.size();
    for (size_t i = 0; i < n; ++i) {
      const Sequence& r = seqs[i];
      if (r.fake || (r.split != Split::Train && has_fake[r.split])) continue;
      Sequence f;
      f.video = r.video;
      f.fake = true;
      f.self_blended = true;
      f.split = r.split;
      f.track_id = r.track_id;
      f.crop_key = r.crop_key;
      const auto params = draw_self_blend_params(hash64(ds.items[r.video].id + "|" + std::to_string(r.track_id) + "|" + std::to_string(opt.seed)));
      for (auto& c : r.crops) f.crops.push_back(self_blend(c, params));
      seqs.push_back(std::move(f));
    }
  }
  auto variant_of = [&](const Sequence& q) {
    return q.self_blended ? "self-blend-v1:" + std::to_string(opt.seed) : std::string("original");
  };

  // ---- backbone features (cached), unless the backbone itself is trained
  const bool finetune = opt.trainer.finetune_backbone && !evaluate_only;
  auto compute_features = [&](const std::function<std::vector<Feature>(const std::vector<cv::Mat>&)>& fn,
                              const std::vector<size_t>& which, bool use_cache, const char* label) -> bool {
    int64_t total = 0, done = 0;
    std::vector<size_t> todo;
    for (size_t i : which) {
      auto& q = seqs[i];
      q.features.clear();
      if (use_cache && cache.load_features(feature_key(q, variant_of(q), *model), q.features) && q.features.size() == q.crops.size())
        continue;
      q.features.clear();
      todo.push_back(i);
      total += int64_t(q.crops.size());
    }
    Bar bar(io.progress && total > 0, label, total);
    for (size_t i : todo) {
      auto& q = seqs[i];
      for (size_t b = 0; b < q.crops.size(); b += size_t(opt.feature_batch)) {
        if (stopped()) return false;
        std::vector<cv::Mat> part(q.crops.begin() + long(b), q.crops.begin() + long(std::min(q.crops.size(), b + size_t(opt.feature_batch))));
        auto f = fn(part);
        q.features.insert(q.features.end(), f.begin(), f.end());
        done += int64_t(part.size());
        bar.update(done, ds.items[q.video].id);
      }
      if (use_cache) cache.store_features(feature_key(q, variant_of(q), *model), q.features);
    }
    return true;
  };
  std::vector<size_t> all_idx(seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) all_idx[i] = i;
  const auto t_feat = Clock::now();
  if (!finetune) {
    if (!compute_features([&](const std::vector<cv::Mat>& c) { return model->features(c); }, all_idx, true, "features  ")) {
      log << "deepfake-train: interrupted while computing features; finished sequences are cached in " << cache.dir() << "\n";
      return 130;
    }
    for (auto& q : seqs) std::vector<cv::Mat>().swap(q.crops);  // features are all we need now
    if (!evaluate_only) model.reset();  // the starting backbone's work is done (its tensors stay in start_sd)
  }
  const double feature_seconds = seconds_since(t_feat);
  if (opt.preprocess_only) {
    out << "preprocessing done: " << seqs.size() << " face sequences cached in " << cache.dir() << "\n";
    return 0;
  }

  const size_t W = size_t(evaluate_only ? model->card().window_size : opt.window);
  std::vector<size_t> idx_train, idx_val, idx_test;
  for (size_t i = 0; i < seqs.size(); ++i)
    (seqs[i].split == Split::Train ? idx_train : seqs[i].split == Split::Validation ? idx_val : idx_test).push_back(i);

  json report;
  report["tool"] = std::string("deepfake-train ") + DFD_VERSION;
  json jd;
  jd["source"] = ds.source;
  jd["layout"] = ds.layout;
  jd["videos"] = ds.items.size();
  jd["real"] = n_real;
  jd["fake"] = n_fake;
  jd["usable_real"] = use_real;
  jd["usable_fake"] = use_fake;
  jd["ignored_files"] = ds.ignored.size();
  jd["skipped"] = json::array();
  for (auto& s : skipped) jd["skipped"].push_back({{"video", s.id}, {"reason", s.reason}, {"detail", s.detail}});
  jd["self_blend"] = opt.self_blend;
  jd["preprocess"] = prep.describe();
  jd["min_frames"] = prep.min_frames;
  jd["tracks"] = prep.all_tracks ? "all" : "longest";

  // ================================================================ evaluate only
  if (evaluate_only) {
    const auto& card = model->card();
    const FramePredictor frames = [&](const std::vector<const Feature*>& f) { return model->classify_frames(f); };
    auto s = score(seqs, all_idx, W, opt.aggregation,
                   [&](const std::vector<FeatureWindowRef>& w) { return model->classify_windows(w, card.head); }, &frames);
    report["mode"] = "evaluate";
    report["model"] = {{"path", opt.evaluate_model}, {"checksum", model->checksum()}, {"trained", card.trained},
                       {"head", to_string(card.head)}, {"window", card.window_size}};
    report["dataset"] = jd;
    report["threshold"] = {{"value", card.threshold}, {"rule", "from the model card"}};
    report["evaluation"] = {{"frame", level_json(s.frame, card.threshold)},
                            {"window", level_json(s.window, card.threshold)},
                            {"video", level_json(s.video, card.threshold)}};
    if (!card.trust_notice().empty()) out << "WARNING: " << card.trust_notice() << "\n";
    print_table(out, "evaluation of " + opt.evaluate_model + " on all usable videos (threshold " + fmt(card.threshold) +
                         " from its card, head " + to_string(card.head) + ", window " + std::to_string(W) + "):", s, card.threshold);
    const std::string mp = opt.metrics_path.empty() ? (fs::path(out_dir) / "evaluation.json").string() : opt.metrics_path;
    std::ofstream(mp) << report.dump(2) << "\n";
    out << "metrics: " << mp << "\n";
    return 0;
  }

  // ================================================================ training
  out << "split (seed " << opt.seed << "): train " << split_counts(seqs, Split::Train) << "; validation "
      << split_counts(seqs, Split::Validation);
  if (!idx_test.empty()) out << "; test " << split_counts(seqs, Split::Test);
  out << "\n";
  {
    bool tr = false, tf = false, vr = false, vf = false;
    for (size_t i : idx_train) (seqs[i].fake ? tf : tr) = true;
    for (size_t i : idx_val) (seqs[i].fake ? vf : vr) = true;
    if (!tr || !tf) throw DatasetError("the training split lacks a class; add videos or lower --val-fraction");
    if (idx_val.empty())
      log << "deepfake-train: warning: no validation split (--val-fraction 0): the threshold and metrics come from the "
             "training data and are optimistic\n";
    else if (!vr || !vf)
      log << "deepfake-train: warning: the validation split holds one class only; AUC and EER are undefined\n";
  }
  const std::vector<size_t>& idx_eval = idx_val.empty() ? idx_train : idx_val;

  const size_t stride = size_t(opt.train_stride > 0 ? opt.train_stride : opt.window);
  std::vector<WindowRef> train_windows;
  int64_t windows_per_class[2] = {0, 0};
  for (size_t i : idx_train)
    for (size_t st : train_starts(seqs[i].length(), W, stride)) {
      train_windows.push_back({i, st});
      windows_per_class[seqs[i].fake ? kClassFake : kClassReal]++;
    }
  std::array<float, 2> class_weights{1.f, 1.f};
  if (opt.class_weights) {
    const double n = double(train_windows.size());
    for (int c = 0; c < 2; ++c) class_weights[size_t(c)] = float(n / (2.0 * double(std::max<int64_t>(1, windows_per_class[c]))));
  }

  TrainerConfig tc = opt.trainer;
  tc.seed = opt.seed;
  tc.mean = start_card.mean;
  tc.stdev = start_card.std;
  tc.rgb = start_card.channel_order == "RGB";
  Trainer trainer(start_sd, tc);

  // Resumable state
  std::set<std::string> train_ids;
  for (size_t i : idx_train) train_ids.insert((seqs[i].fake ? "F:" : "R:") + ds.items[seqs[i].video].id + (seqs[i].self_blended ? "+sbi" : ""));
  std::ostringstream fp;
  fp << "head=" << to_string(tc.head) << ";window=" << W << ";stride=" << stride << ";batch=" << opt.batch_size
     << ";seed=" << opt.seed << ";lr=" << tc.lr << ";wd=" << tc.weight_decay << ";dropout=" << tc.dropout << ";clip=" << tc.clip_grad_norm
     << ";freeze=" << tc.freeze_lstm << ";finetune=" << tc.finetune_backbone << ";blr=" << tc.backbone_lr
     << ";cw=" << opt.class_weights << ";sbi=" << opt.self_blend << ";start=" << start_checksum
     << ";prep=" << prep.describe() << ";minf=" << prep.min_frames << ";tracks=" << prep.all_tracks;
  std::string train_set;
  for (auto& s : train_ids) train_set += s + "\n";
  fp << ";train=" << hash_hex(train_set);
  const std::string fingerprint = fp.str();
  const fs::path ckpt_path = fs::path(out_dir) / "checkpoint.pt";
  const fs::path state_path = fs::path(out_dir) / "train_state.json";
  int epochs_done = 0;
  json history = json::array();
  // The epoch with the lowest validation loss (--select best); its trained
  // tensors are kept in <out-dir>/best.safetensors.
  int best_epoch = 0;
  double best_loss = std::numeric_limits<double>::infinity();
  const fs::path best_path = fs::path(out_dir) / "best.safetensors";
  if (opt.resume) {
    std::ifstream sf(state_path);
    if (!sf || !fs::exists(ckpt_path))
      throw std::runtime_error("--resume: no checkpoint in '" + out_dir + "' (expected checkpoint.pt and train_state.json)");
    json st;
    try {
      st = json::parse(sf);
    } catch (const std::exception&) {
      throw std::runtime_error("--resume: '" + state_path.string() + "' is not valid JSON");
    }
    if (st.value("fingerprint", "") != fingerprint)
      throw std::runtime_error("--resume: the checkpoint in '" + out_dir +
                               "' was made with other settings or data (head, window, lr, seed, split, starting model ...); "
                               "use the same options, or a new --out-dir without --resume");
    trainer.load(ckpt_path.string());
    epochs_done = st.value("epochs_done", 0);
    history = st.value("history", json::array());
    best_epoch = st.value("best_epoch", 0);
    if (best_epoch > 0) best_loss = st.value("best_val_loss", best_loss);
    if (best_epoch > 0 && !fs::exists(best_path))
      throw std::runtime_error("--resume: '" + best_path.string() + "' (the best epoch's weights) is missing");
    out << "resumed from " << ckpt_path.string() << " after epoch " << epochs_done << "\n";
  } else if (fs::exists(ckpt_path)) {
    log << "deepfake-train: note: starting afresh; the checkpoint in " << out_dir << " will be overwritten (use --resume to continue it)\n";
  }
  auto save_state = [&](const std::string& note) {
    trainer.save(ckpt_path.string());
    json st;
    st["fingerprint"] = fingerprint;
    st["epochs_done"] = epochs_done;
    st["history"] = history;
    st["best_epoch"] = best_epoch;
    if (best_epoch > 0) st["best_val_loss"] = best_loss;
    st["note"] = note;
    const std::string tmp = state_path.string() + ".tmp";
    std::ofstream(tmp) << st.dump(2) << "\n";
    fs::rename(tmp, state_path);
  };

  out << "training the " << to_string(tc.head) << " head" << (tc.freeze_lstm ? " (linear1 only)" : "")
      << (finetune ? " and the backbone" : "") << ": " << trainer.trainable_parameters() << " parameters, "
      << train_windows.size() << " windows of " << W << " per epoch, batch " << opt.batch_size << ", lr " << tc.lr
      << ", weight decay " << tc.weight_decay << ", dropout " << tc.dropout << ", class weights [fake " << fmt(class_weights[0], 3)
      << ", real " << fmt(class_weights[1], 3) << "]\n";

  auto refresh_eval_features = [&](const std::vector<size_t>& which) {
    return compute_features([&](const std::vector<cv::Mat>& c) { return trainer.features(c); }, which, false, "val feats ");
  };
  const WindowPredictor trainer_predict = [&](const std::vector<FeatureWindowRef>& w) { return trainer.predict(w); };

  std::vector<double> epoch_seconds;
  for (int epoch = epochs_done + 1; epoch <= opt.epochs; ++epoch) {
    const auto t0 = Clock::now();
    trainer.reseed(uint64_t(epoch));
    std::mt19937_64 rng(opt.seed * 7919ull + uint64_t(epoch));
    std::vector<WindowRef> order = stratified_order(train_windows, seqs, rng);
    const size_t nb = (order.size() + size_t(opt.batch_size) - 1) / size_t(opt.batch_size);
    double loss_sum = 0;
    size_t loss_n = 0;
    bool interrupted = false;
    {
      Bar bar(io.progress, "epoch " + std::to_string(epoch) + "/" + std::to_string(opt.epochs), int64_t(nb));
      for (size_t b = 0; b < nb; ++b) {
        if (stopped()) {
          interrupted = true;
          break;
        }
        const size_t from = b * size_t(opt.batch_size), to = std::min(order.size(), from + size_t(opt.batch_size));
        std::vector<int> labels;
        for (size_t k = from; k < to; ++k) labels.push_back(seqs[order[k].seq].fake ? kClassFake : kClassReal);
        // The batch's windows as pointers into each sequence's crops (fine-tuning) or features.
        auto windows = [&](auto member) {
          using Item = typename std::decay_t<decltype(seqs[0].*member)>::value_type;
          std::vector<std::vector<const Item*>> ws;
          for (size_t k = from; k < to; ++k) {
            const auto& items = seqs[order[k].seq].*member;
            std::vector<const Item*> w;
            for (size_t t = order[k].start; t < order[k].start + W; ++t) w.push_back(&items[t]);
            ws.push_back(std::move(w));
          }
          return ws;
        };
        const float loss = finetune ? trainer.step_crops(windows(&Sequence::crops), labels, class_weights)
                                    : trainer.step(windows(&Sequence::features), labels, class_weights);
        loss_sum += double(loss);
        ++loss_n;
        bar.update(int64_t(b + 1), "loss " + fmt(loss_sum / double(loss_n)));
      }
    }
    if (!interrupted && finetune && !refresh_eval_features(idx_eval)) interrupted = true;
    if (interrupted || stopped()) {
      save_state("interrupted during epoch " + std::to_string(epoch) + "; --resume repeats it");
      log << "deepfake-train: interrupted in epoch " << epoch << ": saved a resumable checkpoint in " << out_dir
          << " (after epoch " << epochs_done << "; epoch " << epoch << " will be repeated); continue with the same command and --resume\n";
      return 130;
    }
    const double train_secs = seconds_since(t0);
    auto s = score(seqs, idx_eval, W, opt.aggregation, trainer_predict, nullptr);
    const double val_loss = metrics::log_loss(s.window.p, s.window.fake);
    const auto vm = metrics::summarize(s.window.p, s.window.fake, 0.5f);
    const double train_loss = loss_n ? loss_sum / double(loss_n) : std::nan("");
    json h = {{"epoch", epoch}, {"train_loss", train_loss}, {"val_loss", val_loss}};
    h["val_accuracy"] = std::isfinite(vm.accuracy) ? json(vm.accuracy) : json(nullptr);
    h["val_auc"] = std::isfinite(vm.auc) ? json(vm.auc) : json(nullptr);
    h["seconds_training"] = train_secs;
    epochs_done = epoch;
    if (opt.select == "best" && std::isfinite(val_loss) && val_loss < best_loss) {
      best_loss = val_loss;
      best_epoch = epoch;
      StateDict head;
      trainer.export_into(head, /*validate=*/false);
      ModelCard note;
      note.name = "best epoch " + std::to_string(epoch) + " (trained tensors only)";
      note.training_data = "deepfake-train checkpoint: not a complete model";
      write_safetensors(best_path.string(), head, note);
    }
    const auto t_save = Clock::now();
    history.push_back(h);
    save_state("after epoch " + std::to_string(epoch));
    history.back()["seconds_checkpoint"] = seconds_since(t_save);
    const double secs = seconds_since(t0);
    history.back()["seconds"] = secs;
    epoch_seconds.push_back(secs);
    out << "epoch " << epoch << "/" << opt.epochs << "  train loss " << fmt(train_loss) << "  val loss " << fmt(val_loss)
        << "  val acc " << fmt(vm.accuracy, 3) << "  val AUC " << fmt(vm.auc, 3) << "  (" << fmt(secs, 1) << " s: "
        << fmt(train_secs, 1) << " training, " << fmt(double(history.back()["seconds_checkpoint"]), 1) << " checkpoint)\n";
  }

  // ---- export: the starting model's tensors with the trained ones written in
  int selected_epoch = epochs_done;
  if (opt.select == "best" && best_epoch > 0 && best_epoch != epochs_done) {
    trainer.load_weights(read_safetensors(best_path.string()).tensors);
    selected_epoch = best_epoch;
    out << "exporting epoch " << best_epoch << " (lowest validation loss, " << fmt(best_loss) << ")\n";
  }
  StateDict sd = start_sd;
  trainer.export_into(sd);
  ModelCard card = start_card;
  card.name = opt.name.empty() ? basename_no_ext(opt.out) : opt.name;
  card.head = tc.head;
  card.window_size = int(W);
  card.trained = true;
  card.seed = opt.seed;
  card.provenance = std::string("deepfake-train ") + DFD_VERSION + ": " + to_string(tc.head) + " head trained" +
                    (tc.freeze_lstm ? " (linear1 only)" : "") + (finetune ? ", backbone fine-tuned" : ", backbone frozen") +
                    "; starting model: " + start_desc;
  {
    std::ostringstream td;
    td << ds.source << " (" << ds.layout << "): " << use_real << " real and " << use_fake << " fake usable videos of "
       << ds.items.size() << " listed" << (opt.self_blend ? ", plus self-blended fakes made from the real ones" : "")
       << "; split seed " << opt.seed << ": train " << split_counts(seqs, Split::Train) << ", validation "
       << split_counts(seqs, Split::Validation);
    if (!idx_test.empty()) td << ", test " << split_counts(seqs, Split::Test);
    td << "; " << epochs_done << " epochs";
    if (selected_epoch != epochs_done) td << " (weights of epoch " << selected_epoch << ", the lowest validation loss)";
    if (!backbone_trained && !finetune) td << "; backbone UNTRAINED (random weights, not fine-tuned)";
    card.training_data = td.str();
  }
  auto final_model = Model::from_state_dict(sd, card, mo);
  if (finetune) {  // held-out features from the fine-tuned backbone, as the element will compute them
    std::vector<size_t> held(idx_val);
    held.insert(held.end(), idx_test.begin(), idx_test.end());
    if (idx_val.empty()) held.insert(held.end(), idx_train.begin(), idx_train.end());
    compute_features([&](const std::vector<cv::Mat>& c) { return final_model->features(c); }, held, false, "eval feats");
  }
  const WindowPredictor model_windows = [&](const std::vector<FeatureWindowRef>& w) {
    return final_model->classify_windows(w, card.head);
  };
  const FramePredictor model_frames = [&](const std::vector<const Feature*>& f) { return final_model->classify_frames(f); };
  Scores val = score(seqs, idx_eval, W, opt.aggregation, model_windows, &model_frames);

  // The trainer and the exported model must agree on every held-out window.
  double parity = 0;
  {
    Scores t = score(seqs, idx_eval, W, opt.aggregation, trainer_predict, nullptr);
    for (size_t k = 0; k < t.window_preds.size(); ++k)
      parity = std::max(parity, double(std::abs(t.window_preds[k].prob_fake - val.window_preds[k].prob_fake)));
    if (parity > 1e-3)
      log << "deepfake-train: warning: the exported model differs from the trained head by " << parity << " in P(FAKE)\n";
  }

  // Threshold on the validation split.
  const Level& tl = opt.threshold_level == "frame" ? val.frame : opt.threshold_level == "video" ? val.video : val.window;
  float threshold = 0.5f;
  if (std::isfinite(fixed_threshold)) threshold = fixed_threshold;
  else if (opt.threshold_rule == "eer") threshold = metrics::equal_error_rate(tl.p, tl.fake).threshold;
  else threshold = metrics::max_accuracy_threshold(tl.p, tl.fake);
  threshold = std::min(1.f, std::max(0.f, threshold));
  card.threshold = threshold;

  const double avg_epoch = epoch_seconds.empty() ? std::nan("")
                                                 : std::accumulate(epoch_seconds.begin(), epoch_seconds.end(), 0.0) / double(epoch_seconds.size());
  const std::string split_name = idx_val.empty() ? "train (no validation split)" : "validation";
  report["mode"] = "train";
  report["dataset"] = jd;
  report["split"] = {{"seed", opt.seed}, {"val_fraction", opt.val_fraction}, {"test_fraction", opt.test_fraction},
                     {"train", split_counts(seqs, Split::Train)}, {"validation", split_counts(seqs, Split::Validation)},
                     {"test", split_counts(seqs, Split::Test)}};
  report["config"] = {{"head", to_string(tc.head)}, {"window", W}, {"train_stride", stride}, {"epochs", opt.epochs},
                      {"batch_size", opt.batch_size}, {"lr", tc.lr}, {"weight_decay", tc.weight_decay},
                      {"dropout", tc.dropout}, {"clip_grad_norm", tc.clip_grad_norm}, {"freeze_lstm", tc.freeze_lstm}, {"finetune_backbone", finetune},
                      {"class_weights", {class_weights[0], class_weights[1]}}, {"seed", opt.seed},
                      {"aggregation", to_string(opt.aggregation)}, {"starting_model", start_desc},
                      {"starting_backbone_trained", backbone_trained}};
  report["training"] = {{"epochs_done", epochs_done}, {"selected_epoch", selected_epoch}, {"select", opt.select},
                        {"train_windows", train_windows.size()}, {"history", history},
                        {"seconds_per_epoch", std::isfinite(avg_epoch) ? json(avg_epoch) : json(nullptr)},
                        {"feature_seconds", feature_seconds}};
  report["threshold"] = {{"value", threshold}, {"rule", opt.threshold_rule}, {"level", opt.threshold_level}, {"chosen_on", split_name}};
  report["validation"] = {{"split", split_name}, {"frame", level_json(val.frame, threshold)},
                          {"window", level_json(val.window, threshold)}, {"video", level_json(val.video, threshold)}};
  Scores test;
  if (!idx_test.empty()) {
    test = score(seqs, idx_test, W, opt.aggregation, model_windows, &model_frames);
    report["test"] = {{"frame", level_json(test.frame, threshold)}, {"window", level_json(test.window, threshold)},
                      {"video", level_json(test.video, threshold)}};
  }
  report["export"] = {{"path", opt.out}, {"parity_max_abs_diff", parity}};
  report["note"] = backbone_trained || finetune ? "" : "the backbone is untrained (random weights); figures describe this dataset only";
  // The card keeps the figures without the per-video skip list.
  json card_metrics = report;
  card_metrics["dataset"].erase("skipped");
  card_metrics["dataset"]["skipped_count"] = skipped.size();
  card_metrics.erase("export");
  card.metrics_json = card_metrics.dump();

  if (!fs::path(opt.out).parent_path().empty()) fs::create_directories(fs::path(opt.out).parent_path(), ec);
  write_safetensors(opt.out, sd, card);
  final_model.reset();  // memory: one model at a time
  StateDict().swap(sd);
  auto reloaded = Model::load(opt.out, mo);  // what the element and deepfake-scan will do
  report["export"]["checksum"] = reloaded->checksum();

  out << "\n";
  print_table(out, split_name + " split (threshold " + fmt(threshold) + ", " + opt.threshold_rule + " on " +
                       opt.threshold_level + "s; head " + to_string(tc.head) + ", window " + std::to_string(W) + "):", val, threshold);
  if (!idx_test.empty()) print_table(out, "test split (same threshold):", test, threshold);
  out << "time: " << fmt(feature_seconds, 1) << " s features, " << fmt(avg_epoch, 2) << " s per epoch, "
      << fmt(seconds_since(t_start), 1) << " s in all\n";
  out << "wrote " << opt.out << " (checksum " << reloaded->checksum() << ", threshold " << fmt(threshold) << ", head "
      << to_string(tc.head) << ", window " << W << ")\n";
  {
    std::ostringstream props, flags;
    props << "model=" << opt.out << " window-size=" << W << " threshold=" << fmt(threshold, 6);
    flags << "--model " << opt.out << " --window-size " << W << " --threshold " << fmt(threshold, 6);
    if (opt.aggregation != Aggregation::Mean) {
      props << " aggregation=" << to_string(opt.aggregation);
      flags << " --aggregation " << to_string(opt.aggregation);
    }
    out << "use it (with the face options it was trained with):\n"
        << "  gst-launch-1.0 filesrc location=VIDEO ! decodebin ! videoconvert ! deepfakedetect " << props.str()
        << " ! fakesink\n"
        << "  deepfake-scan " << flags.str() << " VIDEO\n";
  }
  const std::string mp = (fs::path(out_dir) / "metrics.json").string();
  std::ofstream(mp) << report.dump(2) << "\n";
  if (!opt.metrics_path.empty()) {
    std::ofstream mf(opt.metrics_path);
    if (!mf) throw std::runtime_error("cannot write metrics to '" + opt.metrics_path + "'");
    mf << report.dump(2) << "\n";
  }
  out << "metrics: " << (opt.metrics_path.empty() ? mp : opt.metrics_path) << "\n";
  if (!backbone_trained && !finetune)
    out << "note: the backbone is untrained (random weights); these figures say how well the head separates this "
           "dataset's random features, not how well it detects deepfakes\n";
  return 0;
}

}  // namespace dfd::train

#include "analysis/stream_analyzer.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <mutex>
#include <set>
#include <stdexcept>

#include "faces/crop.h"

namespace dfd {

void AnalyzerConfig::validate() const {
  auto bad = [](const std::string& what) { throw std::invalid_argument(what); };
  if (interval < 1) bad("interval must be at least 1");
  if (detect_interval < 1) bad("detect-interval must be at least 1");
  if (window_size < 1) bad("window-size must be at least 1");
  if (window_stride < 0) bad("window-stride must be 0 (= window-size) or more");
  if (!(crop_margin >= 0.f && crop_margin <= 2.f)) bad("crop margin must lie in [0, 2]");
  if (!(threshold >= 0.f && threshold <= 1.f)) bad("threshold must lie in [0, 1]");
  if (!(ema_alpha > 0.f && ema_alpha <= 1.f)) bad("EMA alpha must lie in (0, 1]");
  if (detector.min_face_size < 1) bad("min-face-size must be at least 1");
  if (detector.max_faces < 1) bad("max-faces must be at least 1");
  if (tracker.max_unseen < 0) bad("track expiry must be 0 or more frames");
  if (max_batch_crops < 1) bad("max_batch_crops must be at least 1");
  if (crop_size < 1 || crop_size > 4096) bad("crop size must lie in [1, 4096]");
  if (min_track_length < 1) bad("min-track-length must be at least 1");
}

// ---------------------------------------------------------------- FaceStage

// The crops of one track not yet dropped from its sliding window; the same
// scheduling as FeatureWindow, over crops instead of features.
struct FaceStage::TrackWindow {
  std::deque<CropFrame> frames;  // at most window_size
  int since_emit = 0;
  bool emitted_any = false;
  int uncovered = 0;  // frames pushed since the last emitted window
};

FaceStage::FaceStage(const AnalyzerConfig& config) : config_(config), tracker_(config.tracker) {
  config_.validate();
  detector_ = FaceDetector::create(config_.detector);
}

FaceStage::~FaceStage() = default;

std::unique_ptr<WindowJob> FaceStage::push_crop(uint64_t track_id, CropFrame f) {
  auto& w = windows_[track_id];
  if (!w) w = std::make_unique<TrackWindow>();
  w->frames.push_back(std::move(f));
  while (int(w->frames.size()) > config_.window_size) w->frames.pop_front();
  ++w->since_emit;
  ++w->uncovered;
  if (int(w->frames.size()) < config_.window_size) return nullptr;
  if (w->emitted_any && w->since_emit < config_.effective_stride()) return nullptr;
  auto job = std::make_unique<WindowJob>();
  job->track_id = track_id;
  job->frames.assign(w->frames.begin(), w->frames.end());
  w->since_emit = 0;
  w->emitted_any = true;
  w->uncovered = 0;
  return job;
}

std::unique_ptr<WindowJob> FaceStage::flush_track(uint64_t track_id) {
  auto it = windows_.find(track_id);
  if (it == windows_.end()) return nullptr;
  std::unique_ptr<TrackWindow> w = std::move(it->second);
  windows_.erase(it);
  if (w->uncovered == 0 || w->frames.empty()) return nullptr;
  // The last (possibly short) window ends on the track's last crop and holds
  // as many of its previous crops as a window may.
  auto job = std::make_unique<WindowJob>();
  job->track_id = track_id;
  job->final = true;
  job->frames.assign(w->frames.begin(), w->frames.end());
  return job;
}

FaceStageOutput FaceStage::process(const cv::Mat& bgr, const FrameTimes& times) {
  if (bgr.empty() || bgr.type() != CV_8UC3) throw std::invalid_argument("FaceStage::process needs a BGR CV_8UC3 frame");
  FaceStageOutput out;
  out.times = times;
  out.analysed = frames_seen_ % config_.interval == 0;
  ++frames_seen_;
  const int64_t index = times.index;

  std::vector<Track> live;
  std::optional<AsyncDetections> arrived;
  if (async_) {
    // Results of an earlier frame are applied to this one: faces move little
    // in a few frames, and the IoU tracker keeps their ids.
    arrived = async_->poll();
    const bool due = last_submit_index_ < 0 || index - last_submit_index_ >= config_.detect_interval;
    if (out.analysed && due && async_->submit(bgr, index))
      last_submit_index_ = index;
  }
  if (arrived) {
    live = tracker_.update(arrived->detections, index);
    last_detect_index_ = index;
    detected_once_ = true;
    out.detector_ran = true;
  } else if (!async_ && out.analysed && (!detected_once_ || index - last_detect_index_ >= config_.detect_interval)) {
    auto dets = detector_->detect(bgr);
    live = tracker_.update(dets, index);
    last_detect_index_ = index;
    detected_once_ = true;
    out.detector_ran = true;
  } else {
    for (const Track& t : tracker_.coast(index))
      if (t.last_seen == last_detect_index_) live.push_back(t);  // seen at the last detection
  }

  for (uint64_t tid : tracker_.take_expired()) {
    const uint64_t id = tid + id_offset_;
    out.ended_tracks.push_back(id);
    if (auto job = flush_track(id)) out.windows.push_back(std::move(*job));
  }

  const cv::Rect frame_rect(0, 0, bgr.cols, bgr.rows);
  for (const Track& t : live) {
    TrackedFace f;
    f.track_id = t.id + id_offset_;
    max_id_ = std::max(max_id_, f.track_id);
    f.box = t.box & frame_rect;
    f.detected = out.detector_ran;
    if (f.box.empty()) continue;
    if (out.analysed) {
      CropFrame c;
      c.times = times;
      c.box = f.box;
      // A new image, not a view of the frame.
      c.crop = config_.align && t.has_landmarks
                   ? crop_face_aligned(bgr, f.box, t.landmarks[0], t.landmarks[1], config_.crop_margin, config_.crop_size)
                   : crop_face(bgr, f.box, config_.crop_margin, config_.crop_size);
      f.cropped = true;
      if (auto job = push_crop(f.track_id, std::move(c))) out.windows.push_back(std::move(*job));
    }
    out.faces.push_back(f);
  }
  return out;
}

std::vector<WindowJob> FaceStage::finish() {
  std::vector<WindowJob> jobs;
  std::vector<uint64_t> ids;
  for (const auto& kv : windows_) ids.push_back(kv.first);
  for (uint64_t id : ids)
    if (auto job = flush_track(id)) jobs.push_back(std::move(*job));
  reset();
  return jobs;
}

void FaceStage::set_async_detection(bool on) {
  if (config_.detector.kind == DetectorKind::None) on = false;  // the whole frame costs nothing to "detect"
  if (on == (async_ != nullptr)) return;
  if (on) {
    async_ = std::make_unique<AsyncDetector>(std::move(detector_));
  } else {
    async_.reset();  // joins; the detector is created afresh below
    detector_ = FaceDetector::create(config_.detector);
  }
  last_submit_index_ = -1;
}

void FaceStage::reset() {
  if (async_) async_->reset();
  last_submit_index_ = -1;
  windows_.clear();
  tracker_.reset();
  id_offset_ = max_id_;
  frames_seen_ = 0;
  detected_once_ = false;
  last_detect_index_ = std::numeric_limits<int64_t>::min();
}

// ---------------------------------------------------------------- Inference

namespace {

class ModelInference : public Inference {
 public:
  explicit ModelInference(std::shared_ptr<const Model> m) : model_(std::move(m)) {}
  std::vector<Feature> features(const std::vector<cv::Mat>& crops) const override { return model_->features(crops); }
  std::vector<Prediction> classify_frames(const std::vector<const Feature*>& frames) const override {
    return model_->classify_frames(frames);
  }
  std::vector<Prediction> classify_windows(const std::vector<std::vector<const Feature*>>& windows,
                                           HeadMode mode) const override {
    return model_->classify_windows(windows, mode);
  }

 private:
  std::shared_ptr<const Model> model_;
};

class DetectorInference : public Inference {
 public:
  explicit DetectorInference(std::shared_ptr<const Detector> d) : d_(std::move(d)) {}
  std::vector<Feature> features(const std::vector<cv::Mat>& crops) const override { return d_->features(crops); }
  std::vector<Prediction> classify_frames(const std::vector<const Feature*>& frames) const override {
    return d_->classify_frames(frames);
  }
  std::vector<Prediction> classify_windows(const std::vector<std::vector<const Feature*>>& windows,
                                           HeadMode mode) const override {
    return d_->classify_windows(windows, mode);
  }

 private:
  std::shared_ptr<const Detector> d_;
};

std::mutex& wrapper_mutex() {
  static std::mutex mu;
  return mu;
}
InferenceWrapper& wrapper_slot() {
  static InferenceWrapper w;
  return w;
}

}  // namespace

std::shared_ptr<const Inference> model_inference(std::shared_ptr<const Model> model) {
  if (!model) throw std::invalid_argument("model_inference needs a model");
  return std::make_shared<ModelInference>(std::move(model));
}

std::shared_ptr<const Inference> detector_inference(std::shared_ptr<const Detector> detector) {
  if (!detector) throw std::invalid_argument("detector_inference needs a detector");
  return std::make_shared<DetectorInference>(std::move(detector));
}

// ---------------------------------------------------------------- Ensemble

const char* to_string(EnsembleRule r) { return r == EnsembleRule::Max ? "max" : "mean"; }

namespace {
Prediction prediction_of(float p) {
  Prediction out;
  const float q = std::min(std::max(p, 1e-7f), 1.f - 1e-7f);
  out.logits = {std::log(q), std::log(1.f - q)};
  out.prob_fake = p;
  return out;
}
}  // namespace

EnsembleDetector::EnsembleDetector(std::vector<std::shared_ptr<const Detector>> members, EnsembleRule rule)
    : members_(std::move(members)), rule_(rule) {
  if (members_.empty()) throw std::invalid_argument("an ensemble needs at least one member");
  info_ = members_.front()->info();
  info_.architecture.clear();
  info_.feature_dim = 0;
  info_.has_cam = false;
  info_.per_crop = true;
  info_.needs_window = false;
  info_.window_head = false;
  card_ = members_.front()->card();
  card_.name.clear();
  card_.trained = true;
  for (size_t m = 0; m < members_.size(); ++m) {
    if (!members_[m]) throw std::invalid_argument("an ensemble member is missing");
    const DetectorInfo& in = members_[m]->info();
    const std::string sep = m ? "+" : "";
    info_.architecture += sep + in.architecture;
    info_.input_size = std::max(info_.input_size, in.input_size);
    offsets_.push_back(size_t(info_.feature_dim));
    info_.feature_dim += in.feature_dim;
    info_.per_crop = info_.per_crop && in.per_crop;
    info_.needs_window = info_.needs_window || in.needs_window;
    info_.window_head = info_.window_head || in.window_head;
    card_.name += sep + members_[m]->card().name;
    card_.trained = card_.trained && members_[m]->card().trained;
    checksum_ += sep + members_[m]->checksum();
    source_ += (m ? "," : "") + members_[m]->source();
  }
  card_.architecture = info_.architecture;
}

std::vector<Feature> EnsembleDetector::features(const std::vector<cv::Mat>& crops) const {
  std::vector<Feature> out(crops.size());
  for (size_t m = 0; m < members_.size(); ++m) {
    auto f = members_[m]->features(crops);
    if (f.size() != crops.size()) throw std::runtime_error("an ensemble member returned a wrong number of features");
    for (size_t i = 0; i < crops.size(); ++i) {
      if (f[i].size() != size_t(members_[m]->info().feature_dim))
        throw std::runtime_error("an ensemble member returned a feature of the wrong size");
      out[i].insert(out[i].end(), f[i].begin(), f[i].end());
    }
  }
  return out;
}

std::vector<const Feature*> EnsembleDetector::slice(const std::vector<const Feature*>& frames, size_t m,
                                                    std::vector<Feature>& storage) const {
  const size_t off = offsets_[m], n = size_t(members_[m]->info().feature_dim);
  storage.clear();
  storage.reserve(frames.size());
  for (const Feature* f : frames) {
    if (!f || f->size() != size_t(info_.feature_dim)) throw std::invalid_argument("ensemble feature of the wrong size");
    storage.emplace_back(f->begin() + long(off), f->begin() + long(off + n));
  }
  std::vector<const Feature*> ptrs;
  for (const auto& x : storage) ptrs.push_back(&x);
  return ptrs;
}

float EnsembleDetector::combine(const std::vector<float>& p) const {
  float r = 0.f;
  for (float x : p) r = rule_ == EnsembleRule::Max ? std::max(r, x) : r + x;
  return rule_ == EnsembleRule::Max ? r : r / float(p.size());
}

std::vector<Prediction> EnsembleDetector::classify_frames(const std::vector<const Feature*>& frames) const {
  std::vector<std::vector<float>> per(frames.size());
  std::vector<Feature> storage;
  for (size_t m = 0; m < members_.size(); ++m) {
    auto preds = members_[m]->classify_frames(slice(frames, m, storage));
    for (size_t i = 0; i < frames.size(); ++i) per[i].push_back(preds.at(i).prob_fake);
  }
  std::vector<Prediction> out;
  for (const auto& p : per) out.push_back(prediction_of(combine(p)));
  return out;
}

std::vector<std::vector<float>> EnsembleDetector::member_windows(
    const std::vector<std::vector<const Feature*>>& windows, HeadMode mode) const {
  std::vector<std::vector<float>> per(windows.size());
  for (size_t m = 0; m < members_.size(); ++m) {
    std::vector<std::vector<Feature>> storage(windows.size());
    std::vector<std::vector<const Feature*>> sliced;
    for (size_t w = 0; w < windows.size(); ++w) sliced.push_back(slice(windows[w], m, storage[w]));
    auto preds = members_[m]->classify_windows(sliced, mode);
    for (size_t w = 0; w < windows.size(); ++w) per[w].push_back(preds.at(w).prob_fake);
  }
  return per;
}

std::vector<Prediction> EnsembleDetector::classify_windows(const std::vector<std::vector<const Feature*>>& windows,
                                                           HeadMode mode) const {
  std::vector<Prediction> out;
  for (const auto& p : member_windows(windows, mode)) out.push_back(prediction_of(combine(p)));
  return out;
}

void set_inference_wrapper(InferenceWrapper wrapper) {
  std::lock_guard<std::mutex> lk(wrapper_mutex());
  wrapper_slot() = std::move(wrapper);
}

// -------------------------------------------------------------- WindowStage

struct WindowStage::TrackState {
  std::map<int64_t, std::shared_ptr<const Feature>> features;  // by frame index
  VerdictAggregator aggregate;
  int windows = 0;
  explicit TrackState(const AnalyzerConfig& c) : aggregate(c.aggregation, c.ema_alpha) {}
};

namespace {
std::shared_ptr<const Detector> wrap_model(std::shared_ptr<const Model> model) {
  if (!model) throw std::invalid_argument("WindowStage needs a model");
  return as_detector(std::move(model));
}
}  // namespace

WindowStage::WindowStage(std::shared_ptr<const Model> model, const AnalyzerConfig& config)
    : WindowStage(wrap_model(std::move(model)), config) {}

const Model& WindowStage::model() const {
  auto m = detector_->resnext_model();
  if (!m) throw std::logic_error("WindowStage::model(): the detector is not a ResNeXt Model (use detector())");
  return *m;
}

std::shared_ptr<const Inference> wrapped_inference(std::shared_ptr<const Detector> detector) {
  auto inference = detector_inference(std::move(detector));
  InferenceWrapper wrap;
  {
    std::lock_guard<std::mutex> lk(wrapper_mutex());
    wrap = wrapper_slot();
  }
  if (wrap) {
    inference = wrap(inference);
    if (!inference) throw std::invalid_argument("the inference wrapper returned nothing");
  }
  return inference;
}

WindowStage::WindowStage(std::shared_ptr<const Detector> detector, const AnalyzerConfig& config)
    : detector_(std::move(detector)), config_(config) {
  if (!detector_) throw std::invalid_argument("WindowStage needs a model");
  config_.validate();
  inference_ = wrapped_inference(detector_);
}

WindowStage::WindowStage(std::shared_ptr<const Detector> detector, std::shared_ptr<const Inference> inference,
                         const AnalyzerConfig& config)
    : detector_(std::move(detector)), inference_(std::move(inference)), config_(config) {
  if (!detector_) throw std::invalid_argument("WindowStage needs a model");
  if (!inference_) throw std::invalid_argument("WindowStage needs an inference");
  config_.validate();
}

void WindowStage::reset() { tracks_.clear(); }

WindowStageOutput WindowStage::run(const std::vector<WindowJob>& jobs) {
  WindowStageOutput out;
  if (jobs.empty()) return out;

  // 1. Backbone on every crop not seen before, in batches.
  struct Need {
    std::shared_ptr<TrackState> track;
    const WindowJob* job;
    const CropFrame* frame;
  };
  std::vector<Need> need;
  std::vector<std::shared_ptr<TrackState>> states;
  std::set<std::pair<uint64_t, int64_t>> queued;
  for (const WindowJob& job : jobs) {
    auto& st = tracks_[job.track_id];
    if (!st) st = std::make_shared<TrackState>(config_);
    states.push_back(st);
    for (const CropFrame& f : job.frames)
      if (!st->features.count(f.times.index) && queued.insert({job.track_id, f.times.index}).second)
        need.push_back({st, &job, &f});
  }
  std::vector<const Feature*> new_features;
  for (size_t b = 0; b < need.size(); b += size_t(config_.max_batch_crops)) {
    const size_t e = std::min(need.size(), b + size_t(config_.max_batch_crops));
    std::vector<cv::Mat> crops;
    for (size_t i = b; i < e; ++i) crops.push_back(need[i].frame->crop);
    std::vector<Feature> feats = inference_->features(crops);
    if (feats.size() != crops.size()) throw std::runtime_error("model returned a wrong number of features");
    for (size_t i = b; i < e; ++i) {
      auto f = std::make_shared<const Feature>(std::move(feats[i - b]));
      need[i].track->features[need[i].frame->times.index] = f;
      new_features.push_back(f.get());
    }
  }
  out.crops_computed = int(need.size());

  // 2. Per-crop reference probabilities (reports).
  if (config_.frame_probabilities && !new_features.empty()) {
    auto preds = inference_->classify_frames(new_features);
    for (size_t i = 0; i < need.size(); ++i) {
      FrameVerdict fv;
      fv.track_id = need[i].job->track_id;
      fv.times = need[i].frame->times;
      fv.box = need[i].frame->box;
      fv.prob_fake = preds.at(i).prob_fake;
      fv.job = size_t(need[i].job - jobs.data());
      out.frames.push_back(fv);
    }
  }

  // 3. The head on every window, in one call.
  std::vector<std::vector<const Feature*>> windows;
  for (size_t j = 0; j < jobs.size(); ++j) {
    std::vector<const Feature*> w;
    for (const CropFrame& f : jobs[j].frames) w.push_back(states[j]->features.at(f.times.index).get());
    windows.push_back(std::move(w));
  }
  auto preds = inference_->classify_windows(windows, config_.head);
  if (preds.size() != jobs.size()) throw std::runtime_error("model returned a wrong number of window predictions");
  std::vector<std::vector<float>> members;
  if (auto* ens = dynamic_cast<const EnsembleDetector*>(detector_.get())) members = ens->member_windows(windows, config_.head);

  // 4. Aggregates, in job order.
  for (size_t j = 0; j < jobs.size(); ++j) {
    const WindowJob& job = jobs[j];
    TrackState& st = *states[j];
    st.aggregate.add(preds[j].prob_fake);
    ++st.windows;
    WindowVerdict v;
    v.track_id = job.track_id;
    v.start = job.frames.front().times;
    v.end = job.frames.back().times;
    v.frames = int(job.frames.size());
    for (const CropFrame& f : job.frames) v.frame_indices.push_back(f.times.index);
    v.box = job.frames.back().box;
    v.prediction = preds[j];
    if (j < members.size()) v.member_probabilities = members[j];
    v.track_probability = st.aggregate.value();
    v.track_windows = st.windows;
    v.final = job.final;
    out.windows.push_back(v);
  }

  // 5. Forget features no later window of the track can use.
  for (size_t j = 0; j < jobs.size(); ++j) {
    auto it = tracks_.find(jobs[j].track_id);
    if (it == tracks_.end()) continue;
    if (jobs[j].final) {
      tracks_.erase(it);
      continue;
    }
    auto& feats = it->second->features;
    feats.erase(feats.begin(), feats.lower_bound(jobs[j].start_index()));
  }
  return out;
}

// ----------------------------------------------------------- SummaryBuilder

void SummaryBuilder::add_frame(bool analysed) {
  ++frames_;
  if (analysed) ++analysed_;
}

void SummaryBuilder::add_window(const WindowVerdict& v) {
  ++windows_;
  Acc& a = tracks_[v.track_id];
  TrackSummary& t = a.summary;
  t.id = v.track_id;
  if (t.first_index < 0 || v.start.index < t.first_index) {
    t.first_index = v.start.index;
    t.first_pts_ns = v.start.pts_ns;
  }
  if (v.end.index > t.last_index) {
    t.last_index = v.end.index;
    t.last_pts_ns = v.end.pts_ns;
  }
  ++t.windows;
  // Distinct frames: windows of a track come in time order and may overlap.
  for (int64_t i : v.frame_indices)
    if (i > a.covered_until) ++t.crops;
  a.covered_until = std::max(a.covered_until, v.end.index);
  t.fake_probability = v.track_probability;
  t.verdict = label_for(t.fake_probability, threshold_);
}

StreamSummary SummaryBuilder::build() const {
  StreamSummary s;
  s.frames = frames_;
  s.frames_analysed = analysed_;
  s.windows_analysed = windows_;
  s.windows_skipped = skipped_;
  s.crops_analysed = crops_;
  s.min_track_length = min_track_length_;
  bool any_long = false;
  for (const auto& kv : tracks_) {
    s.tracks.push_back(kv.second.summary);
    s.tracks.back().counted = s.tracks.back().crops >= min_track_length_;
    any_long = any_long || s.tracks.back().counted;
  }
  if (!any_long)  // every track is short: they are all there is
    for (auto& t : s.tracks) t.counted = true;
  if (!s.tracks.empty()) {
    s.fake_probability = 0.f;
    for (const auto& t : s.tracks)
      if (t.counted) s.fake_probability = std::max(s.fake_probability, t.fake_probability);
    s.verdict = label_for(s.fake_probability, threshold_);
  }
  return s;
}

void SummaryBuilder::reset() {
  frames_ = analysed_ = windows_ = skipped_ = crops_ = 0;
  tracks_.clear();
}

// ----------------------------------------------------------- StreamAnalyzer

StreamAnalyzer::StreamAnalyzer(std::shared_ptr<const Detector> detector, const AnalyzerConfig& config)
    : faces_(config), windows_(std::move(detector), config), summary_(config.threshold, config.min_track_length) {}

StreamAnalyzer::StreamAnalyzer(std::shared_ptr<const Model> model, const AnalyzerConfig& config)
    : faces_(config), windows_(std::move(model), config), summary_(config.threshold, config.min_track_length) {}

FrameResult StreamAnalyzer::process(const cv::Mat& bgr, const FrameTimes& times) {
  FrameResult r;
  r.faces = faces_.process(bgr, times);
  next_index_ = times.index + 1;
  summary_.add_frame(r.faces.analysed);
  r.verdicts = windows_.run(r.faces.windows);
  summary_.add_crops(uint64_t(r.verdicts.crops_computed));
  for (const auto& v : r.verdicts.windows) summary_.add_window(v);
  return r;
}

FrameResult StreamAnalyzer::process(const cv::Mat& bgr) {
  FrameTimes t;
  t.index = next_index_;
  return process(bgr, t);
}

WindowStageOutput StreamAnalyzer::finish() {
  auto out = windows_.run(faces_.finish());
  summary_.add_crops(uint64_t(out.crops_computed));
  for (const auto& v : out.windows) summary_.add_window(v);
  return out;
}

void StreamAnalyzer::reset() {
  faces_.reset();
  windows_.reset();
  summary_.reset();
  next_index_ = 0;
}

}  // namespace dfd

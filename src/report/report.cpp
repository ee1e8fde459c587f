#include "report/report.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "analysis/verdict.h"

namespace dfd {

using json = nlohmann::ordered_json;

namespace {

json time_json(uint64_t t) { return t == kNoTime ? json(nullptr) : json(t); }
uint64_t time_from(const json& j) { return j.is_null() ? kNoTime : j.get<uint64_t>(); }
// Probabilities rounded to 6 decimals so reports diff cleanly.
double prob(float p) { return double(std::lround(double(p) * 1e6)) / 1e6; }

}  // namespace

std::string Report::to_json(int indent) const {
  json j;
  j["source"] = source;
  j["model"] = {{"name", model.name}, {"head", model.head}, {"trained", model.trained},
                {"source", model.source}, {"checksum", model.checksum}};
  if (!model.precision.empty()) j["model"]["precision"] = model.precision;
  if (!model.device.empty()) j["model"]["device"] = model.device;
  if (!model.notice.empty()) j["model"]["notice"] = model.notice;
  j["verdict"] = verdict;
  j["fake_probability"] = prob(fake_probability);
  j["threshold"] = prob(threshold);
  j["aggregation"] = aggregation;
  j["window_size"] = window_size;
  j["face_detector"] = face_detector;
  j["tracks"] = json::array();
  for (const auto& t : tracks) {
    json jt;
    jt["id"] = t.id;
    jt["verdict"] = t.verdict;
    jt["fake_probability"] = prob(t.fake_probability);
    jt["frames"] = json::array();
    for (const auto& f : t.frames)
      jt["frames"].push_back({{"index", f.index}, {"pts_ns", time_json(f.pts_ns)},
                              {"bbox", {f.bbox.x, f.bbox.y, f.bbox.width, f.bbox.height}},
                              {"fake_probability", prob(f.fake_probability)}});
    jt["windows"] = json::array();
    for (const auto& w : t.windows)
      jt["windows"].push_back({{"start_ns", time_json(w.start_ns)}, {"end_ns", time_json(w.end_ns)},
                               {"start_index", w.start_index}, {"end_index", w.end_index},
                               {"frames", w.frames}, {"fake_probability", prob(w.fake_probability)}});
    j["tracks"].push_back(std::move(jt));
  }
  j["stats"] = {{"frames", stats.frames}, {"frames_analysed", stats.frames_analysed},
                {"windows_analysed", stats.windows_analysed}, {"windows_skipped", stats.windows_skipped},
                {"elapsed_s", double(std::lround(stats.elapsed_s * 1e3)) / 1e3}};
  return j.dump(indent);
}

Report Report::from_json(const std::string& text) {
  try {
    const json j = json::parse(text);
    Report r;
    r.source = j.at("source").get<std::string>();
    const json& m = j.at("model");
    r.model.name = m.at("name").get<std::string>();
    r.model.head = m.at("head").get<std::string>();
    r.model.trained = m.at("trained").get<bool>();
    r.model.source = m.value("source", "");
    r.model.checksum = m.value("checksum", "");
    r.model.notice = m.value("notice", "");
    r.model.precision = m.value("precision", "");
    r.model.device = m.value("device", "");
    r.verdict = j.at("verdict").get<std::string>();
    r.fake_probability = j.at("fake_probability").get<float>();
    r.threshold = j.value("threshold", 0.5f);
    r.aggregation = j.value("aggregation", "");
    r.window_size = j.value("window_size", 0);
    r.face_detector = j.value("face_detector", "");
    for (const json& jt : j.at("tracks")) {
      ReportTrack t;
      t.id = jt.at("id").get<uint64_t>();
      t.verdict = jt.at("verdict").get<std::string>();
      t.fake_probability = jt.at("fake_probability").get<float>();
      for (const json& jf : jt.at("frames")) {
        ReportFrame f;
        f.index = jf.at("index").get<int64_t>();
        f.pts_ns = time_from(jf.at("pts_ns"));
        const json& b = jf.at("bbox");
        f.bbox = cv::Rect(b.at(0).get<int>(), b.at(1).get<int>(), b.at(2).get<int>(), b.at(3).get<int>());
        f.fake_probability = jf.at("fake_probability").get<float>();
        t.frames.push_back(f);
      }
      for (const json& jw : jt.at("windows")) {
        ReportWindow w;
        w.start_ns = time_from(jw.at("start_ns"));
        w.end_ns = time_from(jw.at("end_ns"));
        w.start_index = jw.value("start_index", int64_t(-1));
        w.end_index = jw.value("end_index", int64_t(-1));
        w.frames = jw.at("frames").get<int>();
        w.fake_probability = jw.at("fake_probability").get<float>();
        t.windows.push_back(w);
      }
      r.tracks.push_back(std::move(t));
    }
    if (j.contains("stats")) {
      const json& s = j["stats"];
      r.stats.frames = s.value("frames", uint64_t(0));
      r.stats.frames_analysed = s.value("frames_analysed", uint64_t(0));
      r.stats.windows_analysed = s.value("windows_analysed", uint64_t(0));
      r.stats.windows_skipped = s.value("windows_skipped", uint64_t(0));
      r.stats.elapsed_s = s.value("elapsed_s", 0.0);
    }
    return r;
  } catch (const json::exception& e) {
    throw std::runtime_error(std::string("not a deepfake report: ") + e.what());
  }
}

ReportBuilder::ReportBuilder(std::string source, ReportModel model, float threshold) {
  meta_.source = std::move(source);
  meta_.model = std::move(model);
  meta_.threshold = threshold;
}

void ReportBuilder::add_frame(const FrameVerdict& f) {
  ReportTrack& t = tracks_[f.track_id];
  t.id = f.track_id;
  ReportFrame rf;
  rf.index = f.times.index;
  rf.pts_ns = f.times.pts_ns;
  rf.bbox = f.box;
  rf.fake_probability = f.prob_fake;
  t.frames.push_back(rf);
}

void ReportBuilder::add_window(const WindowVerdict& v) {
  ReportTrack& t = tracks_[v.track_id];
  t.id = v.track_id;
  ReportWindow w;
  w.start_ns = v.start.pts_ns;
  w.end_ns = v.end.pts_ns;
  if (w.end_ns != kNoTime && v.end.duration_ns != kNoTime) w.end_ns += v.end.duration_ns;
  w.start_index = v.start.index;
  w.end_index = v.end.index;
  w.frames = v.frames;
  w.fake_probability = v.prob_fake();
  t.windows.push_back(w);
  last_aggregate_[v.track_id] = v.track_probability;
}

Report ReportBuilder::build(const StreamSummary* summary) const {
  Report r = meta_;
  r.tracks.clear();
  std::map<uint64_t, const TrackSummary*> by_id;
  if (summary)
    for (const auto& t : summary->tracks) by_id[t.id] = &t;
  for (const auto& kv : tracks_) {
    ReportTrack t = kv.second;
    auto s = by_id.find(t.id);
    auto a = last_aggregate_.find(t.id);
    if (s != by_id.end()) {
      t.fake_probability = s->second->fake_probability;
    } else if (a != last_aggregate_.end()) {
      t.fake_probability = a->second;
    } else {
      continue;  // frames of a track whose windows were all skipped: no verdict
    }
    t.verdict = label_for(t.fake_probability, r.threshold);
    std::sort(t.frames.begin(), t.frames.end(), [](const ReportFrame& x, const ReportFrame& y) { return x.index < y.index; });
    std::sort(t.windows.begin(), t.windows.end(), [](const ReportWindow& x, const ReportWindow& y) {
      return std::make_pair(x.end_index, x.start_index) < std::make_pair(y.end_index, y.start_index);
    });
    r.tracks.push_back(std::move(t));
  }
  if (summary) {
    r.verdict = summary->verdict;
    r.fake_probability = summary->fake_probability;
    r.stats.frames = summary->frames;
    r.stats.frames_analysed = summary->frames_analysed;
    r.stats.windows_analysed = summary->windows_analysed;
    r.stats.windows_skipped = summary->windows_skipped;
  } else if (r.tracks.empty()) {
    r.verdict = "NO_FACE";
    r.fake_probability = 0.f;
  } else {
    r.fake_probability = 0.f;
    for (const auto& t : r.tracks) r.fake_probability = std::max(r.fake_probability, t.fake_probability);
    r.verdict = label_for(r.fake_probability, r.threshold);
  }
  if (r.verdict == "NO_FACE") r.fake_probability = 0.f;
  return r;
}

}  // namespace dfd

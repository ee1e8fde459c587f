#include "events/event_json.h"

#include <algorithm>

namespace dfd::events {
namespace {

Json optional_time(const std::optional<uint64_t>& t) { return t ? Json(*t) : Json(nullptr); }

Json source_value(const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); }

// A probability that may be "not yet" (negative): null then.
Json probability(double p) { return p < 0 ? Json(nullptr) : Json(p); }

double clamp01(double v) { return std::min(1.0, std::max(0.0, v)); }

Json face_object(const FaceObject& f, const FrameInfo& frame) {
  const double fw = frame.width > 0 ? frame.width : 1, fh = frame.height > 0 ? frame.height : 1;
  Json box = {{"x_min", clamp01(f.x / fw)}, {"y_min", clamp01(f.y / fh)},
              {"x_max", clamp01((f.x + f.w) / fw)}, {"y_max", clamp01((f.y + f.h) / fh)}};
  Json window = nullptr;
  if (f.window_end >= 0)
    window = {{"start_frame", f.window_start}, {"end_frame", f.window_end},
              {"confidence", probability(f.window_fake_probability)}};
  Json deepfake = {{"label", f.label},
                   {"confidence", probability(f.fake_probability)},
                   {"model", f.model},
                   {"trained", f.trained},
                   {"frames_ago", f.window_end >= 0 ? Json(f.frames_ago) : Json(nullptr)},
                   {"window", window}};
  // The face detectors (Haar, LBP, YuNet as used) give no per-box score:
  // detection confidence is null rather than an invented number.
  return {{"detection", {{"bounding_box", box}, {"confidence", nullptr}, {"label", "face"}}},
          {"x", f.x}, {"y", f.y}, {"w", f.w}, {"h", f.h},
          {"id", f.track_id},
          {"roi_type", "face"},
          {"deepfake", deepfake}};
}

}  // namespace

Json frame_event(uint64_t seq, const FrameInfo& frame, const std::vector<FaceObject>& faces) {
  Json objects = Json::array();
  for (const auto& f : faces) objects.push_back(face_object(f, frame));
  return {{"type", "frame"}, {"seq", seq},
          {"resolution", {{"width", frame.width}, {"height", frame.height}}},
          {"source", source_value(frame.source)},
          {"timestamp", optional_time(frame.pts_ns)},
          {"objects", objects}};
}

Json window_event(uint64_t seq, const std::string& source, const WindowVerdict& w) {
  Json window = {{"start_frame", w.start_frame}, {"end_frame", w.end_frame},
                 {"confidence", w.fake_probability}};
  if (w.label) window["label"] = *w.label;
  if (w.start_pts_ns) window["start_pts"] = *w.start_pts_ns;
  if (w.end_pts_ns) window["end_pts"] = *w.end_pts_ns;
  if (w.frames) window["frames"] = *w.frames;
  if (w.final) window["final"] = *w.final;
  return {{"type", "window"}, {"seq", seq}, {"origin", w.origin},
          {"source", source_value(source)},
          {"timestamp", optional_time(w.pts_ns)},
          {"id", w.track_id},
          {"window", window},
          {"deepfake", {{"label", w.track_label}, {"confidence", w.track_fake_probability},
                        {"model", w.model}, {"trained", w.trained}}}};
}

Json summary_event(uint64_t seq, const std::string& source, const StreamSummary& s) {
  Json tracks = Json::array();
  for (const auto& t : s.tracks)
    tracks.push_back({{"id", t.track_id}, {"verdict", t.verdict},
                      {"confidence", probability(t.fake_probability)},
                      {"frames", t.frames}, {"windows", t.windows},
                      {"first_frame", t.first_frame}, {"last_frame", t.last_frame}});
  Json e = {{"type", "summary"}, {"seq", seq}, {"origin", s.origin},
            {"source", source_value(source)},
            {"verdict", s.verdict}, {"confidence", s.fake_probability},
            {"frames", s.frames}, {"model", s.model}, {"trained", s.trained},
            {"tracks", tracks}};
  if (s.windows_analysed) e["windows_analysed"] = *s.windows_analysed;
  if (s.windows_skipped) e["windows_skipped"] = *s.windows_skipped;
  return e;
}

}  // namespace dfd::events

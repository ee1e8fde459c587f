#include "events/meta_follower.h"

#include <algorithm>

namespace dfd::events {

std::vector<WindowVerdict> MetaFollower::on_frame(const FrameInfo& frame, const std::vector<FaceObject>& faces) {
  std::vector<WindowVerdict> fresh;
  const auto index = static_cast<int64_t>(frames_++);
  for (const auto& f : faces) {
    Track& t = tracks_[f.track_id];
    TrackSummary& s = t.summary;
    if (s.frames++ == 0) {
      s.track_id = f.track_id;
      s.first_frame = index;
      s.verdict = "PENDING";
    }
    s.last_frame = index;
    if (!f.model.empty()) {
      model_ = f.model;
      trained_ = f.trained;
    }
    if (f.fake_probability >= 0) {
      s.fake_probability = f.fake_probability;
      s.verdict = f.label;
    }
    const bool new_window = f.window_end >= 0 && (f.window_start != t.last_start || f.window_end != t.last_end);
    if (!new_window) continue;
    t.last_start = f.window_start;
    t.last_end = f.window_end;
    s.windows++;
    WindowVerdict w;
    w.track_id = f.track_id;
    w.start_frame = f.window_start;
    w.end_frame = f.window_end;
    w.fake_probability = f.window_fake_probability;
    w.track_fake_probability = f.fake_probability;
    w.track_label = f.label;
    w.model = f.model;
    w.trained = f.trained;
    w.pts_ns = frame.pts_ns;
    fresh.push_back(w);
  }
  return fresh;
}

StreamSummary MetaFollower::summary() const {
  StreamSummary out;
  out.frames = frames_;
  out.model = model_;
  out.trained = trained_;
  out.verdict = "NO_FACE";
  for (const auto& [id, t] : tracks_) {
    out.tracks.push_back(t.summary);
    const TrackSummary& s = t.summary;
    if (s.fake_probability < 0) continue;
    out.fake_probability = std::max(out.fake_probability, s.fake_probability);
    if (s.verdict == "FAKE")
      out.verdict = "FAKE";
    else if (out.verdict == "NO_FACE")
      out.verdict = "REAL";
  }
  return out;
}

}  // namespace dfd::events

// What the per-frame ROI metas of deepfakedetect tell over time: the windows
// classified since the last frame (a track's window-start/window-end moved)
// and, at end of stream, a summary of every track seen. deepfakemetapublish
// uses it when the element's own window verdicts and summary do not reach it
// (they are bus messages; see docs/publish.md).
#pragma once
#include <map>
#include <vector>

#include "events/event_json.h"

namespace dfd::events {

class MetaFollower {
 public:
  // The frame's faces; returns the windows first seen on this frame, in
  // track order. A window is known by its (start, end) frame indices.
  std::vector<WindowVerdict> on_frame(const FrameInfo& frame, const std::vector<FaceObject>& faces);

  // FAKE if a track's latest label is FAKE, else REAL if any track was
  // classified, else NO_FACE; the probability is the highest track's (a video
  // is as fake as its worst face), 0 for NO_FACE.
  StreamSummary summary() const;

  uint64_t frames() const { return frames_; }

 private:
  struct Track {
    TrackSummary summary;
    int64_t last_start = -1, last_end = -1;
  };
  std::map<uint64_t, Track> tracks_;
  uint64_t frames_ = 0;
  std::string model_;
  bool trained_ = false;
};

}  // namespace dfd::events

// Greedy IoU tracker: detections are matched to live tracks by overlap (with
// the box where the track's motion puts it, then with its last box), then by
// centre distance relative to the face size; new tracks get the next id,
// tracks unseen for too many frames expire.
#pragma once
#include <cstdint>
#include <opencv2/core.hpp>
#include <vector>

#include "faces/face_detector.h"

namespace dfd {

struct Track {
  uint64_t id = 0;
  cv::Rect box;              // last known box
  int64_t last_seen = -1;    // frame index of the last matching detection
  int64_t first_seen = -1;
  int frames_unseen = 0;     // detection rounds without a match (since the last one)
  float vx = 0.f, vy = 0.f;  // box centre velocity, pixels per frame (from the last matches)
  bool has_landmarks = false;  // the last matching detection's landmarks (YuNet), moved with the box
  Landmarks landmarks{};
  // Where the box should be on `frame`, moving at the track's velocity for
  // at most `max_frames` frames (a lost face is more likely near where it
  // was than far along a line fitted to jittery boxes). With detection every
  // few frames this keeps boxes on moving faces and keeps the overlap high
  // enough to hold the track's id.
  cv::Rect predicted(int64_t frame, int max_frames = 1 << 30) const;
};

struct TrackerConfig {
  float iou_threshold = 0.3f;
  // A track unmatched by update() at frame f expires when f - last_seen >
  // max_unseen: counted in frames, not detection rounds, so the lifetime does
  // not depend on how often detection runs. coast() never expires a track.
  int max_unseen = 15;
  // Without enough overlap, a detection whose centre lies within this many
  // box sizes of a track's predicted centre (and of similar size) continues it.
  float max_centre_distance = 1.0f;
  // Motion is extrapolated over at most this many frames since the last match.
  int max_predict_frames = 10;
};

class Tracker {
 public:
  explicit Tracker(TrackerConfig c = {}) : config_(c) {}
  // Feed the detections of frame `frame_index`; returns the live tracks that
  // were matched or created on this frame (in detection order).
  std::vector<Track> update(const std::vector<Detection>& dets, int64_t frame_index);
  // Frames where detection did not run: tracks keep their boxes; returns all live tracks.
  std::vector<Track> coast(int64_t frame_index);
  // Tracks that expired since the last call (so windows can be flushed).
  std::vector<uint64_t> take_expired();
  const std::vector<Track>& tracks() const { return tracks_; }
  // Forget everything (new stream): no tracks, nothing pending in
  // take_expired(), ids start again at 1.
  void reset();

 private:
  TrackerConfig config_;
  std::vector<Track> tracks_;
  std::vector<uint64_t> expired_;
  uint64_t next_id_ = 1;
  int64_t last_frame_ = -1;
};

float iou(const cv::Rect& a, const cv::Rect& b);  // 0 when both are empty

}  // namespace dfd

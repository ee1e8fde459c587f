// Greedy IoU tracking with a constant-velocity prediction. Overlap with the
// last box alone lost faces that moved when detection ran only every few
// frames (measured: a face drifting 14 px/frame became 29 tracks in 300
// frames with detection every 5th frame), so boxes are compared where the
// track's velocity says they should be now.
#include "faces/tracker.h"

#include <algorithm>
#include <cmath>
#include <tuple>

namespace dfd {

float iou(const cv::Rect& a, const cv::Rect& b) {
  const int inter = (a & b).area();
  const int uni = a.area() + b.area() - inter;
  return uni > 0 ? float(inter) / float(uni) : 0.f;
}

cv::Rect Track::predicted(int64_t frame) const {
  const float dt = float(frame - last_seen);
  if (last_seen < 0 || dt <= 0.f) return box;
  return cv::Rect(box.x + int(std::lround(vx * dt)), box.y + int(std::lround(vy * dt)), box.width, box.height);
}

std::vector<Track> Tracker::update(const std::vector<Detection>& dets, int64_t frame_index) {
  last_frame_ = frame_index;

  // All (track, detection) pairs overlapping enough, best overlap first; ties
  // resolved by detection then track order so results are deterministic.
  struct Pair {
    float iou;
    size_t det, track;
  };
  std::vector<Pair> pairs;
  for (size_t d = 0; d < dets.size(); ++d)
    for (size_t t = 0; t < tracks_.size(); ++t) {
      const float o = iou(dets[d].box, tracks_[t].predicted(frame_index));
      if (o >= config_.iou_threshold && o > 0.f) pairs.push_back({o, d, t});
    }
  std::sort(pairs.begin(), pairs.end(), [](const Pair& a, const Pair& b) {
    return std::make_tuple(-a.iou, a.det, a.track) < std::make_tuple(-b.iou, b.det, b.track);
  });

  constexpr size_t kNone = size_t(-1);
  std::vector<size_t> det_track(dets.size(), kNone);
  std::vector<bool> track_taken(tracks_.size(), false);
  for (const Pair& p : pairs) {
    if (det_track[p.det] != kNone || track_taken[p.track]) continue;
    det_track[p.det] = p.track;
    track_taken[p.track] = true;
  }

  // Second chance for what overlap could not pair: a detection near a
  // track's predicted centre (within one box size) and of similar size. This
  // matters before a track has a velocity, when a face moved more than
  // about a third of its size since the last detection.
  std::vector<Pair> near;
  for (size_t d = 0; d < dets.size(); ++d) {
    if (det_track[d] != kNone) continue;
    const cv::Rect& a = dets[d].box;
    for (size_t t = 0; t < tracks_.size(); ++t) {
      if (track_taken[t]) continue;
      const cv::Rect b = tracks_[t].predicted(frame_index);
      const float side = float(std::max(b.width, b.height));
      const float ratio = float(a.area()) / float(std::max(1, b.area()));
      if (side <= 0.f || ratio < 0.5f || ratio > 2.f) continue;
      const float dx = float(a.x + a.width / 2 - (b.x + b.width / 2)), dy = float(a.y + a.height / 2 - (b.y + b.height / 2));
      const float dist = std::sqrt(dx * dx + dy * dy) / side;
      if (dist < config_.max_centre_distance) near.push_back({-dist, d, t});  // sorted like overlaps: larger first
    }
  }
  std::sort(near.begin(), near.end(), [](const Pair& a, const Pair& b) {
    return std::make_tuple(-a.iou, a.det, a.track) < std::make_tuple(-b.iou, b.det, b.track);
  });
  for (const Pair& p : near) {
    if (det_track[p.det] != kNone || track_taken[p.track]) continue;
    det_track[p.det] = p.track;
    track_taken[p.track] = true;
  }

  // Unmatched tracks age; a track expires once more than max_unseen frames
  // have passed since its last match. Counting frames (not detection rounds)
  // keeps the lifetime independent of how often detection runs.
  std::vector<Track> kept;
  std::vector<size_t> remap(tracks_.size(), kNone);
  for (size_t t = 0; t < tracks_.size(); ++t) {
    Track& tr = tracks_[t];
    if (!track_taken[t]) {
      ++tr.frames_unseen;
      if (frame_index - tr.last_seen > config_.max_unseen) {
        expired_.push_back(tr.id);
        continue;
      }
    }
    remap[t] = kept.size();
    kept.push_back(tr);
  }
  tracks_ = std::move(kept);

  std::vector<Track> out;
  out.reserve(dets.size());
  for (size_t d = 0; d < dets.size(); ++d) {
    if (det_track[d] != kNone) {
      Track& tr = tracks_[remap[det_track[d]]];
      const float dt = float(frame_index - tr.last_seen);
      if (dt > 0.f) {  // velocity of the box centre, smoothed over matches
        const float ex = float((dets[d].box.x + dets[d].box.width / 2) - (tr.box.x + tr.box.width / 2)) / dt;
        const float ey = float((dets[d].box.y + dets[d].box.height / 2) - (tr.box.y + tr.box.height / 2)) / dt;
        const bool first = tr.last_seen == tr.first_seen;
        tr.vx = first ? ex : 0.5f * tr.vx + 0.5f * ex;
        tr.vy = first ? ey : 0.5f * tr.vy + 0.5f * ey;
      }
      tr.box = dets[d].box;
      tr.last_seen = frame_index;
      tr.frames_unseen = 0;
      out.push_back(tr);
    } else {
      Track tr;
      tr.id = next_id_++;
      tr.box = dets[d].box;
      tr.first_seen = tr.last_seen = frame_index;
      tracks_.push_back(tr);
      out.push_back(tr);
    }
  }
  return out;
}

std::vector<Track> Tracker::coast(int64_t frame_index) {
  // No detections this frame: nothing can be matched, so nothing ages or
  // expires either; the next update() judges by frame distance.
  last_frame_ = frame_index;
  std::vector<Track> out = tracks_;
  for (Track& t : out) t.box = t.predicted(frame_index);  // boxes follow the faces between detections
  return out;
}

std::vector<uint64_t> Tracker::take_expired() {
  std::vector<uint64_t> out;
  out.swap(expired_);
  return out;
}

void Tracker::reset() {
  tracks_.clear();
  expired_.clear();
  next_id_ = 1;
  last_frame_ = -1;
}

}  // namespace dfd

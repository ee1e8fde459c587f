// Greedy IoU tracking with a constant-velocity prediction. Overlap with the
// last box alone lost faces that moved when detection ran only every few
// frames (measured: a face drifting 14 px/frame became 29 tracks in 300
// frames with detection every 5th frame), so boxes are compared where the
// track's velocity says they should be now first; and a face missed for a
// few frames is looked for where it was last, too.
#include "faces/tracker.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

namespace dfd {

float iou(const cv::Rect& a, const cv::Rect& b) {
  const int inter = (a & b).area();
  const int uni = a.area() + b.area() - inter;
  return uni > 0 ? float(inter) / float(uni) : 0.f;
}

cv::Rect Track::predicted(int64_t frame, int max_frames) const {
  const float dt = float(std::min<int64_t>(frame - last_seen, max_frames));
  if (last_seen < 0 || dt <= 0.f) return box;
  return cv::Rect(box.x + int(std::lround(vx * dt)), box.y + int(std::lround(vy * dt)), box.width, box.height);
}

namespace {

constexpr size_t kNone = size_t(-1);

// A candidate (track, detection) pairing; larger `score` is better.
struct Pair {
  float score;
  size_t det, track;
};

// Who got whom so far.
struct Assignment {
  std::vector<size_t> det_track;  // per detection: its track, or kNone
  std::vector<bool> track_taken;
  Assignment(size_t dets, size_t tracks) : det_track(dets, kNone), track_taken(tracks, false) {}
  bool free(size_t d, size_t t) const { return det_track[d] == kNone && !track_taken[t]; }
  // Greedy: best score first; ties by detection then track order, so results
  // are deterministic.
  void take(std::vector<Pair> pairs) {
    std::sort(pairs.begin(), pairs.end(), [](const Pair& a, const Pair& b) {
      return std::make_tuple(-a.score, a.det, a.track) < std::make_tuple(-b.score, b.det, b.track);
    });
    for (const Pair& p : pairs) {
      if (!free(p.det, p.track)) continue;
      det_track[p.det] = p.track;
      track_taken[p.track] = true;
    }
  }
};

cv::Point2f centre(const cv::Rect& r) { return {r.x + r.width * 0.5f, r.y + r.height * 0.5f}; }

// Centre distance in units of the reference box's longer side; infinite for
// boxes of very different size (a face does not halve or double between
// detections; a small false face near a large one is not it).
float centre_distance(const cv::Rect& det, const cv::Rect& ref) {
  const float side = float(std::max(ref.width, ref.height));
  const float ratio = float(det.area()) / float(std::max(1, ref.area()));
  if (side <= 0.f || ratio < 0.5f || ratio > 2.f) return std::numeric_limits<float>::infinity();
  const cv::Point2f d = centre(det) - centre(ref);
  return std::sqrt(d.x * d.x + d.y * d.y) / side;
}

}  // namespace

std::vector<Track> Tracker::update(const std::vector<Detection>& dets, int64_t frame_index) {
  last_frame_ = frame_index;
  const int horizon = config_.max_predict_frames;
  Assignment a(dets.size(), tracks_.size());

  // 1. Overlap with where each track's motion puts it now.
  // 2. What is left: overlap with the track's last box. A face lost for a few
  //    frames mostly comes back where it was, while the velocity fitted to
  //    jittery boxes drifts away from it. Second, so that two faces crossing
  //    are paired by their motion first.
  // 3. What is left: a detection whose centre lies within max_centre_distance
  //    box sizes of either box (and of similar size). This matters before a
  //    track has a velocity, when a face moved more than about a third of its
  //    size since the last detection.
  for (int pass = 0; pass < 3; ++pass) {
    std::vector<Pair> pairs;
    for (size_t d = 0; d < dets.size(); ++d)
      for (size_t t = 0; t < tracks_.size(); ++t) {
        if (!a.free(d, t)) continue;
        const Track& tr = tracks_[t];
        const cv::Rect pred = tr.predicted(frame_index, horizon);
        if (pass < 2) {
          const float o = iou(dets[d].box, pass == 0 ? pred : tr.box);
          if (o >= config_.iou_threshold && o > 0.f) pairs.push_back({o, d, t});
        } else {
          const float dist = std::min(centre_distance(dets[d].box, pred), centre_distance(dets[d].box, tr.box));
          if (dist < config_.max_centre_distance) pairs.push_back({-dist, d, t});
        }
      }
    a.take(std::move(pairs));
  }

  // Unmatched tracks age; a track expires once more than max_unseen frames
  // have passed since its last match. Counting frames (not detection rounds)
  // keeps the lifetime independent of how often detection runs.
  std::vector<Track> kept;
  std::vector<size_t> remap(tracks_.size(), kNone);
  for (size_t t = 0; t < tracks_.size(); ++t) {
    Track& tr = tracks_[t];
    if (!a.track_taken[t]) {
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
    if (a.det_track[d] != kNone) {
      Track& tr = tracks_[remap[a.det_track[d]]];
      const float dt = float(frame_index - tr.last_seen);
      if (dt > 0.f) {  // velocity of the box centre, smoothed over matches
        const cv::Point2f e = (centre(dets[d].box) - centre(tr.box)) / dt;
        const bool first = tr.last_seen == tr.first_seen;
        tr.vx = first ? e.x : 0.5f * tr.vx + 0.5f * e.x;
        tr.vy = first ? e.y : 0.5f * tr.vy + 0.5f * e.y;
      }
      tr.box = dets[d].box;
      tr.last_seen = frame_index;
      tr.frames_unseen = 0;
      tr.has_landmarks = dets[d].has_landmarks;
      tr.landmarks = dets[d].landmarks;
      out.push_back(tr);
    } else {
      Track tr;
      tr.id = next_id_++;
      tr.box = dets[d].box;
      tr.first_seen = tr.last_seen = frame_index;
      tr.has_landmarks = dets[d].has_landmarks;
      tr.landmarks = dets[d].landmarks;
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
  for (Track& t : out) {  // boxes (and landmarks) follow the faces between detections
    const cv::Rect p = t.predicted(frame_index, config_.max_predict_frames);
    const cv::Point2f shift(float(p.x - t.box.x), float(p.y - t.box.y));
    for (cv::Point2f& l : t.landmarks) l += shift;
    t.box = p;
  }
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

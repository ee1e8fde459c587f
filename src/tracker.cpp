// Greedy IoU tracking. Faces in a deepfake clip move little between frames,
// so overlap with the last box is enough to keep identities; no motion model.
#include "tracker.h"

#include <algorithm>
#include <tuple>

namespace dfd {

float iou(const cv::Rect& a, const cv::Rect& b) {
  const int inter = (a & b).area();
  const int uni = a.area() + b.area() - inter;
  return uni > 0 ? float(inter) / float(uni) : 0.f;
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
      const float o = iou(dets[d].box, tracks_[t].box);
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
  return tracks_;
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

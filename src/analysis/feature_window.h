// A per-track sliding window of backbone features. Each frame's feature is
// stored once; windows are views of `size` consecutive entries, emitted
// every `stride` pushes, so the backbone never runs twice for a frame.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "analysis/feature.h"

namespace dfd {

struct WindowFrame {
  int64_t frame_index = 0;
  uint64_t pts_ns = 0;
  std::shared_ptr<const Feature> feature;
};

struct Window {
  uint64_t track_id = 0;
  std::vector<WindowFrame> frames;  // time order
  int64_t start_index() const { return frames.empty() ? -1 : frames.front().frame_index; }
  int64_t end_index() const { return frames.empty() ? -1 : frames.back().frame_index; }
  std::vector<const Feature*> features() const;
};

class FeatureWindow {
 public:
  FeatureWindow(uint64_t track_id, int size, int stride);  // throws std::invalid_argument unless both >= 1
  // Adds a frame; returns a full window when one is due (every `stride`
  // pushes once `size` frames are held).
  std::unique_ptr<Window> push(WindowFrame f);
  // At end of stream or track expiry: the frames not yet covered by an
  // emitted window, as one last (possibly short) window; null if none.
  // A track that never filled a window gets all its frames; otherwise, if
  // frames arrived since the last window, the last `size` frames (so the
  // window overlaps the previous one). Flushing again with no push in
  // between returns null.
  std::unique_ptr<Window> flush();
  size_t held() const { return frames_.size(); }

 private:
  uint64_t track_id_;
  int size_, stride_;
  std::deque<WindowFrame> frames_;
  int since_emit_ = 0;
  bool emitted_any_ = false;
};

}  // namespace dfd

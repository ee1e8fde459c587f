// Sliding windows over per-frame features. Frames are shared_ptr'd so that a
// window handed to the classifier stays valid while the deque moves on.
#include "analysis/feature_window.h"

#include <stdexcept>
#include <string>

namespace dfd {

std::vector<const Feature*> Window::features() const {
  std::vector<const Feature*> out;
  out.reserve(frames.size());
  for (const WindowFrame& f : frames) out.push_back(f.feature.get());
  return out;
}

FeatureWindow::FeatureWindow(uint64_t track_id, int size, int stride)
    : track_id_(track_id), size_(size), stride_(stride) {
  if (size < 1) throw std::invalid_argument("window size must be >= 1, got " + std::to_string(size));
  if (stride < 1) throw std::invalid_argument("window stride must be >= 1, got " + std::to_string(stride));
}

namespace {
std::unique_ptr<Window> make_window(uint64_t id, std::deque<WindowFrame>::const_iterator begin,
                                    std::deque<WindowFrame>::const_iterator end) {
  auto w = std::make_unique<Window>();
  w->track_id = id;
  w->frames.assign(begin, end);
  return w;
}
}  // namespace

std::unique_ptr<Window> FeatureWindow::push(WindowFrame f) {
  frames_.push_back(std::move(f));
  // Only the last `size` frames can ever be part of a future window.
  while (frames_.size() > size_t(size_)) frames_.pop_front();
  ++since_emit_;
  if (frames_.size() < size_t(size_)) return nullptr;
  // The first full window is due as soon as it is full; later ones every
  // `stride` frames after the previous one.
  if (emitted_any_ && since_emit_ < stride_) return nullptr;
  emitted_any_ = true;
  since_emit_ = 0;
  return make_window(track_id_, frames_.begin(), frames_.end());
}

std::unique_ptr<Window> FeatureWindow::flush() {
  if (since_emit_ == 0 || frames_.empty()) return nullptr;
  // Short track: everything it has. Otherwise the last `size` frames (all
  // that is held), which covers the tail the stride skipped over.
  // emitted_any_ is left alone: a short track that keeps going after a
  // flush still gets its first full window as soon as it fills.
  since_emit_ = 0;
  return make_window(track_id_, frames_.begin(), frames_.end());
}

}  // namespace dfd

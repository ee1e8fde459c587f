// Sliding-window emission and flush semantics.
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "analysis/feature_window.h"

namespace dfd {
namespace {

WindowFrame frame(int64_t i) {
  // A tiny "feature" holding its own index, so contents can be checked.
  return {i, uint64_t(i) * 40'000'000ull, std::make_shared<const Feature>(Feature{float(i), float(i) + 0.5f})};
}

std::vector<int64_t> indices(const Window& w) {
  std::vector<int64_t> out;
  for (const auto& f : w.frames) out.push_back(f.frame_index);
  return out;
}

using Idx = std::vector<int64_t>;

// Pushes frames [0, n) and returns the windows emitted, with the push (frame
// index) that produced each.
std::vector<std::pair<int64_t, Window>> run(FeatureWindow& fw, int64_t n) {
  std::vector<std::pair<int64_t, Window>> out;
  for (int64_t i = 0; i < n; ++i)
    if (auto w = fw.push(frame(i))) out.emplace_back(i, *w);
  return out;
}

TEST(FeatureWindow, SizeFourStrideTwo) {
  FeatureWindow fw(7, 4, 2);
  auto ws = run(fw, 10);
  ASSERT_EQ(ws.size(), 4u);
  EXPECT_EQ(ws[0].first, 3);
  EXPECT_EQ(indices(ws[0].second), (Idx{0, 1, 2, 3}));
  EXPECT_EQ(ws[1].first, 5);
  EXPECT_EQ(indices(ws[1].second), (Idx{2, 3, 4, 5}));
  EXPECT_EQ(indices(ws[2].second), (Idx{4, 5, 6, 7}));
  EXPECT_EQ(ws[3].first, 9);
  EXPECT_EQ(indices(ws[3].second), (Idx{6, 7, 8, 9}));
  for (const auto& w : ws) EXPECT_EQ(w.second.track_id, 7u);
  EXPECT_EQ(fw.held(), 4u);  // never more than a window's worth
}

TEST(FeatureWindow, StrideOneEveryPush) {
  FeatureWindow fw(1, 3, 1);
  auto ws = run(fw, 6);
  ASSERT_EQ(ws.size(), 4u);  // pushes 2, 3, 4, 5
  for (size_t k = 0; k < ws.size(); ++k) {
    const int64_t s = int64_t(k);
    EXPECT_EQ(indices(ws[k].second), (Idx{s, s + 1, s + 2}));
    EXPECT_EQ(ws[k].second.start_index(), s);
    EXPECT_EQ(ws[k].second.end_index(), s + 2);
  }
}

TEST(FeatureWindow, StrideLargerThanSize) {
  FeatureWindow fw(1, 2, 3);
  auto ws = run(fw, 9);
  ASSERT_EQ(ws.size(), 3u);
  EXPECT_EQ(indices(ws[0].second), (Idx{0, 1}));
  EXPECT_EQ(indices(ws[1].second), (Idx{3, 4}));
  EXPECT_EQ(indices(ws[2].second), (Idx{6, 7}));
  // Frame 8 came after the last window: flush covers it with the last `size` frames.
  auto tail = fw.flush();
  ASSERT_TRUE(tail);
  EXPECT_EQ(indices(*tail), (Idx{7, 8}));
}

TEST(FeatureWindow, SizeOne) {
  FeatureWindow fw(1, 1, 1);
  auto ws = run(fw, 3);
  ASSERT_EQ(ws.size(), 3u);
  EXPECT_EQ(indices(ws[2].second), (Idx{2}));
  EXPECT_FALSE(fw.flush());
}

TEST(FeatureWindow, ContentsAndTimestamps) {
  FeatureWindow fw(1, 3, 3);
  std::vector<std::shared_ptr<const Feature>> feats;
  std::unique_ptr<Window> w;
  for (int64_t i = 0; i < 3; ++i) {
    WindowFrame f = frame(i + 10);
    feats.push_back(f.feature);
    w = fw.push(f);
  }
  ASSERT_TRUE(w);
  auto fs = w->features();
  ASSERT_EQ(fs.size(), 3u);
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(fs[k], feats[k].get());  // shared, not copied
    EXPECT_FLOAT_EQ((*fs[k])[0], float(10 + k));
    EXPECT_EQ(w->frames[k].pts_ns, uint64_t(10 + k) * 40'000'000ull);
  }
}

TEST(FeatureWindow, FlushShortTrackGivesAllFrames) {
  FeatureWindow fw(3, 5, 2);
  EXPECT_TRUE(run(fw, 3).empty());
  auto w = fw.flush();
  ASSERT_TRUE(w);
  EXPECT_EQ(w->track_id, 3u);
  EXPECT_EQ(indices(*w), (Idx{0, 1, 2}));
  EXPECT_FALSE(fw.flush());  // nothing new since
}

TEST(FeatureWindow, FlushNothingPushed) {
  FeatureWindow fw(1, 4, 2);
  EXPECT_FALSE(fw.flush());
  Window empty;
  EXPECT_EQ(empty.start_index(), -1);
  EXPECT_EQ(empty.end_index(), -1);
}

TEST(FeatureWindow, FlushRightAfterWindowIsNull) {
  FeatureWindow fw(1, 4, 2);
  auto ws = run(fw, 6);  // windows at pushes 3 and 5
  ASSERT_EQ(ws.size(), 2u);
  EXPECT_FALSE(fw.flush());
}

TEST(FeatureWindow, FlushTailAfterWindows) {
  FeatureWindow fw(1, 4, 3);
  auto ws = run(fw, 9);  // windows at pushes 3 and 6: [0..3], [3..6]; 7, 8 uncovered
  ASSERT_EQ(ws.size(), 2u);
  EXPECT_EQ(indices(ws[1].second), (Idx{3, 4, 5, 6}));
  auto w = fw.flush();
  ASSERT_TRUE(w);
  EXPECT_EQ(indices(*w), (Idx{5, 6, 7, 8}));
  EXPECT_FALSE(fw.flush());
  // Pushing on after a flush keeps the stride from the flush.
  EXPECT_FALSE(fw.push(frame(9)));
  auto again = fw.flush();
  ASSERT_TRUE(again);
  EXPECT_EQ(indices(*again), (Idx{6, 7, 8, 9}));
}

TEST(FeatureWindow, InvalidArguments) {
  EXPECT_THROW(FeatureWindow(1, 0, 1), std::invalid_argument);
  EXPECT_THROW(FeatureWindow(1, -3, 1), std::invalid_argument);
  EXPECT_THROW(FeatureWindow(1, 4, 0), std::invalid_argument);
  EXPECT_THROW(FeatureWindow(1, 4, -1), std::invalid_argument);
  EXPECT_NO_THROW(FeatureWindow(1, 1, 1));
}

}  // namespace
}  // namespace dfd

// Greedy IoU tracker: identities, expiry, coasting, reset.
#include <gtest/gtest.h>

#include <set>

#include <vector>

#include "faces/tracker.h"

namespace dfd {
namespace {

Detection det(int x, int y, int w = 100, int h = 100) { return {cv::Rect(x, y, w, h), 1.f}; }

std::vector<uint64_t> ids(const std::vector<Track>& ts) {
  std::vector<uint64_t> out;
  for (const auto& t : ts) out.push_back(t.id);
  return out;
}

using Ids = std::vector<uint64_t>;

TEST(Iou, HandComputed) {
  EXPECT_FLOAT_EQ(iou({0, 0, 10, 10}, {0, 0, 10, 10}), 1.f);
  EXPECT_FLOAT_EQ(iou({0, 0, 10, 10}, {5, 0, 10, 10}), 50.f / 150.f);
  EXPECT_FLOAT_EQ(iou({0, 0, 10, 10}, {5, 5, 10, 10}), 25.f / 175.f);
  EXPECT_FLOAT_EQ(iou({0, 0, 10, 10}, {20, 20, 10, 10}), 0.f);
  EXPECT_FLOAT_EQ(iou({0, 0, 0, 0}, {0, 0, 0, 0}), 0.f);
}

TEST(Tracker, IdsStartAtOneInDetectionOrder) {
  Tracker t;
  auto out = t.update({det(0, 0), det(500, 0)}, 0);
  EXPECT_EQ(ids(out), (Ids{1, 2}));
  EXPECT_EQ(out[0].box, cv::Rect(0, 0, 100, 100));
  EXPECT_EQ(out[1].first_seen, 0);
  EXPECT_EQ(t.tracks().size(), 2u);
}

TEST(Tracker, MovingFacesKeepTheirIds) {
  Tracker t;
  t.update({det(0, 0), det(500, 200)}, 0);
  for (int f = 1; f <= 30; ++f) {
    // Both faces drift 8 px a frame in opposite directions; the detector
    // reports them in alternating order.
    Detection a = det(8 * f, 0), b = det(500 - 8 * f, 200);
    auto out = (f % 2) ? t.update({b, a}, f) : t.update({a, b}, f);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(ids(out), (f % 2) ? (Ids{2, 1}) : (Ids{1, 2})) << "frame " << f;
    EXPECT_EQ(out[(f % 2) ? 1 : 0].box, a.box);  // track box follows the detection
    EXPECT_EQ(out[0].last_seen, f);
    EXPECT_EQ(out[0].first_seen, 0);
  }
  EXPECT_EQ(t.tracks().size(), 2u);
  EXPECT_TRUE(t.take_expired().empty());
}

TEST(Tracker, NewFaceGetsNextId) {
  Tracker t;
  t.update({det(0, 0)}, 0);
  t.update({det(2, 0)}, 1);
  auto out = t.update({det(4, 0), det(600, 300)}, 2);
  EXPECT_EQ(ids(out), (Ids{1, 2}));
  EXPECT_EQ(out[1].first_seen, 2);
}

TEST(Tracker, LowOverlapNearbyContinuesFarAwayIsANewFace) {
  Tracker t;
  t.update({det(0, 0)}, 0);
  // Shifted by 60 px: IoU = 40*100 / (2*10000 - 4000) = 0.25 < 0.3, but the
  // centre is 0.6 box sizes away: the same face, moving.
  EXPECT_EQ(ids(t.update({det(60, 0)}, 1)), (Ids{1}));
  // 150 px further (1.5 box sizes from where it was heading): a new face.
  EXPECT_EQ(ids(t.update({det(400, 0)}, 2)), (Ids{2}));
  // Without the centre rule only overlap counts.
  TrackerConfig strict;
  strict.max_centre_distance = 0.f;
  Tracker s(strict);
  s.update({det(0, 0)}, 0);
  EXPECT_EQ(ids(s.update({det(60, 0)}, 1)), (Ids{2}));
  // A face of very different size at the same place is not the same face.
  Tracker u;
  u.update({det(0, 0)}, 0);
  EXPECT_EQ(ids(u.update({det(60, 0, 30, 30)}, 1)), (Ids{2}));
}

TEST(Tracker, GreedyGivesTrackToBestOverlap) {
  Tracker t;
  t.update({det(0, 0)}, 0);
  // Both overlap track 1; the second overlaps more (IoU 0.67 vs 0.54) and
  // keeps the id, the first becomes a new face.
  auto out = t.update({det(30, 0), det(20, 0)}, 1);
  EXPECT_EQ(ids(out), (Ids{2, 1}));
}

TEST(Tracker, ExpiresAfterMaxUnseenFrames) {
  Tracker t({0.3f, 3});
  t.update({det(0, 0)}, 0);
  for (int f = 1; f <= 3; ++f) {
    EXPECT_TRUE(t.update({}, f).empty());
    ASSERT_EQ(t.tracks().size(), 1u) << "frame " << f;  // 3 frames unseen is still alive
    EXPECT_EQ(t.tracks()[0].frames_unseen, f);
  }
  EXPECT_TRUE(t.take_expired().empty());
  t.update({}, 4);
  EXPECT_TRUE(t.tracks().empty());
  EXPECT_EQ(t.take_expired(), (Ids{1}));
  EXPECT_TRUE(t.take_expired().empty());  // taken once
  // The same place again is a new face.
  EXPECT_EQ(ids(t.update({det(0, 0)}, 5)), (Ids{2}));
}

TEST(Tracker, MatchResetsUnseenCount) {
  Tracker t({0.3f, 3});
  t.update({det(0, 0)}, 0);
  t.update({}, 1);
  t.update({}, 2);
  EXPECT_EQ(t.tracks()[0].frames_unseen, 2);
  auto out = t.update({det(5, 5)}, 3);
  EXPECT_EQ(ids(out), (Ids{1}));
  EXPECT_EQ(out[0].frames_unseen, 0);
  EXPECT_EQ(out[0].last_seen, 3);
  t.update({}, 6);  // 3 frames after the last match: alive
  EXPECT_EQ(t.tracks().size(), 1u);
}

TEST(Tracker, OnlyUnmatchedTracksExpire) {
  Tracker t({0.3f, 2});
  t.update({det(0, 0), det(500, 0)}, 0);
  for (int f = 1; f <= 3; ++f) t.update({det(500, 0)}, f);
  EXPECT_EQ(ids(t.tracks()), (Ids{2}));
  EXPECT_EQ(t.take_expired(), (Ids{1}));
}

TEST(Tracker, CoastKeepsBoxesAndDoesNotExpire) {
  // Detection every 5th frame; tracks coast in between.
  Tracker t({0.3f, 7});
  t.update({det(10, 10), det(400, 10)}, 0);
  for (int f = 1; f < 5; ++f) {
    auto live = t.coast(f);
    ASSERT_EQ(live.size(), 2u);
    EXPECT_EQ(live[0].box, cv::Rect(10, 10, 100, 100));
    EXPECT_EQ(live[1].box, cv::Rect(400, 10, 100, 100));
    EXPECT_EQ(live[0].last_seen, 0);  // coasting is not seeing
  }
  t.update({det(14, 10)}, 5);  // track 2 missed, 5 frames <= 7: alive
  EXPECT_EQ(t.tracks().size(), 2u);
  for (int f = 6; f < 10; ++f) EXPECT_EQ(t.coast(f).size(), 2u);
  EXPECT_TRUE(t.take_expired().empty());
  t.update({det(18, 10)}, 10);  // track 2 last seen 10 frames ago: expired
  EXPECT_EQ(ids(t.coast(11)), (Ids{1}));
  EXPECT_EQ(t.take_expired(), (Ids{2}));
}

TEST(Tracker, Reset) {
  Tracker t({0.3f, 0});
  t.update({det(0, 0), det(300, 0)}, 0);
  t.update({det(0, 0)}, 1);  // track 2 expires (max_unseen 0)
  ASSERT_EQ(t.tracks().size(), 1u);
  t.reset();
  EXPECT_TRUE(t.tracks().empty());
  EXPECT_TRUE(t.take_expired().empty());
  EXPECT_TRUE(t.coast(0).empty());
  EXPECT_EQ(ids(t.update({det(0, 0)}, 0)), (Ids{1}));
}

}  // namespace
TEST(Tracker, VelocityKeepsAFastFaceAcrossSparseDetections) {
  // 100 px face moving 14 px per frame, detected every 5th frame: 70 px
  // between detections, IoU with the last box 0.18 (below 0.3), but the
  // predicted box overlaps fully once the velocity is known.
  Tracker t;
  std::set<uint64_t> ids;
  for (int f = 0; f <= 40; f += 5) {
    auto out = t.update({{cv::Rect(100 + 14 * f, 200, 100, 100), 1.f}}, f);
    ASSERT_EQ(out.size(), 1u);
    ids.insert(out[0].id);
    if (f == 5) EXPECT_NEAR(out[0].vx, 14.f, 0.5f);
  }
  // Two ids at most: the first jump is made before any velocity is known.
  EXPECT_LE(ids.size(), 2u);
  // Between detections coasted boxes follow the motion.
  const auto c = t.coast(42);
  ASSERT_FALSE(c.empty());
  EXPECT_NEAR(c.back().box.x, 100 + 14 * 42, 3);
}

}  // namespace dfd

// Greedy IoU tracker: identities, expiry, coasting, reset.
#include <gtest/gtest.h>

#include <cmath>
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


// --- tracks that hold: synthetic box sequences -----------------------------

namespace {
// Deterministic jitter in [-amp, amp].
int jitter(int i, int amp) { return int(std::lround(amp * std::sin(i * 2.3 + 0.7))); }

std::set<uint64_t> ids_over(Tracker& t, const std::vector<std::vector<Detection>>& frames) {
  std::set<uint64_t> out;
  for (size_t f = 0; f < frames.size(); ++f)
    for (const auto& tr : t.update(frames[f], int64_t(f))) out.insert(tr.id);
  return out;
}
}  // namespace

TEST(TracksHold, AFaceLostForAFewFramesKeepsItsId) {
  // A 120 px face jittering by up to 10 px, missed on frames 40..51 (12
  // frames, under the 15-frame expiry). Its last two boxes before the gap
  // jump 20 px right each: the fitted velocity then points well away from
  // where the face comes back, so only its last box finds it again.
  std::vector<std::vector<Detection>> frames(90);
  for (int f = 0; f < 90; ++f) {
    if (f >= 40 && f < 52) continue;
    int x = 300 + jitter(f, 10), y = 200 + jitter(f + 5, 10);
    if (f == 38) x = 320;
    if (f == 39) x = 340;
    frames[size_t(f)] = {det(x, y, 120 + jitter(f + 9, 6), 120 + jitter(f + 9, 6))};
  }
  Tracker t;
  EXPECT_EQ(ids_over(t, frames), (std::set<uint64_t>{1}));
  EXPECT_TRUE(t.take_expired().empty());
}

TEST(TracksHold, RepeatedDropoutsWithSparseDetection) {
  // Detection every 3rd frame; the detector misses the face on 3 of every 10 rounds.
  Tracker t;
  std::set<uint64_t> seen;
  for (int f = 0, round = 0; f < 300; f += 3, ++round) {
    std::vector<Detection> d;
    if (round % 10 >= 3) d.push_back(det(500 + jitter(f, 8), 300 + jitter(f + 1, 8), 90, 90));
    for (const auto& tr : t.update(d, f)) seen.insert(tr.id);
  }
  EXPECT_EQ(seen, (std::set<uint64_t>{1}));
}

TEST(TracksHold, AFaceBackAfterExpiryOrElsewhereIsNew) {
  Tracker t;  // max_unseen 15
  t.update({det(300, 300)}, 0);
  t.update({}, 10);
  EXPECT_TRUE(t.take_expired().empty());
  t.update({}, 16);  // 16 frames unseen: expired
  EXPECT_EQ(t.take_expired(), (Ids{1}));
  EXPECT_EQ(ids(t.update({det(300, 300)}, 17)), (Ids{2}));
  // Lost for a few frames, back three face sizes away: another face.
  t.update({}, 18);
  EXPECT_EQ(ids(t.update({det(600, 300)}, 20)), (Ids{3}));
}

TEST(TracksHold, TwoFacesCrossingKeepTheirIds) {
  // Face A moves right, B left, 9 px a frame, 30 px apart vertically: they
  // overlap for about 20 frames (IoU up to 0.5) and the detector lists them
  // in varying order.
  Tracker t;
  for (int f = 0; f <= 60; ++f) {
    const Detection a = det(100 + 9 * f + jitter(f, 3), 200 + jitter(f + 3, 3));
    const Detection b = det(640 - 9 * f + jitter(f + 7, 3), 230 + jitter(f + 11, 3));
    const bool swap = (f / 3) % 2;
    auto out = swap ? t.update({b, a}, f) : t.update({a, b}, f);
    ASSERT_EQ(out.size(), 2u);
    const Track& ta = out[swap ? 1 : 0];
    const Track& tb = out[swap ? 0 : 1];
    EXPECT_EQ(ta.id, 1u) << "frame " << f;
    EXPECT_EQ(tb.id, 2u) << "frame " << f;
  }
}

TEST(TracksHold, CrossingWithADropoutAtTheCrossing) {
  // As above, but B is missed for 4 frames while the boxes overlap most:
  // A must not take B's id, and B comes back as itself.
  Tracker t;
  for (int f = 0; f <= 60; ++f) {
    const Detection a = det(100 + 9 * f, 200), b = det(640 - 9 * f, 230);
    const bool b_missed = f >= 28 && f < 32;
    auto out = b_missed ? t.update({a}, f) : t.update({a, b}, f);
    ASSERT_EQ(out[0].id, 1u) << "frame " << f;
    if (!b_missed) EXPECT_EQ(out[1].id, 2u) << "frame " << f;
  }
}

TEST(TracksHold, AFastFaceIsFollowed) {
  // 80 px face crossing 1280 px in 30 frames (40 px a frame: IoU 0.33 with
  // its last box), with one frame missed.
  Tracker t;
  std::set<uint64_t> seen;
  for (int f = 0; f < 30; ++f) {
    if (f == 15) continue;
    for (const auto& tr : t.update({det(40 * f, 300 + jitter(f, 4), 80, 80)}, f)) seen.insert(tr.id);
  }
  EXPECT_EQ(seen, (std::set<uint64_t>{1}));
}

TEST(TracksHold, PredictionIsBoundedAndLandmarksFollowTheBox) {
  TrackerConfig c;
  c.max_predict_frames = 4;
  Tracker t(c);
  Detection d = det(100, 100);
  d.has_landmarks = true;
  d.landmarks = {cv::Point2f(130, 130), cv::Point2f(170, 130), cv::Point2f(150, 150), cv::Point2f(135, 175),
                 cv::Point2f(165, 175)};
  t.update({d}, 0);
  Detection e = det(110, 100);
  e.has_landmarks = true;
  e.landmarks = d.landmarks;
  for (auto& p : e.landmarks) p.x += 10;
  auto out = t.update({e}, 1);  // velocity 10 px/frame
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].has_landmarks);
  EXPECT_FLOAT_EQ(out[0].landmarks[0].x, 140.f);
  // Coasting 2 frames: moved 20 px, landmarks too. 10 frames: only 4 frames' worth.
  auto c2 = t.coast(3);
  EXPECT_EQ(c2[0].box.x, 130);
  EXPECT_FLOAT_EQ(c2[0].landmarks[0].x, 160.f);
  auto c10 = t.coast(11);
  EXPECT_EQ(c10[0].box.x, 150);
  EXPECT_FLOAT_EQ(c10[0].landmarks[1].x, 220.f);
  EXPECT_EQ(t.tracks()[0].box.x, 110);  // coasting changes nothing stored
}

}  // namespace dfd

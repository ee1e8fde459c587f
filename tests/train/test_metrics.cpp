// Metrics against values worked out by hand (positive class = FAKE,
// predicted FAKE when score > threshold).
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "train/metrics.h"

using namespace dfd::metrics;

namespace {
// real scores 0.1, 0.2, 0.7; fake scores 0.3, 0.8
const std::vector<float> kScores{0.1f, 0.2f, 0.7f, 0.3f, 0.8f};
const std::vector<bool> kFake{false, false, false, true, true};
}  // namespace

TEST(Metrics, AucCountsOrderedPairs) {
  // fake 0.3 beats reals 0.1, 0.2 (2 of 3); fake 0.8 beats all three: 5/6
  EXPECT_NEAR(roc_auc(kScores, kFake), 5.0 / 6.0, 1e-12);
  // the classic example: y = 0 0 1 1, scores 0.1 0.4 0.35 0.8 -> 0.75
  EXPECT_NEAR(roc_auc({0.1f, 0.4f, 0.35f, 0.8f}, {false, false, true, true}), 0.75, 1e-12);
  // perfect and inverted rankings
  EXPECT_DOUBLE_EQ(roc_auc({0.1f, 0.2f, 0.8f, 0.9f}, {false, false, true, true}), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc({0.9f, 0.8f, 0.2f, 0.1f}, {false, false, true, true}), 0.0);
}

TEST(Metrics, AucCountsTiesAsHalf) {
  // fake 0.6 vs real 0.2: 1, vs real 0.6: 1/2; fake 0.9 vs both: 2 -> 3.5 / 4
  EXPECT_NEAR(roc_auc({0.2f, 0.6f, 0.6f, 0.9f}, {false, false, true, true}), 0.875, 1e-12);
  // everything tied: one half
  EXPECT_NEAR(roc_auc({0.5f, 0.5f, 0.5f, 0.5f}, {false, true, false, true}), 0.5, 1e-12);
}

TEST(Metrics, AucUndefinedWithOneClass) {
  EXPECT_TRUE(std::isnan(roc_auc({0.1f, 0.2f}, {true, true})));
  EXPECT_TRUE(std::isnan(roc_auc({}, {})));
  EXPECT_THROW(roc_auc({0.1f}, {true, false}), std::invalid_argument);
}

TEST(Metrics, CandidateThresholdsAreMidpoints) {
  auto t = candidate_thresholds({0.6f, 0.2f, 0.2f});
  ASSERT_EQ(t.size(), 3u);
  EXPECT_LT(t[0], 0.2f);  // below every score: everything FAKE
  EXPECT_GT(t[0], 0.19999f);
  EXPECT_FLOAT_EQ(t[1], 0.4f);
  EXPECT_FLOAT_EQ(t[2], 0.6f);  // the highest score: nothing FAKE
}

TEST(Metrics, ConfusionUsesStrictlyGreater) {
  auto c = confusion(kScores, kFake, 0.5f);
  EXPECT_EQ(c.real_as_real, 2);  // 0.1, 0.2
  EXPECT_EQ(c.real_as_fake, 1);  // 0.7
  EXPECT_EQ(c.fake_as_real, 1);  // 0.3
  EXPECT_EQ(c.fake_as_fake, 1);  // 0.8
  EXPECT_DOUBLE_EQ(c.accuracy(), 3.0 / 5.0);
  // a score equal to the threshold is REAL
  auto e = confusion({0.5f}, {true}, 0.5f);
  EXPECT_EQ(e.fake_as_real, 1);
  EXPECT_TRUE(std::isnan(Confusion{}.accuracy()));
}

TEST(Metrics, EqualErrorRateInterpolatesTheCrossing) {
  // thresholds 0.25: FPR 1/3, FNR 0; 0.5: FPR 1/3, FNR 1/2 -> the curves
  // cross at 2/3 of the way: EER 1/3. The closest realisable point is 0.5.
  auto e = equal_error_rate(kScores, kFake);
  EXPECT_NEAR(e.eer, 1.0 / 3.0, 1e-9);
  EXPECT_FLOAT_EQ(e.threshold, 0.5f);
  // an exact crossing: y = 0 0 1 1, scores 0.1 0.4 0.35 0.8, at 0.375 FPR = FNR = 1/2
  auto x = equal_error_rate({0.1f, 0.4f, 0.35f, 0.8f}, {false, false, true, true});
  EXPECT_NEAR(x.eer, 0.5, 1e-9);
  EXPECT_FLOAT_EQ(x.threshold, 0.375f);
  // separable: EER 0, threshold between the classes
  auto s = equal_error_rate({0.1f, 0.2f, 0.8f, 0.9f}, {false, false, true, true});
  EXPECT_NEAR(s.eer, 0.0, 1e-12);
  EXPECT_FLOAT_EQ(s.threshold, 0.5f);
  EXPECT_TRUE(std::isnan(equal_error_rate({0.3f}, {true}).eer));
}

TEST(Metrics, MaxAccuracyThresholdPrefersTheOneNearestHalf) {
  // reals 0.1, 0.4; fakes 0.35, 0.8, 0.9: thresholds 0.225 and 0.6 both get
  // 4 of 5 right; 0.6 is nearer 0.5
  EXPECT_FLOAT_EQ(max_accuracy_threshold({0.1f, 0.4f, 0.35f, 0.8f, 0.9f}, {false, false, true, true, true}), 0.6f);
  EXPECT_FLOAT_EQ(max_accuracy_threshold({}, {}), 0.5f);
}

TEST(Metrics, LogLoss) {
  // -(ln 0.9 + ln 0.8) / 2
  EXPECT_NEAR(log_loss({0.9f, 0.2f}, {true, false}), (0.105360516 + 0.223143551) / 2, 1e-7);
  // a certain mistake is clipped, not infinite
  EXPECT_NEAR(log_loss({1.0f}, {false}), -std::log(1e-7), 1e-3);
  EXPECT_NEAR(log_loss({0.5f, 0.5f}, {true, false}), std::log(2.0), 1e-7);
  EXPECT_TRUE(std::isnan(log_loss({}, {})));
}

TEST(Metrics, SummaryAndJson) {
  auto s = summarize(kScores, kFake, 0.5f);
  EXPECT_EQ(s.n, 5);
  EXPECT_EQ(s.n_fake, 2);
  EXPECT_EQ(s.n_real, 3);
  EXPECT_DOUBLE_EQ(s.accuracy, 0.6);
  EXPECT_NEAR(s.balanced_accuracy, (0.5 + 2.0 / 3.0) / 2, 1e-12);
  EXPECT_NEAR(s.auc, 5.0 / 6.0, 1e-12);
  EXPECT_NEAR(s.eer, 1.0 / 3.0, 1e-9);
  auto j = nlohmann::json::parse(s.to_json());
  EXPECT_EQ(j["confusion"]["real_as_fake"], 1);
  EXPECT_EQ(j["confusion"]["fake_as_fake"], 1);
  EXPECT_NEAR(j["roc_auc"].get<double>(), 5.0 / 6.0, 1e-9);
  // undefined figures are null, not NaN (which JSON cannot hold)
  auto one = nlohmann::json::parse(summarize({0.2f, 0.3f}, {true, true}, 0.5f).to_json());
  EXPECT_TRUE(one["roc_auc"].is_null());
  EXPECT_TRUE(one["eer"].is_null());
  EXPECT_EQ(one["accuracy"], 0.0);
}

// Aggregations checked against values computed by hand.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "analysis/verdict.h"

namespace dfd {
namespace {

VerdictAggregator fed(Aggregation a, float alpha = 0.3f) {
  VerdictAggregator v(a, alpha);
  for (float p : {0.2f, 0.9f, 0.4f}) v.add(p);
  return v;
}

TEST(Verdict, EmptyIsZero) {
  for (auto a : {Aggregation::Last, Aggregation::Mean, Aggregation::Max, Aggregation::Ema}) {
    VerdictAggregator v(a);
    EXPECT_EQ(v.count(), 0);
    EXPECT_FLOAT_EQ(v.value(), 0.f) << to_string(a);
  }
}

TEST(Verdict, Last) { EXPECT_FLOAT_EQ(fed(Aggregation::Last).value(), 0.4f); }

TEST(Verdict, Mean) { EXPECT_NEAR(fed(Aggregation::Mean).value(), 0.5f, 1e-6); }

TEST(Verdict, Max) { EXPECT_FLOAT_EQ(fed(Aggregation::Max).value(), 0.9f); }

TEST(Verdict, MaxOfValuesBelowFirst) {
  // The first value seeds the maximum even when later ones are smaller.
  VerdictAggregator v(Aggregation::Max);
  v.add(0.7f);
  v.add(0.1f);
  EXPECT_FLOAT_EQ(v.value(), 0.7f);
}

TEST(Verdict, EmaSeededWithFirstValue) {
  // alpha 0.5: 0.2 -> 0.5*0.9 + 0.5*0.2 = 0.55 -> 0.5*0.4 + 0.5*0.55 = 0.475
  EXPECT_NEAR(fed(Aggregation::Ema, 0.5f).value(), 0.475f, 1e-6);
  // alpha 0.3: 0.2 -> 0.27 + 0.14 = 0.41 -> 0.12 + 0.287 = 0.407
  EXPECT_NEAR(fed(Aggregation::Ema, 0.3f).value(), 0.407f, 1e-6);
  VerdictAggregator one(Aggregation::Ema, 0.3f);
  one.add(0.8f);
  EXPECT_FLOAT_EQ(one.value(), 0.8f);
}

TEST(Verdict, Count) {
  EXPECT_EQ(fed(Aggregation::Mean).count(), 3);
}

TEST(Verdict, Labels) {
  EXPECT_STREQ(label_for(0.6f, 0.5f), "FAKE");
  EXPECT_STREQ(label_for(0.5f, 0.5f), "REAL");  // strictly above the threshold
  EXPECT_STREQ(label_for(0.4f, 0.5f), "REAL");
  EXPECT_STREQ(label_for(0.4f, 0.3f), "FAKE");
}

TEST(Verdict, Strings) {
  for (auto a : {Aggregation::Last, Aggregation::Mean, Aggregation::Max, Aggregation::Ema})
    EXPECT_EQ(aggregation_from_string(to_string(a)), a);
  EXPECT_STREQ(to_string(Aggregation::Ema), "ema");
  EXPECT_EQ(aggregation_from_string("max"), Aggregation::Max);
  EXPECT_THROW(aggregation_from_string("median"), std::invalid_argument);
  EXPECT_THROW(aggregation_from_string(""), std::invalid_argument);
}

}  // namespace
}  // namespace dfd

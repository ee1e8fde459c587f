// Self-blended fakes: deterministic, soft-masked, changed only under the mask.
#include <gtest/gtest.h>

#include <cstdlib>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "faces/crop.h"
#include "train/self_blend.h"

namespace {
cv::Mat face_crop() {
  const char* dir = std::getenv("DFD_TEST_DATA");
  cv::Mat img = cv::imread(std::string(dir ? dir : "tests/data") + "/astronaut.png");
  if (img.empty()) return {};
  return dfd::crop_face(img, cv::Rect(175, 70, 100, 110));
}
}  // namespace

TEST(SelfBlend, ParamsAreDeterministicPerSeed) {
  auto a = dfd::draw_self_blend_params(42), b = dfd::draw_self_blend_params(42), c = dfd::draw_self_blend_params(43);
  EXPECT_EQ(a.hue_shift, b.hue_shift);
  EXPECT_EQ(a.radial, b.radial);
  EXPECT_EQ(a.blend, b.blend);
  EXPECT_TRUE(a.hue_shift != c.hue_shift || a.radial != c.radial);
  for (uint64_t s = 0; s < 50; ++s) {
    auto p = dfd::draw_self_blend_params(s);
    EXPECT_GT(p.blend, 0.f);
    EXPECT_LE(p.blend, 1.f);
    EXPECT_GE(p.radial.size(), 10u);
  }
}

TEST(SelfBlend, MaskIsSoftAndFaceShaped) {
  for (uint64_t s = 0; s < 10; ++s) {
    auto p = dfd::draw_self_blend_params(s);
    cv::Mat m = dfd::self_blend_mask(cv::Size(112, 112), p);
    ASSERT_EQ(m.type(), CV_32FC1);
    double mn, mx;
    cv::minMaxLoc(m, &mn, &mx);
    EXPECT_GE(mn, 0.0);
    EXPECT_NEAR(mx, p.blend, 1e-4);
    EXPECT_LT(m.at<float>(0, 0), 0.01f) << "corners stay the original";
    EXPECT_LT(m.at<float>(111, 111), 0.01f);
    EXPECT_GT(m.at<float>(60, 56), 0.5f * p.blend) << "the centre of the face is blended";
    // soft: some pixels strictly between 0 and the peak
    cv::Mat mid = (m > 0.1f * p.blend) & (m < 0.9f * p.blend);
    EXPECT_GT(cv::countNonZero(mid), 50);
  }
}

TEST(SelfBlend, ChangesTheFaceOnlyUnderTheMask) {
  cv::Mat crop = face_crop();
  ASSERT_FALSE(crop.empty()) << "tests/data/astronaut.png missing (DFD_TEST_DATA)";
  int visible = 0;
  for (uint64_t s = 0; s < 12; ++s) {
    auto p = dfd::draw_self_blend_params(s);
    cv::Mat mask;
    cv::Mat out = dfd::self_blend(crop, p, &mask);
    ASSERT_EQ(out.size(), crop.size());
    ASSERT_EQ(out.type(), CV_8UC3);
    // identical to the input where the mask is zero
    cv::Mat diff;
    cv::absdiff(out, crop, diff);
    cv::Mat diff1;
    cv::cvtColor(diff, diff1, cv::COLOR_BGR2GRAY);
    cv::Mat outside = mask == 0.f;
    double outside_max = 0;
    cv::minMaxLoc(diff1, nullptr, &outside_max, nullptr, nullptr, outside);
    EXPECT_EQ(outside_max, 0.0) << "seed " << s;
    // changed under the mask
    cv::Mat inside = mask > 0.5f * p.blend;
    const double inside_mean = cv::mean(diff, inside)[0] + cv::mean(diff, inside)[1] + cv::mean(diff, inside)[2];
    if (inside_mean > 6.0) ++visible;
    // deterministic
    cv::Mat again = dfd::self_blend(crop, p);
    EXPECT_EQ(cv::norm(out, again, cv::NORM_INF), 0.0);
  }
  EXPECT_GE(visible, 10) << "most draws leave a visible blend";
}

TEST(SelfBlend, AnySizeAndBadInput) {
  cv::Mat crop = face_crop();
  ASSERT_FALSE(crop.empty());
  cv::Mat big;
  cv::resize(crop, big, cv::Size(224, 200));
  auto out = dfd::self_blend(big, dfd::draw_self_blend_params(1));
  EXPECT_EQ(out.size(), big.size());
  EXPECT_THROW(dfd::self_blend(cv::Mat(), dfd::draw_self_blend_params(1)), std::invalid_argument);
  EXPECT_THROW(dfd::self_blend(cv::Mat(10, 10, CV_8UC1, cv::Scalar(3)), dfd::draw_self_blend_params(1)), std::invalid_argument);
}

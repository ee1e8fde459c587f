// Face detection on a public-domain NASA portrait (tests/data/astronaut.png,
// 512x512). The true face, measured once by eye from the image (hairline to
// chin, cheek to cheek), is about x 175..275, y 70..180.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <string>

#include "dfd_config.h"
#include "faces/face_detector.h"
#include "faces/tracker.h"  // iou()

namespace dfd {
namespace {

const cv::Rect kTrueFace(175, 70, 100, 110);

cv::Mat astronaut() {
  cv::Mat im = cv::imread(DFD_TEST_DATA_DIR "/astronaut.png", cv::IMREAD_COLOR);
  if (im.empty()) throw std::runtime_error("cannot read astronaut.png");
  return im;
}

cv::Rect scaled(const cv::Rect& r, double s, cv::Point offset = {}) {
  return cv::Rect(int(r.x * s) + offset.x, int(r.y * s) + offset.y, int(r.width * s), int(r.height * s));
}

bool centre_inside(const cv::Rect& box, const cv::Rect& region) {
  return region.contains(cv::Point(box.x + box.width / 2, box.y + box.height / 2));
}

std::unique_ptr<FaceDetector> haar(int max_side = 480, int min_face = 40, int max_faces = 8) {
  FaceDetectorConfig c;
  c.kind = DetectorKind::Haar;
  c.detect_max_side = max_side;
  c.min_face_size = min_face;
  c.max_faces = max_faces;
  return FaceDetector::create(c);
}

TEST(FaceDetector, HaarFindsTheAstronaut) {
  const auto dets = haar()->detect(astronaut());
  ASSERT_EQ(dets.size(), 1u);
  EXPECT_GT(iou(dets[0].box, kTrueFace), 0.5f) << dets[0].box;
  EXPECT_TRUE(centre_inside(dets[0].box, kTrueFace)) << dets[0].box;
}

TEST(FaceDetector, HaarFindsFaceInUpscaledLetterbox) {
  // 512x512 scaled to 720x720 and centred in a black 1280x720 frame; the
  // detector works on a 480x270 copy and must map the box back.
  const double s = 720.0 / 512.0;
  cv::Mat frame(720, 1280, CV_8UC3, cv::Scalar::all(0)), big;
  cv::resize(astronaut(), big, cv::Size(720, 720), 0, 0, cv::INTER_LINEAR);
  big.copyTo(frame(cv::Rect(280, 0, 720, 720)));
  const cv::Rect truth = scaled(kTrueFace, s, {280, 0});

  const auto dets = haar()->detect(frame);
  ASSERT_EQ(dets.size(), 1u);
  EXPECT_GT(iou(dets[0].box, truth), 0.5f) << dets[0].box << " vs " << truth;
  EXPECT_TRUE(centre_inside(dets[0].box, truth)) << dets[0].box;
}

TEST(FaceDetector, DownscaledDetectionAgreesWithFullSize) {
  const cv::Mat im = astronaut();
  const auto full = haar(0)->detect(im);    // no downscaling
  const auto small = haar(200)->detect(im); // detects on 200x200
  ASSERT_EQ(full.size(), 1u);
  ASSERT_EQ(small.size(), 1u);
  // Boxes are in full-resolution pixels either way.
  EXPECT_GT(iou(small[0].box, full[0].box), 0.6f) << small[0].box << " vs " << full[0].box;
  EXPECT_GT(iou(small[0].box, kTrueFace), 0.5f) << small[0].box;
  EXPECT_GT(small[0].box.width, 70);  // would be ~40 if left at detection scale
}

TEST(FaceDetector, AcceptsBgraAndGray) {
  cv::Mat bgra, gray;
  cv::cvtColor(astronaut(), bgra, cv::COLOR_BGR2BGRA);
  cv::cvtColor(astronaut(), gray, cv::COLOR_BGR2GRAY);
  auto d = haar();
  for (const cv::Mat& m : {bgra, gray}) {
    const auto dets = d->detect(m);
    ASSERT_EQ(dets.size(), 1u);
    EXPECT_GT(iou(dets[0].box, kTrueFace), 0.5f);
  }
}

TEST(FaceDetector, NothingOnBlankFrames) {
  auto d = haar();
  EXPECT_TRUE(d->detect(cv::Mat(480, 640, CV_8UC3, cv::Scalar::all(0))).empty());
  EXPECT_TRUE(d->detect(cv::Mat(480, 640, CV_8UC3, cv::Scalar(128, 128, 128))).empty());
  EXPECT_TRUE(d->detect(cv::Mat()).empty());
}

TEST(FaceDetector, NothingOnNoise) {
  auto d = haar();
  cv::RNG rng(12345);
  for (int i = 0; i < 5; ++i) {
    cv::Mat noise(480, 640, CV_8UC3);
    rng.fill(noise, cv::RNG::UNIFORM, 0, 256);
    EXPECT_TRUE(d->detect(noise).empty()) << "noise frame " << i;
  }
}

TEST(FaceDetector, MinFaceSizeHonoured) {
  const cv::Mat im = astronaut();
  // The face is about 95 px wide.
  EXPECT_EQ(haar(480, 80)->detect(im).size(), 1u);
  EXPECT_TRUE(haar(480, 130)->detect(im).empty());
  EXPECT_TRUE(haar(0, 130)->detect(im).empty());
}

// Three copies of the portrait at decreasing scales, side by side.
struct Tiles {
  cv::Mat frame;
  cv::Rect faces[3];  // true faces, largest first
};
Tiles three_tiles() {
  const double scales[3] = {1.0, 0.8, 0.6};
  Tiles t;
  t.frame = cv::Mat(512, 512 * 3, CV_8UC3, cv::Scalar::all(255));
  // The middle tile holds the largest face, so "largest first" is not just left-to-right.
  const int order[3] = {1, 0, 2};
  for (int i = 0; i < 3; ++i) {
    cv::Mat tile;
    cv::resize(astronaut(), tile, cv::Size(), scales[i], scales[i], cv::INTER_AREA);
    const cv::Point at(512 * order[i], 0);
    tile.copyTo(t.frame(cv::Rect(at, tile.size())));
    t.faces[i] = scaled(kTrueFace, scales[i], at);
  }
  return t;
}

TEST(FaceDetector, ThreeFacesLargestFirst) {
  const Tiles t = three_tiles();
  const auto dets = haar(0)->detect(t.frame);
  ASSERT_EQ(dets.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_GT(iou(dets[i].box, t.faces[i]), 0.5f) << i << ": " << dets[i].box << " vs " << t.faces[i];
    if (i) {
      EXPECT_GE(dets[i - 1].box.area(), dets[i].box.area());
    }
  }
}

TEST(FaceDetector, MaxFacesKeepsTheLargest) {
  const Tiles t = three_tiles();
  const auto dets = haar(0, 40, 2)->detect(t.frame);
  ASSERT_EQ(dets.size(), 2u);
  EXPECT_GT(iou(dets[0].box, t.faces[0]), 0.5f) << dets[0].box;
  EXPECT_GT(iou(dets[1].box, t.faces[1]), 0.5f) << dets[1].box;
}

TEST(FaceDetector, DownscaledTilesMapBack) {
  // 1536x512 detected on a 768x256 copy (faces of ~30-50 px there); every
  // box must come back in full-resolution coordinates.
  const Tiles t = three_tiles();
  const auto dets = haar(768, 40)->detect(t.frame);
  ASSERT_EQ(dets.size(), 3u);
  for (int i = 0; i < 3; ++i)
    EXPECT_GT(iou(dets[i].box, t.faces[i]), 0.5f) << i << ": " << dets[i].box << " vs " << t.faces[i];
}

TEST(FaceDetector, MinFaceSizeFiltersSmallTiles) {
  // Faces are about 95, 76 and 57 px wide: 70 px drops only the smallest.
  const Tiles t = three_tiles();
  const auto dets = haar(0, 70)->detect(t.frame);
  ASSERT_EQ(dets.size(), 2u);
  EXPECT_GT(iou(dets[0].box, t.faces[0]), 0.5f);
  EXPECT_GT(iou(dets[1].box, t.faces[1]), 0.5f);
  for (const auto& d : dets) EXPECT_GE(d.box.width, 70);
}

TEST(FaceDetector, MissingCascadeThrowsNamingThePath) {
  FaceDetectorConfig c;
  c.model_path = "/nonexistent/cascade.xml";
  try {
    FaceDetector::create(c);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/cascade.xml"), std::string::npos) << e.what();
  }
}

TEST(FaceDetector, UnreadableCascadeThrows) {
  FaceDetectorConfig c;
  c.model_path = DFD_TEST_DATA_DIR "/astronaut.png";  // exists, not a cascade
  EXPECT_THROW(FaceDetector::create(c), std::runtime_error);
  c.model_path = DFD_TEST_DATA_DIR;  // a directory
  EXPECT_THROW(FaceDetector::create(c), std::runtime_error);
}

TEST(FaceDetector, DefaultCascadeIsTheConfiguredOne) {
  FaceDetectorConfig c;
  EXPECT_TRUE(c.model_path.empty());
  EXPECT_NO_THROW(FaceDetector::create(c));
  c.model_path = DFD_HAAR_CASCADE;
  EXPECT_EQ(FaceDetector::create(c)->detect(astronaut()).size(), 1u);
}

TEST(FaceDetector, YuNetWithoutModelThrows) {
  FaceDetectorConfig c;
  c.kind = DetectorKind::YuNet;
  EXPECT_THROW(FaceDetector::create(c), std::runtime_error);
  c.model_path = "/nonexistent/yunet.onnx";
  try {
    FaceDetector::create(c);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/yunet.onnx"), std::string::npos) << e.what();
  }
}

TEST(FaceDetector, NoneIsTheWholeFrame) {
  FaceDetectorConfig c;
  c.kind = DetectorKind::None;
  c.min_face_size = 4000;  // does not apply
  auto d = FaceDetector::create(c);
  const auto dets = d->detect(cv::Mat(720, 1280, CV_8UC3, cv::Scalar::all(0)));
  ASSERT_EQ(dets.size(), 1u);
  EXPECT_EQ(dets[0].box, cv::Rect(0, 0, 1280, 720));
  EXPECT_TRUE(d->detect(cv::Mat()).empty());
}

TEST(FaceDetector, KindStrings) {
  for (auto k : {DetectorKind::Haar, DetectorKind::YuNet, DetectorKind::None})
    EXPECT_EQ(detector_kind_from_string(to_string(k)), k);
  EXPECT_STREQ(to_string(DetectorKind::YuNet), "yunet");
  EXPECT_EQ(detector_kind_from_string("none"), DetectorKind::None);
  EXPECT_THROW(detector_kind_from_string("Haar"), std::invalid_argument);
  EXPECT_THROW(detector_kind_from_string("mtcnn"), std::invalid_argument);
}

}  // namespace
TEST(FaceDetector, LbpCascadeFindsTheAstronaut) {
  FaceDetectorConfig c;
  c.kind = DetectorKind::Lbp;
  c.detect_max_side = 0;
  auto d = FaceDetector::create(c);
  const auto dets = d->detect(astronaut());
  ASSERT_GE(dets.size(), 1u);
  EXPECT_TRUE(centre_inside(dets[0].box, kTrueFace)) << dets[0].box;
  EXPECT_EQ(detector_kind_from_string("lbp"), DetectorKind::Lbp);
  EXPECT_STREQ(to_string(DetectorKind::Lbp), "lbp");
}

TEST(FaceDetector, ScaleFactorMustExceedOne) {
  FaceDetectorConfig c;
  c.scale_factor = 1.0f;
  EXPECT_THROW(FaceDetector::create(c), std::invalid_argument);
}

TEST(FaceDetector, SmallFacesInA720pFrameSurviveTheDownscale) {
  // Four portraits of 290 px (faces about 55 px) in 1280x720: at the 480 px
  // default they would shrink below the cascade window (none found); the
  // scale floor set by min_face_size keeps them findable.
  cv::Mat frame(720, 1280, CV_8UC3, cv::Scalar::all(60)), small;
  cv::resize(astronaut(), small, cv::Size(290, 290), 0, 0, cv::INTER_AREA);
  for (int k = 0; k < 4; ++k) small.copyTo(frame(cv::Rect(20 + k * 315, 200, 290, 290)));
  EXPECT_EQ(haar(480, 40, 8)->detect(frame).size(), 4u);
  // Asking only for faces of 100 px and more lets it detect at 480 px: none of these.
  EXPECT_EQ(haar(480, 100, 8)->detect(frame).size(), 0u);
}

}  // namespace dfd

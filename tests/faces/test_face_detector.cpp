// Face detection on a public-domain NASA portrait (tests/data/astronaut.png,
// 512x512). The true face, measured once by eye from the image (hairline to
// chin, cheek to cheek), is about x 175..275, y 70..180.
#include <gtest/gtest.h>
#include <unistd.h>

#include <opencv2/imgcodecs.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
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

TEST(FaceDetector, YuNetMissingOrBadModelThrowsNamingThePath) {
  FaceDetectorConfig c;
  c.kind = DetectorKind::YuNet;
  c.model_path = "/nonexistent/yunet.onnx";
  try {
    FaceDetector::create(c);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/yunet.onnx"), std::string::npos) << e.what();
  }
  c.model_path = DFD_TEST_DATA_DIR "/astronaut.png";  // exists, not an ONNX file
  try {
    FaceDetector::create(c);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("astronaut.png"), std::string::npos) << e.what();
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

// --- YuNet, the shipped model (models/yunet/face_detection_yunet_2022mar.onnx)

std::unique_ptr<FaceDetector> yunet(int max_side = 480, int min_face = 40, int max_faces = 8) {
  FaceDetectorConfig c;
  c.kind = DetectorKind::YuNet;  // model_path empty: the shipped file
  c.detect_max_side = max_side;
  c.min_face_size = min_face;
  c.max_faces = max_faces;
  return FaceDetector::create(c);
}

TEST(YuNet, ShippedModelIsFoundWithoutAPath) {
  const std::string found = find_default_yunet();
  ASSERT_FALSE(found.empty());
  EXPECT_EQ(found, std::string(DFD_SOURCE_MODEL_DIR) + "/" + kDefaultYuNetFile);  // run from the build tree
  EXPECT_NO_THROW(yunet());
}

TEST(YuNet, DfdModelDirComesFirst) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("dfd-yunet-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  ::setenv("DFD_MODEL_DIR", dir.c_str(), 1);
  const auto cands = default_yunet_candidates();
  ASSERT_EQ(cands.size(), 4u);
  EXPECT_EQ(cands[0], dir.string() + "/yunet/face_detection_yunet_2022mar.onnx");
  EXPECT_EQ(cands[1], dir.string() + "/face_detection_yunet_2022mar.onnx");
  EXPECT_EQ(cands[2], std::string(DFD_INSTALLED_MODEL_DIR) + "/" + kDefaultYuNetFile);
  EXPECT_EQ(cands[3], std::string(DFD_SOURCE_MODEL_DIR) + "/" + kDefaultYuNetFile);
  // Nothing there yet: the next place. A copy directly in the folder: that one.
  EXPECT_NE(find_default_yunet().rfind(dir.string(), 0), 0u);
  fs::copy_file(std::string(DFD_SOURCE_MODEL_DIR) + "/" + kDefaultYuNetFile, dir / "face_detection_yunet_2022mar.onnx");
  EXPECT_EQ(find_default_yunet(), cands[1]);
  // A file that is no ONNX there: the detector names it.
  { std::ofstream(dir / "face_detection_yunet_2022mar.onnx", std::ios::trunc) << "not a network"; }
  try {
    yunet();
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(cands[1]), std::string::npos) << e.what();
  }
  ::unsetenv("DFD_MODEL_DIR");
  fs::remove_all(dir);
}

TEST(YuNet, FindsTheAstronautWithLandmarks) {
  const auto dets = yunet()->detect(astronaut());
  ASSERT_EQ(dets.size(), 1u);
  const Detection& d = dets[0];
  EXPECT_GT(iou(d.box, kTrueFace), 0.5f) << d.box;
  EXPECT_TRUE(centre_inside(d.box, kTrueFace)) << d.box;
  EXPECT_GT(d.score, 0.6f);
  ASSERT_TRUE(d.has_landmarks);
  for (const auto& p : d.landmarks) EXPECT_TRUE(d.box.contains(cv::Point(p))) << p << " outside " << d.box;
  // Right eye (image left), left eye, nose, mouth corners: where a face has them.
  const auto& l = d.landmarks;
  EXPECT_LT(l[0].x, l[1].x);
  EXPECT_LT(l[3].x, l[4].x);
  EXPECT_LT(std::max(l[0].y, l[1].y), l[2].y);  // eyes above the nose tip
  EXPECT_LT(l[2].y, std::min(l[3].y, l[4].y));  // nose tip above the mouth
  EXPECT_GT(l[2].x, l[0].x);
  EXPECT_LT(l[2].x, l[1].x);
  EXPECT_NEAR(l[0].y, l[1].y, 8.f);  // the portrait is upright
}

TEST(YuNet, ReducedInputSizeMapsBoxesAndLandmarksBack) {
  // The portrait at 720x720 in a black 1280x720 frame, detected on a 320x180 copy.
  const double s = 720.0 / 512.0;
  cv::Mat frame(720, 1280, CV_8UC3, cv::Scalar::all(0)), big;
  cv::resize(astronaut(), big, cv::Size(720, 720), 0, 0, cv::INTER_LINEAR);
  big.copyTo(frame(cv::Rect(280, 0, 720, 720)));
  const cv::Rect truth = scaled(kTrueFace, s, {280, 0});
  const auto full = yunet(0)->detect(frame);
  const auto small = yunet(320)->detect(frame);
  ASSERT_EQ(full.size(), 1u);
  ASSERT_EQ(small.size(), 1u);
  EXPECT_GT(iou(small[0].box, truth), 0.5f) << small[0].box << " vs " << truth;
  EXPECT_GT(iou(small[0].box, full[0].box), 0.7f) << small[0].box << " vs " << full[0].box;
  for (int k = 0; k < kLandmarks; ++k)  // within 10 % of the face size of full resolution's (4x coarser input)
    EXPECT_LT(cv::norm(small[0].landmarks[size_t(k)] - full[0].landmarks[size_t(k)]), 0.1 * truth.width) << k;
}

TEST(YuNet, ThreeFacesLargestFirst) {
  const Tiles t = three_tiles();
  const auto dets = yunet(0)->detect(t.frame);
  ASSERT_EQ(dets.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_GT(iou(dets[size_t(i)].box, t.faces[i]), 0.5f) << i << ": " << dets[size_t(i)].box << " vs " << t.faces[i];
    EXPECT_TRUE(dets[size_t(i)].has_landmarks);
    EXPECT_TRUE(t.faces[i].contains(cv::Point(dets[size_t(i)].landmarks[2]))) << i;  // its own nose
  }
  EXPECT_EQ(yunet(0, 40, 2)->detect(t.frame).size(), 2u);  // max_faces
  EXPECT_EQ(yunet(0, 70, 8)->detect(t.frame).size(), 2u);  // min_face_size drops the 57 px face
}

TEST(YuNet, NothingOnBlankOrNoiseFrames) {
  auto d = yunet();
  EXPECT_TRUE(d->detect(cv::Mat(480, 640, CV_8UC3, cv::Scalar::all(0))).empty());
  EXPECT_TRUE(d->detect(cv::Mat(720, 1280, CV_8UC3, cv::Scalar(128, 128, 128))).empty());
  EXPECT_TRUE(d->detect(cv::Mat()).empty());
  cv::RNG rng(12345);
  for (int i = 0; i < 3; ++i) {
    cv::Mat noise(480, 640, CV_8UC3);
    rng.fill(noise, cv::RNG::UNIFORM, 0, 256);
    EXPECT_TRUE(d->detect(noise).empty()) << "noise frame " << i;
  }
}

TEST(YuNet, AcceptsBgraAndGrayAndFrameSizeChanges) {
  cv::Mat bgra, gray;
  cv::cvtColor(astronaut(), bgra, cv::COLOR_BGR2BGRA);
  cv::cvtColor(astronaut(), gray, cv::COLOR_BGR2GRAY);
  auto d = yunet();
  cv::Mat wide(300, 900, CV_8UC3, cv::Scalar::all(0));
  for (const cv::Mat& m : {bgra, gray, astronaut()}) {
    const auto dets = d->detect(m);
    ASSERT_EQ(dets.size(), 1u);
    EXPECT_GT(iou(dets[0].box, kTrueFace), 0.5f);
    EXPECT_TRUE(d->detect(wide).empty());  // another input size in between
  }
}

// OpenCV 4.6's YuNet cannot shape some small inputs (64x48 threw from
// getLayerShapesRecursively, failing a whole scan of a valid raw video):
// frames of any small size are detected on (padded), and a face on a
// normal frame in between is found at its place.
TEST(YuNet, SmallFramesOfAnySize) {
  auto d = yunet();
  for (cv::Size s : {cv::Size(64, 48), cv::Size(48, 64), cv::Size(33, 17), cv::Size(16, 16), cv::Size(1, 1)}) {
    cv::Mat m(s, CV_8UC3, cv::Scalar::all(0));
    EXPECT_NO_THROW(EXPECT_TRUE(d->detect(m).empty()) << s) << s;
  }
  // A face on a frame between two small ones is still found where it is.
  const cv::Mat face = astronaut();
  for (int round = 0; round < 2; ++round) {
    const auto dets = d->detect(face);
    ASSERT_EQ(dets.size(), 1u) << "round " << round;
    EXPECT_GT(iou(dets[0].box, kTrueFace), 0.5f) << dets[0].box;
    EXPECT_NO_THROW(d->detect(cv::Mat(48, 64, CV_8UC3, cv::Scalar::all(0))));
  }
}

}  // namespace dfd

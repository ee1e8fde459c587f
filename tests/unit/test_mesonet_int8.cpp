// precision=int8 for MesoNet (OpenCV's dnn, quantized at load on the
// calibration faces of models/mesonet/calibration): it really runs int8 (its
// logits are not the float32 net's), stays close to float32 on the
// authors' sample faces, is the same whatever the batch and for every
// instance, and refuses what it cannot do with the reason.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "mesonet_paths.h"
#include "model/family.h"
#include "model/mesonet_calibration.h"
#include "scoped_env.h"

using namespace dfd;
using unit_test::ScopedEnv;
using unit_test::TempDir;
using namespace mesonet_test;

namespace {


const std::vector<std::string> kFaces = {"df00204.jpg", "df01254.jpg", "real00240.jpg", "real00772.jpg"};

std::vector<cv::Mat> sample_faces() {
  std::vector<cv::Mat> out;
  for (const auto& f : kFaces) {
    out.push_back(cv::imread(face(f)));
    EXPECT_FALSE(out.back().empty()) << face(f);
  }
  return out;
}

ModelOptions with(const std::string& precision, const std::string& backend = "opencv") {
  ModelOptions o;
  o.precision = precision;
  o.backend = backend;
  return o;
}

std::vector<double> p_fake(const Detector& d, const std::vector<cv::Mat>& crops) {
  std::vector<const Feature*> ptrs;
  const auto feats = d.features(crops);
  for (const auto& f : feats) ptrs.push_back(&f);
  std::vector<double> out;
  for (const auto& p : d.classify_frames(ptrs)) out.push_back(p.prob_fake);
  return out;
}

}  // namespace

TEST(MesoNetInt8, EveryPublishedFileStaysCloseToFloat32OnTheSampleFaces) {
  const auto faces = sample_faces();
  for (const char* file : {"Meso4_DF.h5", "Meso4_F2F.h5", "MesoInception_DF.h5", "MesoInception_F2F.h5"}) {
    const auto f32 = load_detector(model_path(file), with("fp32"));
    const auto i8 = load_detector(model_path(file), with("int8"));
    const auto a = p_fake(*f32, faces), b = p_fake(*i8, faces);
    double largest = 0, any = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      largest = std::max(largest, std::fabs(a[i] - b[i]));
      any += std::fabs(a[i] - b[i]);
      std::printf("%s %s fp32 %.5f int8 %.5f\n", file, kFaces[i].c_str(), a[i], b[i]);
    }
    EXPECT_LT(largest, 0.05) << file;
    // Quantized arithmetic: not the float32 net's numbers.
    EXPECT_GT(any, 1e-6) << file << ": int8 gave exactly the float32 probabilities";
  }
}

TEST(MesoNetInt8, KeepsMeso4DFsVerdictsOnTheSampleFaces) {
  const auto i8 = load_detector(model_path("Meso4_DF.h5"), with("int8"));
  const auto p = p_fake(*i8, sample_faces());
  EXPECT_GT(p[0], 0.5);  // df00204
  EXPECT_GT(p[1], 0.5);  // df01254
  EXPECT_LT(p[2], 0.5);  // real00240
  EXPECT_LT(p[3], 0.5);  // real00772
}

TEST(MesoNetInt8, BatchesAndInstancesGiveTheSameResults) {
  const auto faces = sample_faces();
  const auto a = load_detector(model_path("Meso4_DF.h5"), with("int8"));
  const auto b = load_detector(model_path("Meso4_DF.h5"), with("int8"));
  const auto together = p_fake(*a, faces);
  for (size_t i = 0; i < faces.size(); ++i) {
    EXPECT_NEAR(p_fake(*a, {faces[i]})[0], together[i], 1e-6) << kFaces[i];
    EXPECT_NEAR(p_fake(*b, {faces[i]})[0], together[i], 1e-6) << kFaces[i];
  }
}

TEST(MesoNetInt8, CalibratesOnTheFacesItIsGiven) {
  const auto faces = sample_faces();
  const auto shipped = p_fake(*load_detector(model_path("Meso4_DF.h5"), with("int8")), faces);
  TempDir dir;
  // One dark face only: other activation ranges, so other int8 scales.
  cv::Mat dark;
  faces[2].convertTo(dark, -1, 0.3);
  cv::imwrite(dir.path + "/dark.png", dark);
  ScopedEnv e("DFD_INT8_CALIBRATION", dir.path);
  const auto other = p_fake(*load_detector(model_path("Meso4_DF.h5"), with("int8")), faces);
  double diff = 0;
  for (size_t i = 0; i < faces.size(); ++i) diff += std::fabs(shipped[i] - other[i]);
  EXPECT_GT(diff, 1e-4);
}

TEST(MesoNetInt8, CalibrationFacesAreFoundBesideTheModelAndMirrored) {
  EXPECT_EQ(find_calibration_dir(model_path("Meso4_DF.h5")), model_path("calibration"));
  const auto faces = load_calibration_faces(model_path("calibration"));
  ASSERT_EQ(faces.size(), 8u);  // four faces and their mirror images
  cv::Mat flipped;
  cv::flip(faces[0], flipped, 1);
  EXPECT_EQ(cv::norm(flipped, faces[1], cv::NORM_INF), 0.0);
}

TEST(MesoNetInt8, BadCalibrationIsRefusedWithTheReason) {
  auto expect_error = [](const std::string& dir, const std::string& words) {
    ScopedEnv e("DFD_INT8_CALIBRATION", dir);
    try {
      load_detector(model_path("Meso4_DF.h5"), with("int8"));
      ADD_FAILURE() << "loaded with calibration " << dir;
    } catch (const std::runtime_error& err) {
      EXPECT_NE(std::string(err.what()).find(words), std::string::npos) << err.what();
    }
  };
  TempDir empty;
  expect_error(empty.path, "no JPEG or PNG");
  expect_error(empty.path + "/missing", "not a directory");
  TempDir junk;
  std::ofstream(junk.path + "/face.jpg") << "not a picture";
  expect_error(junk.path, "not an image");
}

TEST(MesoNetInt8, OptionsItCannotRunAreRefused) {
  EXPECT_THROW(load_detector(model_path("Meso4_DF.h5"), with("int8", "libtorch")), std::invalid_argument);
  EXPECT_THROW(load_detector(model_path("Meso4_DF.h5"), with("fp16")), std::invalid_argument);
  EXPECT_THROW(load_detector(model_path("Meso4_DF.h5"), with("int4")), std::invalid_argument);
}

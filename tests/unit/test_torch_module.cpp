// LibTorch loaded only when needed (model/torch_module.h). This program links
// the core library alone, as the plugin and deepfake-scan do: the default
// MesoNet and a ResNeXt model on the CPU (oneDNN, model/onednn_resnext.h)
// must run without libtorch_cpu.so in the process, backend=libtorch must
// load it on demand, and a missing or wrong module must be one clear error.
// One test, in this order, because loading is once per process.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "model/family.h"
#include "model/torch_module.h"
#include "reference_fixtures.h"

using namespace dfd;

namespace {

std::string model_path(const std::string& f) {
  const char* d = std::getenv("DFD_MESONET_MODELS");
  return std::string(d ? d : "models/mesonet") + "/" + f;
}

bool libtorch_mapped() {
  std::ifstream maps("/proc/self/maps");
  std::stringstream s;
  s << maps.rdbuf();
  return s.str().find("libtorch_cpu") != std::string::npos;
}

// The error of loading `path` with `opts`; "" when it loads.
std::string load_error(const std::string& path, const ModelOptions& opts = {}) {
  try {
    load_detector(path, opts);
    return "";
  } catch (const std::runtime_error& e) {
    return e.what();
  }
}

}  // namespace

TEST(TorchModule, LoadedOnlyWhenAModelNeedsIt) {
  ASSERT_FALSE(libtorch_mapped()) << "this test must link the core library only";
  unsetenv("DFD_TORCH_MODULE");

  // 1. The default model runs on OpenCV's dnn: no LibTorch.
  auto meso = load_detector(model_path("Meso4_DF.h5"));
  const auto p = meso->score_crops({cv::Mat(256, 256, CV_8UC3, cv::Scalar(90, 120, 160))});
  ASSERT_EQ(p.size(), 1u);
  EXPECT_GT(p[0], 0.f);
  EXPECT_LT(p[0], 1.f);
  EXPECT_FALSE(torch_backend_loaded());
  EXPECT_FALSE(libtorch_mapped());
  // A ResNeXt model on the CPU too (oneDNN), with the reference's scores.
  const auto want = test::expected()["per_frame_prob_fake"].get<std::vector<float>>();
  {
    auto resnext = Model::load(test::ref_path("reference.pt"));
    EXPECT_EQ(resnext->engine(), "onednn-fused");
    const auto got = resnext->classify_crops(test::crops());
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i].prob_fake, want[i], 1e-4);
  }
  EXPECT_FALSE(torch_backend_loaded());
  EXPECT_FALSE(libtorch_mapped());

  // 2. A module that is not there: one error naming what needs it and where it looked.
  setenv("DFD_TORCH_MODULE", "/nonexistent/libdfd-torch.so", 1);
  ModelOptions torch_resnext;
  torch_resnext.backend = "libtorch";
  std::string err = load_error(test::ref_path("reference.pt"), torch_resnext);
  EXPECT_NE(err.find("ResNeXt models on backend=libtorch or a CUDA device need libdfd-torch.so"), std::string::npos) << err;
  EXPECT_NE(err.find("/nonexistent/libdfd-torch.so: no such file"), std::string::npos) << err;
  EXPECT_NE(err.find("DFD_TORCH_MODULE"), std::string::npos) << err;
  ModelOptions torch_meso;
  torch_meso.backend = "libtorch";
  err = load_error(model_path("Meso4_DF.h5"), torch_meso);
  EXPECT_NE(err.find("MesoNet on backend=libtorch need libdfd-torch.so"), std::string::npos) << err;
  // The old API says the same.
  try {
    Model::load(test::ref_path("reference.pt"), torch_resnext);
    ADD_FAILURE() << "Model::load without the module";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("need libdfd-torch.so"), std::string::npos) << e.what();
  }

  // 3. A file that is not a shared library, and one without the entry point.
  setenv("DFD_TORCH_MODULE", model_path("Meso4_DF.h5").c_str(), 1);
  err = load_error(test::ref_path("reference.pt"), torch_resnext);
  EXPECT_NE(err.find("need libdfd-torch.so"), std::string::npos) << err;
  EXPECT_NE(err.find("Meso4_DF.h5"), std::string::npos) << err;
  setenv("DFD_TORCH_MODULE", "libm.so.6", 1);
  err = load_error(test::ref_path("reference.pt"), torch_resnext);
  EXPECT_NE(err.find("no dfd_torch_backend_v1"), std::string::npos) << err;
  EXPECT_FALSE(torch_backend_loaded());
  EXPECT_FALSE(libtorch_mapped());
  // MesoNet goes on without it.
  EXPECT_EQ(load_error(model_path("MesoInception_DF.h5")), "");

  // 4. Found (the build tree's module): ResNeXt on LibTorch loads and gives the reference's scores.
  unsetenv("DFD_TORCH_MODULE");
  auto resnext = load_detector(test::ref_path("reference.pt"), torch_resnext);
  EXPECT_TRUE(torch_backend_loaded());
  EXPECT_TRUE(libtorch_mapped());
  const auto got = resnext->score_crops(test::crops());
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-4);
  // And the LibTorch MesoNet agrees with the default one.
  auto meso_torch = load_detector(model_path("Meso4_DF.h5"), torch_meso);
  const auto c = cv::Mat(256, 256, CV_8UC3, cv::Scalar(90, 120, 160));
  EXPECT_NEAR(meso_torch->score_crops({c})[0], p[0], 1e-5);
}

TEST(TorchModule, CandidatesHonourTheOverrideAndEndWithTheLinkersSearch) {
  setenv("DFD_TORCH_MODULE", "/some/where/libdfd-torch.so", 1);
  EXPECT_EQ(torch_module_candidates(), std::vector<std::string>{"/some/where/libdfd-torch.so"});
  unsetenv("DFD_TORCH_MODULE");
  const auto c = torch_module_candidates();
  ASSERT_GE(c.size(), 3u);
  EXPECT_EQ(c.back(), "libdfd-torch.so");
  // Run from the build tree: the build's module first.
  EXPECT_NE(c.front().find("/src/libdfd-torch.so"), std::string::npos) << c.front();
}

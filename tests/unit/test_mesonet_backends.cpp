// MesoNet's two backends: OpenCV's dnn (the default, no LibTorch) and
// LibTorch (libdfd-torch). The same weights must give the same logits and
// P(FAKE) on both, and both the PyTorch rebuild's (tests/python/
// make_mesonet_reference.py), for the four published files; batching,
// threads, stored precisions and bad options.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "mesonet_paths.h"
#include "model/family.h"
#include "model/mesonet_layout.h"
#include "reference_fixtures.h"

using namespace dfd;
using namespace mesonet_test;

namespace {


// The 256x256 BGR crops the PyTorch rebuild saw.
std::vector<cv::Mat> crops() {
  std::ifstream f(fixture("mesonet_crops.u8"), std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), {});
  const size_t one = 256 * 256 * 3;
  std::vector<cv::Mat> out;
  for (size_t off = 0; off + one <= bytes.size(); off += one) {
    cv::Mat m(256, 256, CV_8UC3);
    std::memcpy(m.data, bytes.data() + off, one);
    out.push_back(m);
  }
  return out;
}

ModelOptions on(const std::string& backend) {
  ModelOptions o;
  o.backend = backend;
  return o;
}

std::vector<float> logits(const Detector& d, const std::vector<cv::Mat>& c) {
  std::vector<float> out;
  for (const auto& f : d.features(c)) out.push_back(f.at(0));
  return out;
}

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    m = std::max(m, std::fabs(double(a[i]) - b[i]) / std::max(1.0, std::fabs(double(b[i]))));
  return m;
}

const char* kFiles[] = {"Meso4_DF.h5", "Meso4_F2F.h5", "MesoInception_DF.h5", "MesoInception_F2F.h5"};

// The weights of a file in our names, stored as `dtype`.
ResolvedCheckpoint stored_as(const std::string& file, DType dtype) {
  ResolvedCheckpoint r = resolve_checkpoint(read_checkpoint(model_path(file)), file);
  for (auto& [name, t] : r.tensors) {
    const int64_t n = t.numel();
    std::vector<float> f(static_cast<size_t>(n));
    std::memcpy(f.data(), t.bytes.data(), size_t(n) * 4);
    t.dtype = dtype;
    t.bytes.assign(size_t(n) * dtype_size(dtype), 0);
    for (int64_t i = 0; i < n; ++i) {
      if (dtype == DType::F64) {
        const double v = f[size_t(i)];
        std::memcpy(t.bytes.data() + 8 * i, &v, 8);
      } else {  // BF16: the upper half of the float32
        uint32_t bits;
        std::memcpy(&bits, &f[size_t(i)], 4);
        const uint16_t h = uint16_t(bits >> 16);
        std::memcpy(t.bytes.data() + 2 * i, &h, 2);
      }
    }
  }
  return r;
}

}  // namespace

TEST(MesoNetBackends, TheDefaultIsOpenCvAndEveryFileMatchesLibTorchAndThePyTorchRebuild) {
  const auto c = crops();
  ASSERT_GE(c.size(), 8u);
  std::ifstream f(fixture("mesonet_expected.json"));
  const auto e = nlohmann::json::parse(f);
  for (const char* file : kFiles) {
    SCOPED_TRACE(file);
    auto dnn = load_detector(model_path(file));  // the default backend
    auto torch = load_detector(model_path(file), on("libtorch"));
    const auto a = logits(*dnn, c), b = logits(*torch, c);
    const auto want = e["models"][file]["logit"].get<std::vector<float>>();
    const auto pa = dnn->score_crops(c), pb = torch->score_crops(c);
    double max_p = 0;
    for (size_t i = 0; i < pa.size(); ++i) max_p = std::max(max_p, std::fabs(double(pa[i]) - pb[i]));
    EXPECT_LT(max_rel_diff(a, b), 1e-5);
    EXPECT_LT(max_rel_diff(a, want), 1e-5);
    EXPECT_LT(max_p, 1e-5);
    // Logits spread enough that a wrong layer would show.
    EXPECT_GT(*std::max_element(a.begin(), a.end()) - *std::min_element(a.begin(), a.end()), 1.0);
    std::printf("[ backends ] %s: OpenCV dnn vs LibTorch: max |logit diff| (relative) %.2e, max |P(FAKE) diff| %.2e\n",
                file, max_rel_diff(a, b), max_p);
  }
}

TEST(MesoNetBackends, ExplicitOpenCvIsTheDefault) {
  const auto c = crops();
  auto a = load_detector(model_path("MesoInception_DF.h5"));
  auto b = load_detector(model_path("MesoInception_DF.h5"), on("opencv"));
  EXPECT_EQ(logits(*a, c), logits(*b, c));
}

// Chunks of 4 crops, batches of any size and crops one by one give the same values.
TEST(MesoNetBackends, BatchSizeDoesNotChangeTheResults) {
  auto c = crops();
  for (const char* file : {"Meso4_DF.h5", "MesoInception_F2F.h5"}) {
    SCOPED_TRACE(file);
    auto det = load_detector(model_path(file));
    std::vector<cv::Mat> nine(c.begin(), c.begin() + 8);
    nine.push_back(c[0]);
    const auto all = logits(*det, nine);
    ASSERT_EQ(all.size(), 9u);
    for (size_t i = 0; i < nine.size(); ++i) EXPECT_NEAR(logits(*det, {nine[i]})[0], all[i], 1e-5f) << i;
    EXPECT_NEAR(all[8], all[0], 1e-5f);
  }
}

// A loaded detector is shared between threads (elements): each forward takes a net of its own.
TEST(MesoNetBackends, ConcurrentCallsGiveTheSameResults) {
  const auto c = crops();
  auto det = load_detector(model_path("MesoInception_DF.h5"));
  const auto want = logits(*det, c);
  std::vector<std::vector<float>> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 3; ++rep) got[t] = logits(*det, std::vector<cv::Mat>(c.begin(), c.begin() + 1 + t));
    });
  for (auto& t : threads) t.join();
  for (size_t t = 0; t < got.size(); ++t) {
    ASSERT_EQ(got[t].size(), t + 1);
    for (size_t i = 0; i <= t; ++i) EXPECT_NEAR(got[t][i], want[i], 1e-5f);
  }
}

// Weights stored as float64 or bfloat16 are computed in float32 on both backends alike.
TEST(MesoNetBackends, StoredPrecisionsAreReadAlike) {
  const auto c = crops();
  for (DType dt : {DType::F64, DType::BF16}) {
    SCOPED_TRACE(dtype_name(dt));
    const auto r = stored_as("Meso4_F2F.h5", dt);
    auto dnn = detector_from_state_dict(r.tensors, r.card, on("opencv"));
    auto torch = detector_from_state_dict(r.tensors, r.card, on("libtorch"));
    EXPECT_LT(max_rel_diff(logits(*dnn, c), logits(*torch, c)), 1e-5);
  }
  // float64 holds the float32 weights exactly: the published outputs.
  auto f64 = stored_as("Meso4_F2F.h5", DType::F64);
  EXPECT_LT(max_rel_diff(logits(*detector_from_state_dict(f64.tensors, f64.card), c),
                         logits(*load_detector(model_path("Meso4_F2F.h5")), c)),
            1e-6);
}

TEST(MesoNetBackends, BadOptionsAreRefusedWithTheReason) {
  auto expect_error = [](const ModelOptions& o, const std::string& path, const std::string& words) {
    try {
      load_detector(path, o);
      ADD_FAILURE() << "no error for " << words;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  expect_error(on("tensorrt"), model_path("Meso4_DF.h5"), "unknown backend 'tensorrt'");
  expect_error(on("opencv"), test::ref_path("reference.pt"), "ResNeXt models run on backend=auto, onednn or libtorch (asked for 'opencv')");
  ModelOptions gpu = on("opencv");
  gpu.device = "cuda";
  expect_error(gpu, model_path("Meso4_DF.h5"), "device=cpu only");
  ModelOptions bf16;
  bf16.precision = "bf16";
  expect_error(bf16, model_path("Meso4_DF.h5"), "precision=fp32 or int8 (asked for 'bf16')");
}

// Weights that do not fit are refused before a net is built, on either backend.
TEST(MesoNetBackends, MisShapedWeightsAreRefused) {
  auto r = resolve_checkpoint(read_checkpoint(model_path("Meso4_DF.h5")), "Meso4_DF.h5");
  r.tensors["conv2.weight"].shape = {16, 8, 3, 3};
  for (const char* b : {"opencv", "libtorch"}) EXPECT_THROW(detector_from_state_dict(r.tensors, r.card, on(b)), std::runtime_error) << b;
  r = resolve_checkpoint(read_checkpoint(model_path("Meso4_DF.h5")), "Meso4_DF.h5");
  r.tensors.erase("bn3.running_var");
  for (const char* b : {"opencv", "libtorch"}) EXPECT_THROW(detector_from_state_dict(r.tensors, r.card, on(b)), std::runtime_error) << b;
}

// Not a check: crops/s of each backend at batch 1 and 8 on this machine, the
// fastest of several batches (other work on the machine counts less).
TEST(MesoNetBackends, CropsPerSecond) {
  const auto c = crops();
  keep_freed_memory_for_reuse();
  for (const char* file : {"Meso4_DF.h5", "MesoInception_DF.h5"}) {
    for (const char* backend : {"opencv", "libtorch"}) {
      auto det = load_detector(model_path(file), on(backend));
      for (size_t batch : {size_t(1), size_t(8)}) {
        std::vector<cv::Mat> b;
        for (size_t i = 0; i < batch; ++i) b.push_back(c[i % c.size()]);
        det->score_crops(b);  // warm up
        double best = 1e9, total = 0;
        for (int rep = 0; rep < 30 && total < 2.0; ++rep) {
          const auto t0 = std::chrono::steady_clock::now();
          det->score_crops(b);
          const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          best = std::min(best, s);
          total += s;
        }
        std::printf("[ speed    ] %s, %s, batch %zu: %.0f crops/s (best batch %.2f ms)\n", file, backend, batch,
                    double(batch) / best, best * 1e3);
      }
    }
  }
}

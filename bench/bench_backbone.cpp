// The ResNeXt50 backbone, ours against the strongest PyTorch configuration,
// in one process: our OneDnnResNeXt (model/onednn_resnext.h, the path the
// element runs; and, for comparison, our previous path, ResNeXtNet on
// LibTorch's mkldnn tensors, backend=libtorch) and the same checkpoint's backbone traced by PyTorch
// (bench/backbone_peer.py --save-traced), frozen and optimised here with
// LibTorch's own torch::jit::freeze + optimize_for_inference (the passes
// Python's torch.jit.freeze / optimize_for_inference call, without Python's
// per-call overhead). Both get the same normalised 112x112 crops, already in
// memory (preprocessing is timed elsewhere), the same threads, warm-ups at
// every batch size, then alternating timed rounds so that a busy machine
// loads both alike. Prints one JSON object; asserts nothing about speed.
// --int8 adds our precision=int8 backbone (calibrated on the shipped faces,
// model/mesonet_calibration.h) to the rounds, and its largest feature change
// relative to the features' largest value.
//
// Usage: deepfake-bench-backbone CHECKPOINT.pt TRACED.pt [--threads N]
//        [--rounds 7] [--seconds 0.4] [--batches 1,8] [--int8]
#include <torch/script.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/architecture.h"
#include "model/mesonet_calibration.h"
#include "model/onednn_resnext.h"
#include "model/resnext_net.h"

using namespace dfd;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string checkpoint, traced;
  int threads = 2, rounds = 7;
  double seconds = 0.4;  // per side per round, at least 3 calls
  std::vector<int> batches{1, 8};
  bool int8 = false;
};

Args parse(int argc, char** argv) {
  Args a;
  std::vector<std::string> pos;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--int8") {
      a.int8 = true;
      continue;
    }
    if (k.rfind("--", 0) != 0) {
      pos.push_back(k);
      continue;
    }
    if (i + 1 >= argc) throw std::invalid_argument("missing value for " + k);
    const std::string v = argv[++i];
    if (k == "--threads") a.threads = std::stoi(v);
    else if (k == "--rounds") a.rounds = std::stoi(v);
    else if (k == "--seconds") a.seconds = std::stod(v);
    else if (k == "--batches") {
      a.batches.clear();
      for (size_t p = 0; p < v.size();) {
        const size_t q = v.find(',', p);
        a.batches.push_back(std::stoi(v.substr(p, q - p)));
        p = q == std::string::npos ? v.size() : q + 1;
      }
    } else throw std::invalid_argument("unknown option " + k);
  }
  if (pos.size() != 2) throw std::invalid_argument("usage: deepfake-bench-backbone CHECKPOINT.pt TRACED.pt [--threads N] [--rounds 7] [--seconds 0.4] [--batches 1,8] [--int8]");
  if (a.threads < 1 || a.rounds < 1 || a.seconds <= 0 || a.batches.empty()) throw std::invalid_argument("bad option value");
  a.checkpoint = pos[0];
  a.traced = pos[1];
  return a;
}

// Milliseconds per crop of `call`, over at least `seconds` and 3 calls.
template <class F>
double ms_per_crop(F call, int batch, double seconds) {
  int calls = 0;
  const auto t0 = Clock::now();
  double elapsed = 0;
  while (calls < 3 || elapsed < seconds) {
    call();
    ++calls;
    elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  return 1000.0 * elapsed / (double(calls) * batch);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

torch::jit::Module frozen_peer(const std::string& traced) {
  auto m = torch::jit::load(traced);
  m.eval();
  auto frozen = torch::jit::freeze(m);
  return torch::jit::optimize_for_inference(frozen);
}

}  // namespace

int main(int argc, char** argv) try {
  const Args a = parse(argc, argv);
  at::set_num_threads(a.threads);
  StateDict sd = read_checkpoint(a.checkpoint).tensors;
  validate_state_dict(sd);
  ModelOptions mo;
  mo.num_threads = a.threads;
  OneDnnResNeXt ours(sd, mo);
  ResNeXtNet aten(sd, mo);  // our previous path: LibTorch's mkldnn tensors, nothing fused
  std::unique_ptr<OneDnnResNeXt> int8;
  if (a.int8) {
    ModelOptions q = mo;
    q.precision = "int8";
    int8 = std::make_unique<OneDnnResNeXt>(sd, q, calibration_crops(find_calibration_dir(a.checkpoint), Normalisation{}, kInputSize));
  }
  torch::jit::Module peer = frozen_peer(a.traced);
  c10::InferenceMode guard;

  nlohmann::json out = {{"threads", a.threads}, {"rounds", a.rounds}, {"engine", ours.engine()}, {"unfused_engine", aten.engine()}};
  for (int b : a.batches) {
    at::manual_seed(b);
    auto x = torch::rand({b, 3, kInputSize, kInputSize}) * 4 - 2;  // about the normalised range
    ResNeXtEngine::Batch batch = ours.batch(size_t(b)), aten_batch = aten.batch(size_t(b));  // each engine's own host memory
    ResNeXtEngine::Batch int8_batch = int8 ? int8->batch(size_t(b)) : ResNeXtEngine::Batch();
    std::memcpy(batch.data(), x.data_ptr<float>(), sizeof(float) * size_t(x.numel()));
    std::memcpy(aten_batch.data(), x.data_ptr<float>(), sizeof(float) * size_t(x.numel()));
    std::vector<torch::jit::IValue> in{x};

    // Same features from both, before anything is timed.
    auto t0 = Clock::now();  // the first call at a batch size makes its oneDNN plan
    auto f_ours = ours.features(batch);
    const double first_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    t0 = Clock::now();
    auto f_peer = peer.forward(in).toTensor().contiguous();
    const double peer_first_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    double worst = 0, scale = 0;
    for (int i = 0; i < b; ++i)
      for (int j = 0; j < kFeatureDim; ++j) {
        const double p = f_peer[i][j].item<float>();
        worst = std::max(worst, std::abs(double(f_ours[size_t(i)][size_t(j)]) - p));
        scale = std::max(scale, std::abs(p));
      }
    if (worst > 1e-3 * std::max(scale, 1.0)) throw std::runtime_error("features differ: " + std::to_string(worst));
    double int8_change = 0;
    if (int8) {
      std::memcpy(int8_batch.data(), x.data_ptr<float>(), sizeof(float) * size_t(x.numel()));
      const auto f8 = int8->features(int8_batch);
      for (int i = 0; i < b; ++i)
        for (int j = 0; j < kFeatureDim; ++j)
          int8_change = std::max(int8_change, std::abs(double(f8[size_t(i)][size_t(j)] - f_ours[size_t(i)][size_t(j)])) / scale);
    }

    for (int w = 0; w < 3; ++w) {  // oneDNN primitives for this shape, thread pool, allocator
      ours.features(batch);
      aten.features(aten_batch);
      peer.forward(in);
      if (int8) int8->features(int8_batch);
    }
    std::vector<double> t_ours, t_aten, t_peer, t_int8;
    for (int r = 0; r < a.rounds; ++r) {
      t_ours.push_back(ms_per_crop([&] { ours.features(batch); }, b, a.seconds));
      t_aten.push_back(ms_per_crop([&] { aten.features(aten_batch); }, b, a.seconds));
      t_peer.push_back(ms_per_crop([&] { peer.forward(in); }, b, a.seconds));
      if (int8) t_int8.push_back(ms_per_crop([&] { int8->features(int8_batch); }, b, a.seconds));
    }
    const std::string k = "batch" + std::to_string(b);
    out[k] = {{"ours_ms_per_crop", median(t_ours)},
              {"frozen_ms_per_crop", median(t_peer)},
              {"frozen_over_ours", median(t_peer) / median(t_ours)},
              {"unfused_ms_per_crop", median(t_aten)},
              {"ours_rounds", t_ours},
              {"unfused_rounds", t_aten},
              {"frozen_rounds", t_peer},
              {"max_abs_feature_diff", worst},
              {"ours_first_call_ms", first_ms},
              {"frozen_first_call_ms", peer_first_ms}};
    if (int8)
      out[k].update({{"int8_ms_per_crop", median(t_int8)},
                     {"frozen_over_int8", median(t_peer) / median(t_int8)},
                     {"int8_rounds", t_int8},
                     {"int8_max_feature_change", int8_change}});
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "deepfake-bench-backbone: %s\n", e.what());
  return 1;
}

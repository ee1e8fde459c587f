// The ResNeXt50 + LSTM network on a device, timed: crops/s and ms per batch
// at several batch sizes and precisions, and the largest P(FAKE) difference
// between the device and the prepacked CPU path on the same crops. Needs
// only LibTorch and the network core (model/resnext_net.h): no GStreamer,
// no OpenCV, no checkpoint (seeded untrained weights). Figures only: it
// asserts nothing about speed. scripts/gpu-bench builds and runs it.
//
// One timed call is what a caller of Model::classify_crops pays beyond
// preprocessing: normalised crops in page-locked host memory -> one upload
// -> backbone and reference head on the device -> logits back.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/architecture.h"
#include "model/resnext_net.h"

using namespace dfd;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string device = "cuda";
  std::vector<int> batches{1, 8, 32, 128, 512};
  std::vector<std::string> precisions{"fp32", "bf16", "fp16"};
  double seconds = 0.5;  // timed per configuration, at least `min_iters` calls
  int min_iters = 5;
  int compare = 64;      // crops for the device-vs-CPU P(FAKE) comparison
  uint64_t seed = 1;
  std::string json;      // one JSON object per line, for scripts/gpu-bench
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

int positive(const std::string& s, const char* what) {
  size_t used = 0;
  int v = 0;
  try {
    v = std::stoi(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != s.size() || v < 1) throw std::invalid_argument(std::string(what) + " must be a positive integer, got '" + s + "'");
  return v;
}

void usage() {
  std::fprintf(stderr,
               "usage: deepfake-bench-gpu [--device cuda|cuda:N|cpu] [--batches 1,8,32,128,512]\n"
               "         [--precisions fp32,bf16,fp16] [--seconds 0.5] [--compare 64] [--seed 1] [--json FILE]\n"
               "  --device cpu times the device-generic path on the CPU (what CUDA runs) and\n"
               "  compares it with the prepacked CPU path.\n");
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "-h" || k == "--help") {
      usage();
      std::exit(0);
    }
    if (i + 1 >= argc) throw std::invalid_argument("missing value for " + k);
    const std::string v = argv[++i];
    if (k == "--device") a.device = v;
    else if (k == "--batches") {
      a.batches.clear();
      for (auto& b : split(v)) a.batches.push_back(positive(b, "batch"));
    } else if (k == "--precisions") a.precisions = split(v);
    else if (k == "--seconds") a.seconds = std::stod(v);
    else if (k == "--compare") a.compare = positive(v, "--compare");
    else if (k == "--seed") a.seed = uint64_t(positive(v, "--seed"));
    else if (k == "--json") a.json = v;
    else throw std::invalid_argument("unknown option " + k);
  }
  if (a.batches.empty() || a.precisions.empty()) throw std::invalid_argument("no batches or precisions to run");
  return a;
}

// The untrained weights, with the head scaled as tests/python/reference_module
// does (seeded_model) so probabilities spread over (0, 1): a P(FAKE)
// difference is then measured where softmax is sensitive, not at 0.5.
StateDict seeded_weights(uint64_t seed) {
  StateDict sd = untrained_state_dict(seed);
  auto scale = [&](const char* key, float s) {
    auto& t = sd.at(key);
    auto* f = reinterpret_cast<float*>(t.bytes.data());
    for (int64_t i = 0; i < t.numel(); ++i) f[i] *= s;
  };
  scale("lstm.weight_ih_l0", 8.f);
  scale("linear1.weight", 40.f);
  return sd;
}

// Seeded pixels normalised as the reference does ((v / 255 - mean) / std),
// the same values whatever the device. Each crop has its own brightness,
// colour and contrast, so that the crops' features, and P(FAKE), differ.
void fill_crops(float* out, size_t crops, uint64_t seed) {
  const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> unit(0.f, 1.f);
  const size_t plane = size_t(kInputSize) * kInputSize;
  for (size_t n = 0; n < crops; ++n) {
    const float amp = 20.f + 100.f * unit(rng);
    for (size_t c = 0; c < 3; ++c) {
      const float base = 40.f + 175.f * unit(rng);
      for (size_t i = 0; i < plane; ++i) {
        const float v = std::clamp(base + amp * (unit(rng) - 0.5f), 0.f, 255.f);
        out[(n * 3 + c) * plane + i] = (std::floor(v) / 255.f - mean[c]) / stdv[c];
      }
    }
  }
}

struct Timing {
  double ms_per_batch, ms_min;
  int iters;
};

Timing time_batches(const ResNeXtNet& net, const ResNeXtNet::Batch& b, const Args& a) {
  for (int i = 0; i < 3; ++i) net.classify_crops(b);  // warm-up: cuDNN picks its algorithms per shape
  std::vector<double> ms;
  const auto start = Clock::now();
  while (int(ms.size()) < a.min_iters || std::chrono::duration<double>(Clock::now() - start).count() < a.seconds) {
    const auto t0 = Clock::now();
    net.classify_crops(b);  // ends with the logits on the host: synchronised
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  double sum = 0;
  for (double v : ms) sum += v;
  return {sum / double(ms.size()), *std::min_element(ms.begin(), ms.end()), int(ms.size())};
}

// The largest |P(FAKE) device - P(FAKE) prepacked CPU| over the same crops.
double max_prob_diff(const std::vector<Prediction>& a, const std::vector<Prediction>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::fabs(a[i].prob_fake - b[i].prob_fake)));
  return m;
}

ModelOptions options_for(const Args& a, const std::string& precision, int batch) {
  ModelOptions o;
  o.device = a.device;
  o.precision = precision;
  o.batch_size = batch;
  o.generic_path = a.device == "cpu";
  return o;
}

// Times one precision at every batch size; one table row (and JSON line) each.
void run_precision(const StateDict& sd, const Args& a, const std::string& prec, bool fused,
                   const ResNeXtNet::Batch& cmp, const std::vector<Prediction>& want, std::FILE* json) {
  const int max_batch = *std::max_element(a.batches.begin(), a.batches.end());
  std::unique_ptr<ResNeXtNet> net;
  try {
    net = std::make_unique<ResNeXtNet>(sd, options_for(a, prec, max_batch));
  } catch (const std::runtime_error& e) {  // e.g. bf16 on a CPU without AVX512_BF16
    std::printf("%-6s %-8s %-6s skipped: %s\n", "cpp", a.device.c_str(), prec.c_str(), e.what());
    return;
  }
  if (net->fused() != fused) throw std::runtime_error("DFD_CUDNN_FUSED was not taken up");
  const std::string label = prec + (fused ? " fused" : "");
  ResNeXtNet::Batch dcmp = net->batch(cmp.crops());
  std::copy(cmp.data(), cmp.data() + cmp.crops() * 3 * kInputSize * kInputSize, dcmp.data());
  const double diff = max_prob_diff(net->classify_crops(dcmp), want);
  for (int bs : a.batches) {
    ResNeXtNet::Batch b = net->batch(size_t(bs));
    fill_crops(b.data(), b.crops(), a.seed + 2);
    const Timing t = time_batches(*net, b, a);
    const double cps = 1000.0 * bs / t.ms_per_batch;
    std::printf("%-6s %-8s %-6s %6d %10.3f %10.3f %10.1f %6d %14.2e%s\n", "cpp", net->device().c_str(), prec.c_str(), bs,
                t.ms_per_batch, t.ms_min, cps, t.iters, diff, fused ? "  fused" : "");
    std::fflush(stdout);
    if (json) {
      std::fprintf(json,
                   "{\"impl\": \"libtorch\", \"config\": \"cpp %s\", \"device\": \"%s\", \"precision\": \"%s\", "
                   "\"batch\": %d, \"ms_per_batch\": %.4f, \"ms_min\": %.4f, \"crops_per_s\": %.2f, "
                   "\"iters\": %d, \"max_abs_dprob_vs_cpu\": %.3e}\n",
                   label.c_str(), net->device().c_str(), prec.c_str(), bs, t.ms_per_batch, t.ms_min, cps, t.iters, diff);
      std::fflush(json);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  try {
    a = parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deepfake-bench-gpu: %s\n", e.what());
    usage();
    return 2;
  }
  std::FILE* json = a.json.empty() ? nullptr : std::fopen(a.json.c_str(), "w");
  if (!a.json.empty() && !json) {
    std::fprintf(stderr, "deepfake-bench-gpu: cannot write %s\n", a.json.c_str());
    return 2;
  }
  try {
    const StateDict sd = seeded_weights(a.seed);
    const int max_batch = *std::max_element(a.batches.begin(), a.batches.end());
    ResNeXtNet::check(options_for(a, "fp32", max_batch));  // no such device: say so once, exit 1

    // The reference for the comparison: the prepacked (oneDNN) CPU path, fp32.
    ResNeXtNet cpu(sd, ModelOptions{});
    ResNeXtNet::Batch cmp = cpu.batch(size_t(a.compare));
    fill_crops(cmp.data(), cmp.crops(), a.seed + 1);
    const auto want = cpu.classify_crops(cmp);
    auto by_p = [](const Prediction& x, const Prediction& y) { return x.prob_fake < y.prob_fake; };
    std::printf("# prepacked CPU reference: %d crops, P(FAKE) %.3f..%.3f\n", a.compare,
                double(std::min_element(want.begin(), want.end(), by_p)->prob_fake),
                double(std::max_element(want.begin(), want.end(), by_p)->prob_fake));
    std::printf("%-6s %-8s %-6s %6s %10s %10s %10s %6s %14s\n", "impl", "device", "prec", "batch", "ms/batch", "min ms",
                "crops/s", "iters", "max|dP(FAKE)|");
    for (const auto& prec : a.precisions) run_precision(sd, a, prec, false, cmp, want, json);
    // The experiment: cuDNN's fused convolutions (DFD_CUDNN_FUSED), CUDA
    // only, reduced precisions; a failure there is reported, not fatal.
    if (a.device != "cpu") {
      setenv("DFD_CUDNN_FUSED", "1", 1);
      for (const auto& prec : a.precisions) {
        if (prec == "fp32") continue;
        try {
          run_precision(sd, a, prec, true, cmp, want, json);
        } catch (const std::exception& e) {
          std::printf("%-6s %-8s %-6s fused: failed: %s\n", "cpp", a.device.c_str(), prec.c_str(), e.what());
        }
      }
      unsetenv("DFD_CUDNN_FUSED");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deepfake-bench-gpu: %s\n", e.what());
    if (json) std::fclose(json);
    return 1;
  }
  if (json) std::fclose(json);
  return 0;
}

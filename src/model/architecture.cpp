#include "model/architecture.h"

#include <cmath>
#include <cstring>
#include <random>
#include <sstream>
#include <stdexcept>

namespace dfd {

const std::vector<BottleneckSpec>& resnext50_blocks() {
  static const std::vector<BottleneckSpec> blocks = [] {
    std::vector<BottleneckSpec> b;
    const int counts[4] = {3, 4, 6, 3};
    const int planes[4] = {64, 128, 256, 512};
    int in = 64;
    for (int layer = 0; layer < 4; ++layer) {
      // torchvision: width = planes * (width_per_group / 64) * groups = planes * 2
      const int width = planes[layer] * 2, out = planes[layer] * 4;
      for (int i = 0; i < counts[layer]; ++i) {
        const int stride = (i == 0 && layer > 0) ? 2 : 1;
        b.push_back({"model." + std::to_string(layer + 4) + "." + std::to_string(i) + ".", in, width, out, stride, i == 0});
        in = out;
      }
    }
    return b;
  }();
  return blocks;
}

namespace {
void add_bn(std::map<std::string, std::vector<int64_t>>& m, const std::string& p, int64_t c) {
  for (const char* s : {"weight", "bias", "running_mean", "running_var"}) m[p + s] = {c};
  m[p + "num_batches_tracked"] = {};
}
}  // namespace

const std::map<std::string, std::vector<int64_t>>& reference_shapes() {
  static const std::map<std::string, std::vector<int64_t>> shapes = [] {
    std::map<std::string, std::vector<int64_t>> m;
    m["model.0.weight"] = {64, 3, 7, 7};
    add_bn(m, "model.1.", 64);
    for (auto& b : resnext50_blocks()) {
      m[b.prefix + "conv1.weight"] = {b.width, b.in, 1, 1};
      add_bn(m, b.prefix + "bn1.", b.width);
      m[b.prefix + "conv2.weight"] = {b.width, b.width / kGroups, 3, 3};
      add_bn(m, b.prefix + "bn2.", b.width);
      m[b.prefix + "conv3.weight"] = {b.out, b.width, 1, 1};
      add_bn(m, b.prefix + "bn3.", b.out);
      if (b.downsample) {
        m[b.prefix + "downsample.0.weight"] = {b.out, b.in, 1, 1};
        add_bn(m, b.prefix + "downsample.1.", b.out);
      }
    }
    m["lstm.weight_ih_l0"] = {8192, 2048};
    m["lstm.weight_hh_l0"] = {8192, 2048};
    m["linear1.weight"] = {2, 2048};
    m["linear1.bias"] = {2};
    return m;
  }();
  return shapes;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

void validate_state_dict(const StateDict& sd) {
  const auto& ref = reference_shapes();
  std::vector<std::string> problems;
  int missing = 0, extra = 0, bad = 0;
  for (auto& [k, shape] : ref) {
    auto it = sd.find(k);
    if (it == sd.end()) {
      if (missing++ < 3) problems.push_back("missing key '" + k + "'");
      continue;
    }
    if (it->second.shape != shape) {
      if (bad++ < 3) problems.push_back("shape mismatch for '" + k + "': expected " + shape_str(shape) + ", got " + shape_str(it->second.shape));
      continue;
    }
    const bool counter = k.size() > 19 && k.compare(k.size() - 19, 19, "num_batches_tracked") == 0;
    const DType want = counter ? DType::I64 : DType::F32;
    const bool ok = it->second.dtype == want || (!counter && (it->second.dtype == DType::F64 || it->second.dtype == DType::F16 || it->second.dtype == DType::BF16));
    if (!ok && bad++ < 3) problems.push_back(std::string("dtype ") + dtype_name(it->second.dtype) + " for '" + k + "'");
  }
  for (auto& [k, t] : sd)
    if (!ref.count(k) && extra++ < 3) problems.push_back("unexpected key '" + k + "'");
  if (problems.empty()) return;
  std::ostringstream o;
  o << "not the reference ResNeXt50+LSTM state_dict (" << missing << " missing, " << extra << " unexpected, " << bad
    << " mismatched): ";
  for (size_t i = 0; i < problems.size(); ++i) o << (i ? "; " : "") << problems[i];
  throw std::runtime_error(o.str());
}

StateDict untrained_state_dict(uint64_t seed) {
  std::mt19937_64 rng(seed);
  StateDict sd;
  for (auto& [k, shape] : reference_shapes()) {
    TensorData t;
    t.shape = shape;
    const bool counter = k.find("num_batches_tracked") != std::string::npos;
    t.dtype = counter ? DType::I64 : DType::F32;
    t.bytes.assign(size_t(t.numel()) * dtype_size(t.dtype), 0);
    if (counter) {
      sd[k] = std::move(t);
      continue;
    }
    auto* f = reinterpret_cast<float*>(t.bytes.data());
    const int64_t n = t.numel();
    auto ends_with = [&k = k](const char* s) { return k.size() >= strlen(s) && k.compare(k.size() - strlen(s), strlen(s), s) == 0; };
    if (shape.size() == 4) {  // conv: Kaiming normal, fan_out, ReLU gain
      const double fan_out = double(shape[0]) * shape[2] * shape[3];
      std::normal_distribution<float> d(0.f, float(std::sqrt(2.0 / fan_out)));
      for (int64_t i = 0; i < n; ++i) f[i] = d(rng);
    } else if (ends_with("running_var") || (ends_with(".weight") && shape.size() == 1)) {
      for (int64_t i = 0; i < n; ++i) f[i] = 1.f;  // BN scale 1, variance 1
    } else if (k.rfind("lstm.", 0) == 0 || k.rfind("linear1.", 0) == 0) {
      const float bound = float(1.0 / std::sqrt(2048.0));
      std::uniform_real_distribution<float> d(-bound, bound);
      for (int64_t i = 0; i < n; ++i) f[i] = d(rng);
    }  // BN bias and running_mean stay 0
    sd[k] = std::move(t);
  }
  return sd;
}

}  // namespace dfd

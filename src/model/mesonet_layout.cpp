#include "model/mesonet_layout.h"

#include "model/architecture.h"

#include <algorithm>
#include <cstring>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace dfd {

const char* architecture_name(MesoVariant v) { return v == MesoVariant::Meso4 ? "meso4" : "mesoinception4"; }

std::optional<MesoVariant> mesonet_variant(const std::string& architecture) {
  if (architecture == "meso4") return MesoVariant::Meso4;
  if (architecture == "mesoinception4") return MesoVariant::MesoInception4;
  return std::nullopt;
}

const std::vector<MesoConv>& mesonet_convs(MesoVariant v) {
  static const std::vector<MesoConv> meso4 = {
      {"conv1", 8, 3, 3, 1}, {"conv2", 8, 8, 5, 1}, {"conv3", 16, 8, 5, 1}, {"conv4", 16, 16, 5, 1}};
  static const std::vector<MesoConv> inception = [] {
    std::vector<MesoConv> c;
    auto inception_layer = [&](const std::string& p, int in, int a, int b, int cc, int d) {
      c.push_back({p + ".b1", a, in, 1, 1});
      c.push_back({p + ".b2.0", b, in, 1, 1});
      c.push_back({p + ".b2.1", b, b, 3, 1});
      c.push_back({p + ".b3.0", cc, in, 1, 1});
      c.push_back({p + ".b3.1", cc, cc, 3, 2});
      c.push_back({p + ".b4.0", d, in, 1, 1});
      c.push_back({p + ".b4.1", d, d, 3, 3});
    };
    inception_layer("inc1", 3, 1, 4, 4, 2);   // -> 11 channels
    inception_layer("inc2", 11, 2, 4, 4, 2);  // -> 12 channels
    c.push_back({"conv3", 16, 12, 5, 1});
    c.push_back({"conv4", 16, 16, 5, 1});
    return c;
  }();
  return v == MesoVariant::Meso4 ? meso4 : inception;
}

namespace {

int bn_channels(MesoVariant v, size_t i) {
  static const int meso4[4] = {8, 8, 16, 16}, inception[4] = {11, 12, 16, 16};
  return v == MesoVariant::Meso4 ? meso4[i] : inception[i];
}

std::map<std::string, std::vector<int64_t>> make_shapes(MesoVariant v) {
  std::map<std::string, std::vector<int64_t>> m;
  for (const auto& c : mesonet_convs(v)) {
    m[c.name + ".weight"] = {c.out, c.in, c.kernel, c.kernel};
    m[c.name + ".bias"] = {c.out};
  }
  for (size_t i = 0; i < 4; ++i) {
    const std::string p = "bn" + std::to_string(i + 1) + ".";
    for (const char* s : {"weight", "bias", "running_mean", "running_var"}) m[p + s] = {bn_channels(v, i)};
  }
  m["fc1.weight"] = {16, 1024};
  m["fc1.bias"] = {16};
  m["fc2.weight"] = {1, 16};
  m["fc2.bias"] = {1};
  return m;
}

}  // namespace

const std::map<std::string, std::vector<int64_t>>& mesonet_shapes(MesoVariant v) {
  static const auto meso4 = make_shapes(MesoVariant::Meso4);
  static const auto inception = make_shapes(MesoVariant::MesoInception4);
  return v == MesoVariant::Meso4 ? meso4 : inception;
}

void validate_mesonet_state_dict(const StateDict& sd, MesoVariant v) {
  const auto& ref = mesonet_shapes(v);
  std::vector<std::string> problems;
  int missing = 0, extra = 0, bad = 0;
  for (const auto& [k, shape] : ref) {
    auto it = sd.find(k);
    if (it == sd.end()) {
      if (missing++ < 3) problems.push_back("missing key '" + k + "'");
    } else if (it->second.shape != shape) {
      if (bad++ < 3)
        problems.push_back("shape mismatch for '" + k + "': expected " + shape_str(shape) + ", got " + shape_str(it->second.shape));
    } else if (it->second.dtype != DType::F32 && it->second.dtype != DType::F64 && it->second.dtype != DType::F16 &&
               it->second.dtype != DType::BF16) {
      if (bad++ < 3) problems.push_back(std::string("dtype ") + dtype_name(it->second.dtype) + " for '" + k + "'");
    }
  }
  for (const auto& [k, t] : sd)
    if (!ref.count(k) && extra++ < 3) problems.push_back("unexpected key '" + k + "'");
  if (problems.empty()) return;
  std::ostringstream o;
  o << "not a " << architecture_name(v) << " state_dict (" << missing << " missing, " << extra << " unexpected, " << bad
    << " mismatched): ";
  for (size_t i = 0; i < problems.size(); ++i) o << (i ? "; " : "") << problems[i];
  throw std::runtime_error(o.str());
}

bool has_keras_names(const StateDict& sd) {
  static const std::regex keras(R"(^(conv2d|batch_normalization|dense)_\d+/[A-Za-z_]+$)");
  for (const auto& [k, t] : sd)
    if (std::regex_match(k, keras)) return true;
  return false;
}

namespace {

struct KerasLayer {
  std::string name;  // "conv2d_5"
  long number;       // 5
  std::map<std::string, const TensorData*> weights;  // "kernel" -> tensor
};

const float* floats(const TensorData& t) { return reinterpret_cast<const float*>(t.bytes.data()); }

TensorData f32(std::vector<int64_t> shape) {
  TensorData t;
  t.dtype = DType::F32;
  t.shape = std::move(shape);
  t.bytes.assign(size_t(t.numel()) * sizeof(float), 0);
  return t;
}

// The weights of one layer, exactly `names`, each of `shapes[i]` (Keras layout).
void expect_weights(const KerasLayer& l, const std::vector<std::string>& names,
                    const std::vector<std::vector<int64_t>>& shapes, const std::string& role) {
  for (size_t i = 0; i < names.size(); ++i) {
    auto it = l.weights.find(names[i]);
    if (it == l.weights.end())
      throw std::runtime_error("Keras MesoNet file: layer '" + l.name + "' (" + role + ") lacks weight '" + names[i] + "'");
    if (it->second->dtype != DType::F32)
      throw std::runtime_error("Keras MesoNet file: '" + l.name + "/" + names[i] + "' is not float32");
    if (it->second->shape != shapes[i])
      throw std::runtime_error("Keras MesoNet file: shape mismatch for '" + l.name + "/" + names[i] + "' (" + role +
                               "): expected " + shape_str(shapes[i]) + ", got " + shape_str(it->second->shape));
  }
  for (const auto& [w, t] : l.weights)
    if (std::find(names.begin(), names.end(), w) == names.end())
      throw std::runtime_error("Keras MesoNet file: unexpected weight '" + l.name + "/" + w + "'");
}

}  // namespace

MesoImport mesonet_from_keras(const StateDict& keras) {
  static const std::regex layer_re(R"(^(conv2d|batch_normalization|dense)_(\d{1,9})$)");
  std::map<std::string, std::vector<KerasLayer>> by_kind;  // kind -> layers
  std::map<std::string, KerasLayer> layers;
  for (const auto& [key, t] : keras) {
    const size_t slash = key.find('/');
    if (slash == std::string::npos) throw std::runtime_error("Keras MesoNet file: tensor '" + key + "' is not <layer>/<weight>");
    const std::string layer = key.substr(0, slash);
    std::smatch m;
    if (!std::regex_match(layer, m, layer_re))
      throw std::runtime_error("Keras MesoNet file: unexpected layer '" + layer +
                               "' (MesoNet has only conv2d_N, batch_normalization_N and dense_N layers with weights)");
    auto& l = layers[layer];
    l.name = layer;
    l.number = std::stol(m[2]);
    l.weights[key.substr(slash + 1)] = &t;
  }
  for (auto& [name, l] : layers) by_kind[name.substr(0, name.rfind('_'))].push_back(l);
  for (auto& [kind, v] : by_kind)
    std::sort(v.begin(), v.end(), [](const KerasLayer& a, const KerasLayer& b) { return a.number < b.number; });
  const size_t n_conv = by_kind["conv2d"].size(), n_bn = by_kind["batch_normalization"].size(),
               n_dense = by_kind["dense"].size();
  MesoImport out;
  if (n_conv == 4 && n_bn == 4 && n_dense == 2) {
    out.variant = MesoVariant::Meso4;
  } else if (n_conv == 16 && n_bn == 4 && n_dense == 2) {
    out.variant = MesoVariant::MesoInception4;
  } else {
    throw std::runtime_error("Keras MesoNet file: " + std::to_string(n_conv) + " conv2d, " + std::to_string(n_bn) +
                             " batch_normalization and " + std::to_string(n_dense) +
                             " dense layers with weights: neither Meso4 (4, 4, 2) nor MesoInception4 (16, 4, 2)");
  }
  const MesoVariant v = out.variant;
  StateDict& sd = out.tensors;
  const auto& convs = mesonet_convs(v);
  for (size_t i = 0; i < convs.size(); ++i) {
    const MesoConv& c = convs[i];
    const KerasLayer& l = by_kind["conv2d"][i];
    expect_weights(l, {"kernel", "bias"}, {{c.kernel, c.kernel, c.in, c.out}, {c.out}}, c.name);
    // Keras HWIO -> PyTorch OIHW
    TensorData w = f32({c.out, c.in, c.kernel, c.kernel});
    const float* src = floats(*l.weights.at("kernel"));
    float* dst = reinterpret_cast<float*>(w.bytes.data());
    for (int y = 0; y < c.kernel; ++y)
      for (int x = 0; x < c.kernel; ++x)
        for (int ci = 0; ci < c.in; ++ci)
          for (int co = 0; co < c.out; ++co)
            dst[((size_t(co) * c.in + ci) * c.kernel + y) * c.kernel + x] =
                src[((size_t(y) * c.kernel + x) * c.in + ci) * c.out + co];
    sd[c.name + ".weight"] = std::move(w);
    sd[c.name + ".bias"] = *l.weights.at("bias");
  }
  for (size_t i = 0; i < 4; ++i) {
    const KerasLayer& l = by_kind["batch_normalization"][i];
    const int64_t ch = bn_channels(v, i);
    const std::string p = "bn" + std::to_string(i + 1);
    expect_weights(l, {"gamma", "beta", "moving_mean", "moving_variance"}, {{ch}, {ch}, {ch}, {ch}}, p);
    sd[p + ".weight"] = *l.weights.at("gamma");
    sd[p + ".bias"] = *l.weights.at("beta");
    sd[p + ".running_mean"] = *l.weights.at("moving_mean");
    sd[p + ".running_var"] = *l.weights.at("moving_variance");
  }
  const KerasLayer& d1 = by_kind["dense"][0];
  const KerasLayer& d2 = by_kind["dense"][1];
  expect_weights(d1, {"kernel", "bias"}, {{1024, 16}, {16}}, "fc1");
  expect_weights(d2, {"kernel", "bias"}, {{16, 1}, {1}}, "fc2");
  {
    // Keras kernel [1024, 16], rows in (H, W, C) order of the 8x8x16 map ->
    // ours [16, 1024], columns in (C, H, W) order.
    TensorData w = f32({16, 1024});
    const float* src = floats(*d1.weights.at("kernel"));
    float* dst = reinterpret_cast<float*>(w.bytes.data());
    constexpr int H = 8, W = 8, C = 16;
    for (int o = 0; o < 16; ++o)
      for (int c = 0; c < C; ++c)
        for (int y = 0; y < H; ++y)
          for (int x = 0; x < W; ++x)
            dst[size_t(o) * 1024 + (size_t(c) * H + y) * W + x] = src[((size_t(y) * W + x) * C + c) * 16 + o];
    sd["fc1.weight"] = std::move(w);
    sd["fc1.bias"] = *d1.weights.at("bias");
  }
  {
    TensorData w = f32({1, 16});
    std::memcpy(w.bytes.data(), d2.weights.at("kernel")->bytes.data(), 16 * sizeof(float));  // [16, 1] -> [1, 16]
    sd["fc2.weight"] = std::move(w);
    sd["fc2.bias"] = *d2.weights.at("bias");
  }
  validate_mesonet_state_dict(sd, v);
  return out;
}

namespace {

struct PublishedFile {
  const char* checksum;
  const char* file;
  MesoVariant variant;
  const char* name;
  const char* training_data;
};

// weights_checksum() of our tensors for the authors' four files (weights/ in
// https://github.com/DariusAf/MesoNet), computed from the copies in models/mesonet/.
const PublishedFile kPublished[] = {
    {"af1c4ccfaa670734", "Meso4_DF.h5", MesoVariant::Meso4, "meso4-df",
     "the MesoNet authors' Deepfake face set (faces from deepfake and real videos collected by the authors, "
     "Afchar et al. 2018)"},
    {"2ab09cd9be55ae87", "Meso4_F2F.h5", MesoVariant::Meso4, "meso4-f2f",
     "the MesoNet authors' Face2Face face set (from FaceForensics, Afchar et al. 2018)"},
    {"5586db9fe7791c05", "MesoInception_DF.h5", MesoVariant::MesoInception4, "mesoinception4-df",
     "the MesoNet authors' Deepfake face set (faces from deepfake and real videos collected by the authors, "
     "Afchar et al. 2018)"},
    {"2d0c83465263b9a2", "MesoInception_F2F.h5", MesoVariant::MesoInception4, "mesoinception4-f2f",
     "the MesoNet authors' Face2Face face set (from FaceForensics, Afchar et al. 2018)"},
};

}  // namespace

ModelCard mesonet_card(MesoVariant v, const std::string& checksum, const std::string& file_name) {
  ModelCard c;
  c.architecture = architecture_name(v);
  c.head = HeadMode::Reference;  // per crop; a window is the mean of its crops' P(FAKE)
  c.input_size = kMesoInputSize;
  c.channel_order = "RGB";
  c.mean = {0.f, 0.f, 0.f};  // RGB / 255
  c.std = {1.f, 1.f, 1.f};
  c.class_names = {"FAKE", "REAL"};  // the net's sigmoid is P(REAL): class 1 = real
  c.threshold = 0.5f;
  c.trained = true;
  for (const auto& p : kPublished) {
    if (checksum != p.checksum || p.variant != v) continue;
    c.name = p.name;
    c.training_data = p.training_data;
    c.provenance = std::string(p.file) +
                   " from the MesoNet authors' repository https://github.com/DariusAf/MesoNet (weights/), "
                   "Keras 2.1.5; paper: D. Afchar, V. Nozick, J. Yamagishi, I. Echizen, \"MesoNet: a Compact "
                   "Facial Video Forgery Detection Network\", IEEE WIFS 2018";
    c.licence = "Apache-2.0";
    return c;
  }
  c.name = file_name;
  c.training_data = "not recorded in the file";
  c.provenance = "Keras HDF5 file " + file_name + " in the " + architecture_name(v) + " layout; origin not recorded";
  return c;
}

}  // namespace dfd

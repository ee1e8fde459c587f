// deepfake-train --init-backbone: torchvision's resnext50_32x4d state dict
// (written at build time by python3-torchvision, random init) mapped onto our
// backbone gives torchvision's own features (forward minus fc) to 1e-4, and
// bad files are refused with one clear message.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "model/architecture.h"
#include "model/model.h"
#include "train/torchvision_backbone.h"

namespace fs = std::filesystem;
using namespace dfd;
using namespace dfd::train;

namespace {

std::string fixture(const std::string& name) {
  const char* d = std::getenv("DFD_TORCHVISION_FIXTURES");
  return std::string(d ? d : ".") + "/" + name;
}

std::vector<char> read_all(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

std::string error_of(const std::string& file) {
  StateDict sd;  // the errors come before anything is written into it
  try {
    load_torchvision_backbone(sd, file);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TorchvisionBackbone, FeaturesEqualTorchvisionForward) {
  StateDict sd = untrained_state_dict(1);
  const StateDict before = sd;
  load_torchvision_backbone(sd, fixture("tv_resnext50.pt"));
  EXPECT_NO_THROW(validate_state_dict(sd));
  // The head is the untrained one, untouched; the backbone is replaced.
  EXPECT_EQ(sd.at("lstm.weight_ih_l0").bytes, before.at("lstm.weight_ih_l0").bytes);
  EXPECT_EQ(sd.at("linear1.bias").bytes, before.at("linear1.bias").bytes);
  EXPECT_NE(sd.at("model.0.weight").bytes, before.at("model.0.weight").bytes);
  EXPECT_NE(sd.at("model.7.2.bn3.running_var").bytes, before.at("model.7.2.bn3.running_var").bytes);

  ModelCard card = Model::untrained_card(1);
  card.channel_order = "RGB";  // ImageNet's order, as deepfake-train sets it
  auto model = Model::from_state_dict(sd, card);
  const auto px = read_all(fixture("tv_crop.u8"));
  ASSERT_EQ(px.size(), size_t(112 * 112 * 3));
  cv::Mat crop(112, 112, CV_8UC3, const_cast<char*>(px.data()));
  const auto f = model->features({crop.clone()});
  const auto raw = read_all(fixture("tv_features.f32"));
  ASSERT_EQ(raw.size(), 2048 * sizeof(float));
  const float* want = reinterpret_cast<const float*>(raw.data());
  ASSERT_EQ(f.size(), 1u);
  ASSERT_EQ(f[0].size(), 2048u);
  double worst = 0, scale = 0;
  for (size_t i = 0; i < 2048; ++i) {
    worst = std::max(worst, double(std::abs(f[0][i] - want[i])));
    scale = std::max(scale, double(std::abs(want[i])));
  }
  std::cout << "max |ours - torchvision| " << worst << " (largest feature " << scale << ")\n";
  EXPECT_LE(worst, 1e-4);
  EXPECT_GT(scale, 1e-2);  // features that say something
}

TEST(TorchvisionBackbone, MapsNamesByPosition) {
  StateDict tv;
  for (const auto& [k, shape] : reference_shapes()) {
    if (k.rfind("model.", 0) != 0) continue;
    const size_t dot = k.find('.', 6);
    const int idx = std::stoi(k.substr(6, dot - 6));
    const std::string rest = k.substr(dot + 1);
    const std::string name = idx == 0 ? "conv1." + rest : idx == 1 ? "bn1." + rest : "layer" + std::to_string(idx - 3) + "." + rest;
    TensorData t;
    t.shape = shape;
    t.dtype = shape.empty() ? DType::I64 : DType::F32;
    t.bytes.assign(size_t(t.numel()) * dtype_size(t.dtype), 0);
    tv[name] = t;
  }
  TensorData fc;
  fc.shape = {1000, 2048};
  fc.bytes.assign(size_t(fc.numel()) * 4, 0);
  tv["fc.weight"] = fc;
  const auto out = backbone_from_torchvision(tv);
  EXPECT_TRUE(out.count("model.0.weight"));
  EXPECT_TRUE(out.count("model.1.running_var"));
  EXPECT_TRUE(out.count("model.4.0.downsample.0.weight"));
  EXPECT_TRUE(out.count("model.7.2.bn3.weight"));
  EXPECT_FALSE(out.count("fc.weight"));
  for (const auto& [k, t] : out) EXPECT_EQ(k.rfind("model.", 0), 0u) << k;
  // Older files without batch-norm counters still load (counters start at 0).
  StateDict old = tv;
  for (auto it = old.begin(); it != old.end();)
    it = it->first.find("num_batches_tracked") != std::string::npos ? old.erase(it) : std::next(it);
  EXPECT_EQ(backbone_from_torchvision(old).size(), out.size());
}

TEST(TorchvisionBackbone, MissingKeyIsNamed) {
  const std::string e = error_of(fixture("tv_missing_key.pt"));
  EXPECT_NE(e.find("missing key 'layer"), std::string::npos) << e;
  EXPECT_NE(e.find("tv_missing_key.pt"), std::string::npos) << e;
}

TEST(TorchvisionBackbone, WrongShapeIsNamed) {
  const std::string e = error_of(fixture("tv_wrong_shape.pt"));
  EXPECT_NE(e.find("shape mismatch for 'conv1.weight'"), std::string::npos) << e;
  EXPECT_NE(e.find("[64, 3, 3, 3]"), std::string::npos) << e;
}

TEST(TorchvisionBackbone, OtherFilesAreRefused) {
  std::string e = error_of(fixture("tv_not_torchvision.pt"));
  EXPECT_NE(e.find("not a torchvision resnext50_32x4d state dict"), std::string::npos) << e;
  // Our own ResNeXt layout (model.0.*) is not torchvision's.
  StateDict ours;
  ours["model.0.weight"] = TensorData{DType::F32, {64, 3, 7, 7}, std::vector<uint8_t>(64 * 3 * 7 * 7 * 4)};
  EXPECT_THROW(backbone_from_torchvision(ours), std::runtime_error);
  // Not a checkpoint at all.
  const fs::path junk = fs::temp_directory_path() / ("dfd-tv-junk-" + std::to_string(::getpid()) + ".pt");
  std::ofstream(junk) << "this is not a model file";
  e = error_of(junk.string());
  fs::remove(junk);
  EXPECT_NE(e.find("--init-backbone"), std::string::npos) << e;
  e = error_of("/nonexistent/resnext.pt");
  EXPECT_NE(e.find("--init-backbone"), std::string::npos) << e;
}

}  // namespace

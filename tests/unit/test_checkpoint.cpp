// Loading checkpoints: the real torch.save() output, our safetensors format,
// and every broken file we can think of (clear error, never a crash).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "model/architecture.h"
#include "model/model.h"
#include "reference_fixtures.h"
#include "checkpoint/checksum.h"
#include "checkpoint/state_dict.h"

using namespace dfd;

namespace {
std::string error_of(const std::string& path) {
  try {
    Model::load(path);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}
std::string tmp_path(const std::string& name) { return ::testing::TempDir() + name; }
}  // namespace

TEST(Architecture, HasThePublishedKeyCountAndParameterCount) {
  const auto& shapes = reference_shapes();
  EXPECT_EQ(shapes.size(), 322u);
  int64_t params = 0;
  for (auto& [k, s] : shapes) {
    if (k.find("num_batches_tracked") != std::string::npos) continue;
    if (k.find("running_") != std::string::npos) continue;
    int64_t n = 1;
    for (auto d : s) n *= d;
    params += n;
  }
  EXPECT_EQ(params, 56538434);
}

TEST(Checkpoint, ReadsTorchSaveStateDictNatively) {
  auto ck = read_checkpoint(test::ref_path("reference.pt"));
  EXPECT_EQ(ck.format, "pytorch-zip");
  EXPECT_FALSE(ck.card.has_value());
  ASSERT_EQ(ck.tensors.size(), 322u);
  const auto& t = ck.tensors.at("lstm.weight_ih_l0");
  EXPECT_EQ(t.shape, (std::vector<int64_t>{8192, 2048}));
  EXPECT_EQ(t.dtype, DType::F32);
  const auto& c = ck.tensors.at("model.1.num_batches_tracked");
  EXPECT_EQ(c.dtype, DType::I64);
  EXPECT_EQ(*reinterpret_cast<const int64_t*>(c.bytes.data()), 1000);  // set by the fixture
}

TEST(Checkpoint, PtWithoutCardGetsAnHonestCard) {
  auto m = Model::load(test::ref_path("reference.pt"));
  EXPECT_EQ(m->card().head, HeadMode::Reference);
  EXPECT_EQ(m->card().name, "reference.pt");
  EXPECT_NE(m->card().training_data.find("not recorded"), std::string::npos);
  EXPECT_EQ(m->source(), test::ref_path("reference.pt"));
}

TEST(Checkpoint, SafetensorsRoundTripKeepsWeightsCardAndOutputs) {
  auto ck = read_checkpoint(test::ref_path("reference.pt"));
  ModelCard card;
  card.name = "roundtrip";
  card.window_size = 40;
  card.trained = false;
  card.training_data = "none";
  const std::string out = tmp_path("roundtrip.safetensors");
  write_safetensors(out, ck.tensors, card);
  auto back = read_checkpoint(out);
  EXPECT_EQ(back.format, "safetensors");
  ASSERT_TRUE(back.card.has_value());
  EXPECT_EQ(back.card->name, "roundtrip");
  EXPECT_EQ(back.card->window_size, 40);
  EXPECT_FALSE(back.card->trained);
  EXPECT_EQ(weights_checksum(back.tensors), weights_checksum(ck.tensors));
  // Computed while reading (ChecksumFollower), the same value as afterwards.
  EXPECT_TRUE(back.checksum.started());
  EXPECT_EQ(back.checksum.get(), weights_checksum(ck.tensors));
  EXPECT_FALSE(ck.checksum.started());  // a .pt: computed by whoever needs it

  auto a = Model::load(test::ref_path("reference.pt"));
  auto b = Model::load(out);
  auto crops = test::crops();
  auto fa = a->features({crops[1]}), fb = b->features({crops[1]});
  EXPECT_EQ(fa[0], fb[0]);
  EXPECT_EQ(a->checksum(), b->checksum());
  std::remove(out.c_str());
}

// The follower hashes in name order whatever order the tensors arrive in,
// and gives up cleanly when the read fails half-way.
TEST(Checkpoint, ChecksumFollowerMatchesTheChecksumInAnyOrder) {
  const StateDict sd = read_checkpoint(test::ref_path("reference.pt")).tensors;
  StateDict copy;
  for (const auto& [name, t] : sd) copy[name] = TensorData{t.dtype, t.shape, {}};
  {
    ChecksumFollower follower(copy);
    for (auto it = sd.rbegin(); it != sd.rend(); ++it) {  // last tensor first
      copy[it->first].bytes = it->second.bytes;
      follower.ready(it->first);
    }
    follower.ready("not.a.tensor");  // ignored
    EXPECT_EQ(follower.finish(), weights_checksum(sd));
  }
  ChecksumFollower abandoned(copy);
  abandoned.ready(sd.begin()->first);
}  // destroyed without finish(): must return, not wait for the rest

TEST(Checkpoint, MissingKeyIsNamed) {
  auto e = error_of(test::ref_path("bad_missing_key.pt"));
  EXPECT_NE(e.find("missing key 'lstm.weight_hh_l0'"), std::string::npos) << e;
}

TEST(Checkpoint, WrongShapeIsNamed) {
  auto e = error_of(test::ref_path("bad_wrong_shape.pt"));
  EXPECT_NE(e.find("shape mismatch for 'linear1.weight': expected [2, 2048], got [3, 2048]"), std::string::npos) << e;
}

TEST(Checkpoint, ExtraKeyIsNamed) {
  auto e = error_of(test::ref_path("bad_extra_key.pt"));
  EXPECT_NE(e.find("unexpected key 'lstm.bias_ih_l0'"), std::string::npos) << e;
}

TEST(Checkpoint, TruncatedFileIsReported) {
  auto e = error_of(test::ref_path("bad_truncated.pt"));
  EXPECT_NE(e.find("bad_truncated.pt"), std::string::npos) << e;
  EXPECT_FALSE(e.empty());
}

TEST(Checkpoint, RandomBytesAreReported) {
  auto e = error_of(test::ref_path("bad_random.bin"));
  EXPECT_NE(e.find("neither a PyTorch checkpoint nor a safetensors model"), std::string::npos) << e;
}

TEST(Checkpoint, PickledObjectsAreRefusedNotExecuted) {
  // The fixture pickles os.getcwd: a real unpickler would import and call into os.
  auto e = error_of(test::ref_path("bad_pickled_object.pt"));
  EXPECT_FALSE(e.empty());
  EXPECT_TRUE(e.find("not a tensor") != std::string::npos || e.find("refusing") != std::string::npos) << e;
}

TEST(Checkpoint, MissingFileAndEmptyFile) {
  EXPECT_NE(error_of("/nonexistent/model.pt").find("cannot open model file"), std::string::npos);
  const std::string empty = tmp_path("empty.pt");
  std::ofstream(empty).close();
  EXPECT_NE(error_of(empty).find("too short"), std::string::npos);
  std::remove(empty.c_str());
}

TEST(Checkpoint, SafetensorsWithLyingHeaderIsRejected) {
  const std::string p = tmp_path("lying.safetensors");
  std::string header = R"({"linear1.bias":{"dtype":"F32","shape":[2],"data_offsets":[0,4096]}})";
  std::ofstream f(p, std::ios::binary);
  uint64_t n = header.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << header << "12345678";
  f.close();
  auto e = error_of(p);
  EXPECT_NE(e.find("outside the file"), std::string::npos) << e;
  std::remove(p.c_str());
}

TEST(Checkpoint, UntrainedModelIsDeterministicAndSaysSo) {
  auto a = untrained_state_dict(5), b = untrained_state_dict(5), c = untrained_state_dict(6);
  EXPECT_EQ(weights_checksum(a), weights_checksum(b));
  EXPECT_NE(weights_checksum(a), weights_checksum(c));
  EXPECT_NO_THROW(validate_state_dict(a));
  auto card = Model::untrained_card(5);
  EXPECT_FALSE(card.trained);
  EXPECT_NE(card.trust_notice().find("UNTRAINED"), std::string::npos);
}

TEST(Checkpoint, LoadSharedReturnsOneInstancePerPath) {
  auto a = Model::load_shared(test::ref_path("reference.pt"));
  auto b = Model::load_shared(test::ref_path("reference.pt"));
  EXPECT_EQ(a.get(), b.get());
}

TEST(Checkpoint, CudaWithoutCudaIsAClearError) {
  ModelOptions o;
  o.device = "cuda";
  try {
    Model::from_state_dict(untrained_state_dict(1), Model::untrained_card(1), o);
    SUCCEED() << "this LibTorch has CUDA";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA"), std::string::npos);
  }
  o.device = "tpu";
  EXPECT_THROW(Model::from_state_dict(untrained_state_dict(1), Model::untrained_card(1), o), std::invalid_argument);
}

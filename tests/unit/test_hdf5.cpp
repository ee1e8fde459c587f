// The Keras HDF5 reader (checkpoint/hdf5.h) on the authors' MesoNet files and
// on broken and hostile ones (tests/python/make_mesonet_reference.py): each
// bad file is one std::runtime_error naming the problem, HDF5 prints nothing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "mesonet_paths.h"
#include "checkpoint/hdf5.h"
#include "checkpoint/state_dict.h"
#include "model/family.h"

using namespace dfd;
using namespace mesonet_test;

namespace {


// The message of the one exception load_detector throws, with HDF5's stderr checked empty.
std::string load_error(const std::string& path) {
  ::testing::internal::CaptureStderr();
  std::string msg;
  try {
    load_detector(path);
    msg = "(loaded)";
  } catch (const std::runtime_error& e) {
    msg = e.what();
  } catch (const std::exception& e) {
    msg = std::string("(wrong exception type) ") + e.what();
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(err, "") << "HDF5 printed to stderr for " << path;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  return msg;
}

#define EXPECT_HAS(haystack, needle) EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

}  // namespace

TEST(Hdf5, ReadsKerasWeightsWithTheirNamesShapesAndValues) {
  Checkpoint ck = read_checkpoint(model_path("Meso4_DF.h5"));  // chosen by content
  EXPECT_EQ(ck.format, "keras-h5");
  EXPECT_FALSE(ck.card);
  ASSERT_EQ(ck.tensors.size(), 28u);  // 4 conv x 2, 4 batch norm x 4, 2 dense x 2
  EXPECT_EQ(ck.tensors.at("conv2d_5/kernel").shape, (std::vector<int64_t>{3, 3, 3, 8}));
  EXPECT_EQ(ck.tensors.at("conv2d_8/kernel").shape, (std::vector<int64_t>{5, 5, 16, 16}));
  EXPECT_EQ(ck.tensors.at("batch_normalization_7/moving_variance").shape, (std::vector<int64_t>{16}));
  EXPECT_EQ(ck.tensors.at("dense_3/kernel").shape, (std::vector<int64_t>{1024, 16}));
  EXPECT_EQ(ck.tensors.at("dense_4/bias").dtype, DType::F32);
  // Variances are positive, and not all the same (real data was read).
  const auto& v = ck.tensors.at("batch_normalization_5/moving_variance");
  const float* f = reinterpret_cast<const float*>(v.bytes.data());
  for (int i = 0; i < 8; ++i) EXPECT_GT(f[i], 0.f);
  EXPECT_NE(f[0], f[1]);
  EXPECT_EQ(read_keras_h5(model_path("MesoInception_DF.h5")).tensors.size(), 16u * 2 + 4 * 4 + 2 * 2);
}

TEST(Hdf5, ParameterCountsAreThePapers) {
  // Afchar et al. 2018: Meso4 27,977 and MesoInception4 28,615 trainable parameters.
  for (auto [file, want] : {std::pair<const char*, int64_t>{"Meso4_F2F.h5", 27977}, {"MesoInception_DF.h5", 28615}}) {
    auto r = resolve_checkpoint(read_checkpoint(model_path(file)), file);
    int64_t n = 0;
    for (auto& [k, t] : r.tensors)
      if (k.find("running_") == std::string::npos) n += t.numel();
    EXPECT_EQ(n, want) << file;
  }
}

TEST(Hdf5, TruncatedFileIsOneError) {
  const std::string m = load_error(fixture("meso_bad_truncated.h5"));
  EXPECT_HAS(m, "meso_bad_truncated.h5: HDF5: cannot open the file (truncated or damaged?)");
  EXPECT_HAS(m, "truncated file");  // HDF5's own cause, kept in the one line
}

TEST(Hdf5, GarbageAfterTheSignatureIsOneError) {
  EXPECT_HAS(load_error(fixture("meso_bad_hdf5_garbage.h5")), "HDF5: cannot open the file");
}

TEST(Hdf5, NotHdf5IsNamed) {
  EXPECT_HAS(load_error(fixture("meso_bad_not_hdf5.h5")), "neither a PyTorch checkpoint nor a safetensors model");
}

TEST(Hdf5, Hdf5ThatIsNotKerasIsNamed) {
  EXPECT_HAS(load_error(fixture("meso_bad_not_keras.h5")), "has no attribute 'layer_names' (not a Keras weight file?)");
}

TEST(Hdf5, WrongLayerNamesAreNamed) {
  EXPECT_HAS(load_error(fixture("meso_bad_layer_names.h5")), "unexpected layer 'convolution_6'");
}

TEST(Hdf5, WrongShapesAreNamed) {
  EXPECT_HAS(load_error(fixture("meso_bad_shapes.h5")),
             "shape mismatch for 'conv2d_6/kernel' (conv2): expected [5, 5, 8, 8], got [5, 5, 8, 9]");
}

TEST(Hdf5, AMissingLayerIsNamed) {
  EXPECT_HAS(load_error(fixture("meso_bad_missing_layer.h5")),
             "4 conv2d, 4 batch_normalization and 1 dense layers with weights: neither Meso4 (4, 4, 2) nor "
             "MesoInception4 (16, 4, 2)");
}

TEST(Hdf5, IntegerWeightsAreRefused) {
  EXPECT_HAS(load_error(fixture("meso_bad_dtype.h5")), "is not float32 or float64 data");
}

TEST(Hdf5, HostileHugeDatasetIsRefusedBeforeAllocation) {
  EXPECT_HAS(load_error(fixture("meso_bad_huge.h5")), "more than 67108864 elements");
}

TEST(Hdf5, HostileExternalStorageIsRefused) {
  EXPECT_HAS(load_error(fixture("meso_bad_external_storage.h5")), "keeps its data in external files (refused)");
}

TEST(Hdf5, HostileExternalLinkIsRefused) {
  EXPECT_HAS(load_error(fixture("meso_bad_external_link.h5")), "is a soft or external link (refused)");
}

TEST(Hdf5, HostileFilterPluginIsRefused) {
  EXPECT_HAS(load_error(fixture("meso_bad_filter.h5")), "uses filter 32000 (only deflate, shuffle and fletcher32");
}

TEST(Hdf5, HostileLayerListIsRefused) {
  EXPECT_HAS(load_error(fixture("meso_bad_many_layers.h5")), "lists 200000 names (at most 10000)");
}

TEST(Hdf5, MissingFileIsNamed) {
  EXPECT_HAS(load_error("/nonexistent/m.h5"), "cannot open model file /nonexistent/m.h5");
}

TEST(Hdf5, ReadingStillWorksAfterErrors) {
  EXPECT_THROW(read_keras_h5(fixture("meso_bad_truncated.h5")), std::runtime_error);
  EXPECT_EQ(read_keras_h5(model_path("Meso4_DF.h5")).tensors.size(), 28u);
}

// Face crops that fix the int8 scales of a quantized model: MesoNet on
// OpenCV's dnn (model/mesonet_dnn.cpp) and the ResNeXt backbone on oneDNN
// (model/onednn_backbone.h, prepared by model/model.cpp). Torch-free.
#pragma once
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "model/preprocess.h"

namespace dfd {

// The directory of calibration faces for a model loaded from `model_source`:
// $DFD_INT8_CALIBRATION when set, else the first of <model's dir>/calibration
// and the default model directories' mesonet/calibration that exists.
// Throws std::runtime_error naming where it looked when none does.
std::string find_calibration_dir(const std::string& model_source);

// Every JPEG/PNG in `dir` (sorted by name) as a BGR crop, each followed by
// its mirror image. Throws std::runtime_error for an unreadable directory, a
// file that is not an image, or no image at all; at most kMaxCalibrationFaces
// files are read.
std::vector<cv::Mat> load_calibration_faces(const std::string& dir);

// The faces in `dir` (load_calibration_faces) prepared as inference
// prepares crops (crops_to_nchw at `size`): faces x 3 x size x size floats.
std::vector<float> calibration_crops(const std::string& dir, const Normalisation& n, int size);

// What a shared-model cache adds to its key for `precision`: for "int8" the
// calibration directory asked for ($DFD_INT8_CALIBRATION; other faces,
// other scales, another instance), else nothing.
std::string calibration_cache_key(const std::string& precision);

// 16 faces (32 crops with their mirrors): about 25 MB of prepared input held
// by an int8 detector, and a float32 forward over them per net quantized.
constexpr size_t kMaxCalibrationFaces = 16;

}  // namespace dfd

// The MesoNet detector (Meso4, MesoInception4) behind the family interface,
// run by LibTorch (mesonet.cpp, part of libdfd-torch: reach it through
// model/torch_module.h, or link libdfd-torch). The default backend is OpenCV's
// dnn (model/mesonet_dnn.h). Torch-free header.
#pragma once
#include <memory>
#include <string>

#include "model/family.h"
#include "model/mesonet_layout.h"

namespace dfd {

// `tensors` in our names (mesonet_layout.h), validated here; `card` says the
// variant ("meso4"/"mesoinception4"). Options: device "cpu" and precision
// "fp32" only (check_mesonet_load, model/mesonet_detector.h; int8 is the
// OpenCV backend's). Throws std::runtime_error / std::invalid_argument.
std::shared_ptr<const Detector> make_mesonet_detector(const StateDict& tensors, const ModelCard& card,
                                                      const ModelOptions& opts, const std::string& source);

}  // namespace dfd

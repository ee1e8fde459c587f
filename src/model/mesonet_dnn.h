// MesoNet (Meso4, MesoInception4) on OpenCV's dnn module: the default
// backend. The graph of model/mesonet_layout.h is built layer by layer
// (cv::dnn::Net::addLayer) from the weights in our names, so it needs no
// LibTorch: a process that runs only MesoNet never maps libtorch_cpu.so,
// whose load alone took 0.6-1.8 s (docs/performance.md, "Start-up").
#pragma once
#include <memory>
#include <string>

#include "model/family.h"
#include "model/mesonet_layout.h"

namespace dfd {

// As make_mesonet_detector (model/mesonet.h), on OpenCV's dnn. Options:
// device "cpu", precision "fp32" or "int8" (quantized at load on the
// calibration faces, model/mesonet_calibration.h); num_threads > 0 sets OpenCV's thread count
// (process-wide, as LibTorch's was). Throws std::runtime_error /
// std::invalid_argument.
std::shared_ptr<const Detector> make_mesonet_dnn_detector(const StateDict& tensors, const ModelCard& card,
                                                          const ModelOptions& opts, const std::string& source);

}  // namespace dfd

// LibTorch, loaded only when needed. Everything that includes LibTorch (the
// ResNeXt50+LSTM network, the LibTorch MesoNet, training) lives in a shared
// library of its own, libdfd-torch.so; the core library (the plugin,
// deepfake-scan, deepfake-serve, deepfake-eval, deepfake-model) does not link
// it, and dlopen()s it the first time a ResNeXt model or the LibTorch MesoNet
// backend is asked for. A process that runs only the default MesoNet (OpenCV's
// dnn, model/mesonet_dnn.h) never maps libtorch_cpu.so, whose load alone took
// 0.6-1.8 s at start-up (docs/performance.md, "Start-up").
//
// Where the module is looked for, in order:
//   $DFD_TORCH_MODULE               the file (only there, when set);
//   already in the process          a program or test that links libdfd-torch;
//   the build tree                  when the running code is under the build root;
//   beside the code                 the folder of the plugin/program and its parent
//                                   (the installed plugin is in <libdir>/gstreamer-1.0);
//   <prefix>/<libdir>               where meson install puts it;
//   "libdfd-torch.so"               the dynamic linker's own search.
// Torch-free header.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/state_dict.h"
#include "model/model_options.h"

namespace dfd {

class Detector;
class ResNeXtNet;
struct ModelCard;

// What libdfd-torch hands the core (model/torch_module_entry.cpp).
struct TorchBackend {
  const char* version;  // DFD_VERSION the module was built as; must be the core's
  void (*check_resnext)(const ModelOptions& opts);  // ResNeXtNet::check
  std::unique_ptr<ResNeXtNet> (*make_resnext)(const StateDict& sd, const ModelOptions& opts);
  std::shared_ptr<const Detector> (*make_mesonet)(const StateDict& tensors, const ModelCard& card,
                                                  const ModelOptions& opts, const std::string& source);
};

// The module's one exported symbol: extern "C" const TorchBackend* dfd_torch_backend_v1().
constexpr const char* kTorchModuleFile = "libdfd-torch.so";
constexpr const char* kTorchModuleEntry = "dfd_torch_backend_v1";

// The backend, loaded on the first call (thread-safe; a failure is not
// remembered, so a later call tries again). `what` names what needs it in
// the error, e.g. "ResNeXt models": "ResNeXt models need libdfd-torch.so
// (LibTorch), which could not be loaded: <each place tried and why>; ...".
// Throws std::runtime_error.
const TorchBackend& torch_backend(const std::string& what);
// True once the backend is loaded in this process (by us or by linking).
bool torch_backend_loaded();
// The places torch_backend() tries, in order (for errors and tests).
std::vector<std::string> torch_module_candidates();

}  // namespace dfd

// libdfd-torch's entry point: what the core library gets when it loads the
// module (model/torch_module.h). No LibTorch headers here; the functions it
// hands out are in resnext_net.cpp and mesonet.cpp.
#include <memory>

#include "dfd_config.h"
#include "model/mesonet.h"
#include "model/resnext_net.h"
#include "model/torch_module.h"

namespace {

std::unique_ptr<dfd::ResNeXtNet> make_resnext(const dfd::StateDict& sd, const dfd::ModelOptions& opts) {
  return std::make_unique<dfd::ResNeXtNet>(sd, opts);
}

const dfd::TorchBackend kBackend{DFD_VERSION, &dfd::ResNeXtNet::check, &make_resnext, &dfd::make_mesonet_detector};

}  // namespace

extern "C" __attribute__((visibility("default"))) const dfd::TorchBackend* dfd_torch_backend_v1() { return &kBackend; }

#include "model/torch_module.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <stdexcept>

#include "dfd_config.h"
#include "torch_module_paths.h"

namespace dfd {

namespace {

using EntryFn = const TorchBackend* (*)();

std::mutex g_mu;
const TorchBackend* g_backend = nullptr;

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  return ::realpath(p.c_str(), buf) ? std::string(buf) : std::string();
}

std::string dir_of(const std::string& p) {
  const auto s = p.find_last_of('/');
  return s == std::string::npos ? "." : p.substr(0, s);
}

// The file holding this code: the plugin, or the program for the tools.
std::string this_object() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&torch_module_candidates), &info) && info.dli_fname && *info.dli_fname) {
    const std::string p = real_path(info.dli_fname);
    if (!p.empty()) return p;
  }
  return real_path("/proc/self/exe");
}

bool under(const std::string& path, const std::string& root) {
  return !root.empty() && path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
         path[root.size()] == '/';
}

const TorchBackend* check_version(const TorchBackend* b, const std::string& where) {
  if (!b) throw std::runtime_error(where + ": no backend");
  if (std::strcmp(b->version, DFD_VERSION) != 0)
    throw std::runtime_error(where + " is version " + b->version + ", this program " + DFD_VERSION);
  return b;
}

// Linked into the program, or loaded globally by someone else.
const TorchBackend* already_loaded() {
  if (void* sym = ::dlsym(RTLD_DEFAULT, kTorchModuleEntry)) return reinterpret_cast<EntryFn>(sym)();
  return nullptr;
}

// RTLD_LOCAL: LibTorch's symbols stay out of the process' global scope.
const TorchBackend* open_module(const std::string& path, std::string* why) {
  void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = ::dlerror();
    *why = e ? e : (path + ": cannot be loaded");
    return nullptr;
  }
  void* sym = ::dlsym(h, kTorchModuleEntry);
  if (!sym) {
    *why = path + ": no " + kTorchModuleEntry + " (not libdfd-torch?)";
    ::dlclose(h);
    return nullptr;
  }
  try {
    return check_version(reinterpret_cast<EntryFn>(sym)(), path);  // stays loaded for the process' life
  } catch (const std::runtime_error& e) {
    *why = e.what();
    ::dlclose(h);
    return nullptr;
  }
}

}  // namespace

std::vector<std::string> torch_module_candidates() {
  const char* env = std::getenv("DFD_TORCH_MODULE");
  if (env && *env) return {env};
  std::vector<std::string> out;
  const std::string self = this_object();
  const std::string build_root = real_path(DFD_BUILD_ROOT);
  if (!self.empty() && under(self, build_root)) out.push_back(DFD_TORCH_MODULE_BUILD);
  if (!self.empty()) {
    const std::string dir = dir_of(self);
    out.push_back(dir + "/" + kTorchModuleFile);
    out.push_back(dir_of(dir) + "/" + kTorchModuleFile);
  }
  out.push_back(DFD_TORCH_MODULE_INSTALLED);
  out.push_back(kTorchModuleFile);
  return out;
}

const TorchBackend& torch_backend(const std::string& what) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_backend) return *g_backend;
  const char* env = std::getenv("DFD_TORCH_MODULE");
  const bool forced = env && *env;
  if (!forced) {
    if (const TorchBackend* b = already_loaded()) return *(g_backend = check_version(b, "the linked libdfd-torch"));
  }
  std::string tried;
  for (const auto& path : torch_module_candidates()) {
    // A path that does not exist is not worth dlopen's message.
    if (path.find('/') != std::string::npos && ::access(path.c_str(), F_OK) != 0) {
      tried += "\n  " + path + ": no such file";
      continue;
    }
    std::string why;
    if (const TorchBackend* b = open_module(path, &why)) return *(g_backend = b);
    tried += "\n  " + why;
  }
  throw std::runtime_error(what + " need " + kTorchModuleFile +
                           " (the LibTorch backend), which could not be loaded; tried:" + tried +
                           "\nInstall it (meson install puts it in the library folder) or set "
                           "DFD_TORCH_MODULE to its path.");
}

bool torch_backend_loaded() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_backend != nullptr || already_loaded() != nullptr;
}

}  // namespace dfd

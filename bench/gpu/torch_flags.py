"""Where the LibTorch that this Python's torch carries keeps its C++ headers
and libraries, for bench/gpu/meson.build (no CMake: a pip torch's CMake
config wants the whole CUDA toolkit found, Debian's lacks link targets).

Prints five lines:
  include dirs (';'-separated), library dir, _GLIBCXX_USE_CXX11_ABI (0/1),
  'cuda' when this torch was built with CUDA (libtorch_cuda is there), else 'cpu',
  the C++ standard: c++20 from torch 2.10 on (newer headers require it, as
  torch.utils.cpp_extension moved to it), c++17 before (1.13 predates C++20).

A pip wheel keeps everything under torch/include and torch/lib. Debian's
python3-torch keeps the headers in /usr/include (libtorch-dev) and the
libraries in the multiarch folder, which torch/lib links to.
"""
import os
import sys

import torch

root = os.path.dirname(os.path.abspath(torch.__file__))
candidates = [os.path.join(root, "include"), "/usr/include"]
inc = next((d for d in candidates if os.path.isfile(os.path.join(d, "torch", "csrc", "api", "include", "torch", "torch.h"))), None)
if inc is None:
    sys.exit("torch_flags: no LibTorch C++ headers under " + " or ".join(candidates))
libdir = os.path.join(root, "lib")
if not os.path.exists(os.path.join(libdir, "libtorch_cpu.so")):
    libdir = os.path.dirname(os.path.realpath(os.path.join(libdir, "libtorch_cpu.so")))
if not os.path.exists(os.path.join(libdir, "libtorch_cpu.so")):
    sys.exit("torch_flags: no libtorch_cpu.so for torch at " + root)
abi = int(bool(torch.compiled_with_cxx11_abi()))
cuda = "cuda" if os.path.exists(os.path.join(libdir, "libtorch_cuda.so")) else "cpu"
print(";".join([inc, os.path.join(inc, "torch", "csrc", "api", "include")]))
print(libdir)
print(abi)
print(cuda)
major, minor = (int(v) for v in torch.__version__.split("+")[0].split(".")[:2])
print("c++20" if (major, minor) >= (2, 10) else "c++17")

// Keras HDF5 weight files (model.save_weights / model.save of Keras 2), read
// with Debian's HDF5 C library. No LibTorch, no Python.
//
// The weights live in the root group (save_weights) or in its `model_weights`
// group (model.save). That group's attribute `layer_names` lists the layers;
// each layer group's attribute `weight_names` lists its datasets by path
// ("conv2d_5/kernel:0"). Every dataset becomes one F32 tensor named
//     <layer name>/<last path component without ":0">
// e.g. "conv2d_5/kernel" [3, 3, 3, 8] (Keras layouts kept: conv kernels
// HWIO, dense kernels [in, out]), "batch_normalization_5/moving_variance".
// Layers without weights (pooling, dropout, flatten...) give no tensor.
//
// The files come from strangers, so: only hard links inside the file are
// followed (no external or soft links), no external or virtual storage, no
// filter plugins are loaded (deflate, shuffle and fletcher32 only), every
// declared rank, size, count and string length is checked with overflow-
// checked arithmetic against checkpoint/limits.h before memory is allocated,
// and HDF5's own error stack is never printed: any failure is one
// std::runtime_error naming the problem.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "checkpoint/state_dict.h"

namespace dfd {

// The 8-byte signature at the start of an HDF5 file.
constexpr char kHdf5Magic[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};

// Reads a Keras HDF5 weight file. The result has format "keras-h5" and no
// card. Throws std::runtime_error ("HDF5: ...") for anything else.
Checkpoint read_keras_h5(const std::string& path);

// The same for a file held in memory (HDF5's core driver over a copy of the
// bytes; nothing is read from or written to disk). Same checks, same errors.
Checkpoint read_keras_h5_memory(const uint8_t* data, size_t size);

}  // namespace dfd

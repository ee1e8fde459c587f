// Keras HDF5 weight files through the HDF5 C library, defensively: see hdf5.h.
#include "checkpoint/hdf5.h"

#include <hdf5.h>

#include <cstring>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "checkpoint/checked_math.h"
#include "checkpoint/limits.h"

namespace dfd {

namespace {

// Limits specific to Keras files (the tensor limits are shared: limits.h).
// MesoInception4 has 33 layers and 52 weight datasets.
constexpr int64_t kMaxLayers = 10'000;
constexpr int64_t kMaxWeightsPerLayer = 1'000;
constexpr int64_t kMaxNameBytes = 4'096;  // one layer or weight name
constexpr int64_t kMaxAttributeBytes = int64_t(16) << 20;
constexpr int kMaxPathDepth = 16;  // components of one weight path

// The serial HDF5 library is not thread-safe: one reader at a time.
std::mutex& hdf5_mutex() {
  static std::mutex mu;
  return mu;
}

// The innermost description on HDF5's error stack (the cause, e.g.
// "truncated file: eof = ..."), then the stack is cleared.
std::string hdf5_error_detail() {
  std::string detail;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* data) -> herr_t {
        if (e && e->desc && *e->desc) *static_cast<std::string*>(data) = e->desc;
        return 0;
      },
      &detail);
  H5Eclear2(H5E_DEFAULT);
  return detail;
}

[[noreturn]] void fail(const std::string& what) {
  const std::string detail = hdf5_error_detail();
  throw std::runtime_error("HDF5: " + what + (detail.empty() ? "" : " (" + detail + ")"));
}

// An HDF5 identifier closed on scope exit.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

Handle checked(hid_t id, herr_t (*close)(hid_t), const std::string& what) {
  if (id < 0) fail(what);
  return Handle(id, close);
}

// Only hard links: a soft or external link could point outside the file.
void require_hard_link(hid_t loc, const std::string& name, const std::string& what) {
  const htri_t exists = H5Lexists(loc, name.c_str(), H5P_DEFAULT);
  if (exists <= 0) fail(what + " is missing");
  H5L_info_t info;
  if (H5Lget_info(loc, name.c_str(), &info, H5P_DEFAULT) < 0) fail("cannot inspect " + what);
  if (info.type != H5L_TYPE_HARD) throw std::runtime_error("HDF5: " + what + " is a soft or external link (refused)");
}

void check_name(const std::string& s, const std::string& what) {
  if (s.empty()) throw std::runtime_error("HDF5: empty " + what);
  if (s == "." || s == ".." || s.find('\0') != std::string::npos)
    throw std::runtime_error("HDF5: invalid " + what + " '" + s + "'");
}

// A one-dimensional (or scalar) attribute of strings, fixed or variable length.
std::vector<std::string> read_string_list(hid_t obj, const char* attr_name, const std::string& where,
                                          int64_t max_count) {
  const std::string what = "attribute '" + std::string(attr_name) + "' of " + where;
  const htri_t exists = H5Aexists(obj, attr_name);
  if (exists < 0) fail("cannot inspect " + what);
  if (exists == 0) throw std::runtime_error("HDF5: " + where + " has no attribute '" + attr_name + "' (not a Keras weight file?)");
  Handle attr = checked(H5Aopen(obj, attr_name, H5P_DEFAULT), H5Aclose, "cannot open " + what);
  Handle type = checked(H5Aget_type(attr.get()), H5Tclose, "cannot read the type of " + what);
  Handle space = checked(H5Aget_space(attr.get()), H5Sclose, "cannot read the shape of " + what);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0 || rank > 1) throw std::runtime_error("HDF5: " + what + " is not a one-dimensional list");
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0) fail("cannot count " + what);
  if (n == 0) return {};  // Keras writes an empty list as an empty float array
  if (H5Tget_class(type.get()) != H5T_STRING) throw std::runtime_error("HDF5: " + what + " is not a list of strings");
  if (n > max_count)
    throw std::runtime_error("HDF5: " + what + " lists " + std::to_string(n) + " names (at most " +
                             std::to_string(max_count) + ")");
  std::vector<std::string> out;
  const htri_t variable = H5Tis_variable_str(type.get());
  if (variable < 0) fail("cannot inspect the type of " + what);
  if (variable) {
    Handle mem = checked(H5Tcopy(H5T_C_S1), H5Tclose, "cannot make a string type");
    if (H5Tset_size(mem.get(), H5T_VARIABLE) < 0) fail("cannot make a string type");
    std::vector<char*> ptrs(size_t(n), nullptr);
    if (H5Aread(attr.get(), mem.get(), ptrs.data()) < 0) fail("cannot read " + what);
    std::string error;
    for (char* p : ptrs) {
      const size_t len = p ? strnlen(p, size_t(kMaxNameBytes) + 1) : 0;
      if (len > size_t(kMaxNameBytes)) error = "a name in " + what + " is longer than " + std::to_string(kMaxNameBytes) + " bytes";
      out.emplace_back(p ? std::string(p, len) : std::string());
    }
    H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, ptrs.data());
    if (!error.empty()) throw std::runtime_error("HDF5: " + error);
    return out;
  }
  const size_t size = H5Tget_size(type.get());
  if (size == 0 || int64_t(size) > kMaxNameBytes)
    throw std::runtime_error("HDF5: names in " + what + " are " + std::to_string(size) + " bytes long (at most " +
                             std::to_string(kMaxNameBytes) + ")");
  const int64_t total = checked_mul(int64_t(n), int64_t(size), what);
  if (total > kMaxAttributeBytes) throw std::runtime_error("HDF5: " + what + " is too large");
  std::vector<char> buf(size_t(total), '\0');
  if (H5Aread(attr.get(), type.get(), buf.data()) < 0) fail("cannot read " + what);
  for (hssize_t i = 0; i < n; ++i) {
    const char* p = buf.data() + size_t(i) * size;
    out.emplace_back(p, strnlen(p, size));
  }
  return out;
}

// Refuses storage that is read from elsewhere or through code we do not vet.
void check_storage(hid_t dset, int rank, const std::string& what) {
  Handle plist = checked(H5Dget_create_plist(dset), H5Pclose, "cannot read the storage of " + what);
  const H5D_layout_t layout = H5Pget_layout(plist.get());
  if (layout != H5D_CONTIGUOUS && layout != H5D_COMPACT && layout != H5D_CHUNKED)
    throw std::runtime_error("HDF5: " + what + " uses virtual or unknown storage (refused)");
  const int external = H5Pget_external_count(plist.get());
  if (external != 0) throw std::runtime_error("HDF5: " + what + " keeps its data in external files (refused)");
  if (layout == H5D_CHUNKED) {
    std::vector<hsize_t> chunk(size_t(rank > 0 ? rank : 1), 0);
    const int crank = H5Pget_chunk(plist.get(), rank, chunk.data());
    if (crank != rank) fail("cannot read the chunk shape of " + what);
    std::vector<int64_t> cshape;
    for (int i = 0; i < crank; ++i) {
      if (chunk[size_t(i)] > hsize_t(std::numeric_limits<int64_t>::max()))
        throw std::runtime_error("HDF5: " + what + ": chunk dimension out of range");
      cshape.push_back(int64_t(chunk[size_t(i)]));
    }
    checked_numel(cshape, limits::kMaxTensorRank, limits::kMaxTensorElements, "HDF5: chunks of " + what);
  }
  const int nfilters = H5Pget_nfilters(plist.get());
  if (nfilters < 0) fail("cannot read the filters of " + what);
  for (int i = 0; i < nfilters; ++i) {
    unsigned flags = 0, config = 0;
    size_t nvalues = 0;
    const H5Z_filter_t f = H5Pget_filter2(plist.get(), unsigned(i), &flags, &nvalues, nullptr, 0, nullptr, &config);
    if (f != H5Z_FILTER_DEFLATE && f != H5Z_FILTER_SHUFFLE && f != H5Z_FILTER_FLETCHER32)
      throw std::runtime_error("HDF5: " + what + " uses filter " + std::to_string(f) +
                               " (only deflate, shuffle and fletcher32 are read)");
  }
}

TensorData read_dataset(hid_t dset, const std::string& what, int64_t& total_bytes) {
  Handle space = checked(H5Dget_space(dset), H5Sclose, "cannot read the shape of " + what);
  const H5S_class_t cls = H5Sget_simple_extent_type(space.get());
  if (cls != H5S_SIMPLE && cls != H5S_SCALAR) throw std::runtime_error("HDF5: " + what + " has no data space");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) fail("cannot read the rank of " + what);
  if (rank > limits::kMaxTensorRank)
    throw std::runtime_error("HDF5: " + what + ": " + std::to_string(rank) + " dimensions (at most " +
                             std::to_string(limits::kMaxTensorRank) + ")");
  std::vector<hsize_t> dims(size_t(rank > 0 ? rank : 1), 0);
  if (rank > 0 && H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) != rank)
    fail("cannot read the dimensions of " + what);
  TensorData t;
  t.dtype = DType::F32;
  for (int i = 0; i < rank; ++i) {
    if (dims[size_t(i)] > hsize_t(std::numeric_limits<int64_t>::max()))
      throw std::runtime_error("HDF5: " + what + ": dimension out of range");
    t.shape.push_back(int64_t(dims[size_t(i)]));
  }
  const int64_t numel = checked_numel(t.shape, limits::kMaxTensorRank, limits::kMaxTensorElements, "HDF5: " + what);
  const int64_t bytes = checked_mul(numel, int64_t(sizeof(float)), what);
  total_bytes = checked_add(total_bytes, bytes, "HDF5: the weights");
  if (uint64_t(total_bytes) > limits::kMaxArchiveBytes)
    throw std::runtime_error("HDF5: the weights add up to more than " + std::to_string(limits::kMaxArchiveBytes) + " bytes");

  Handle type = checked(H5Dget_type(dset), H5Tclose, "cannot read the type of " + what);
  const size_t tsize = H5Tget_size(type.get());
  if (H5Tget_class(type.get()) != H5T_FLOAT || (tsize != 4 && tsize != 8))
    throw std::runtime_error("HDF5: " + what + " is not float32 or float64 data");
  check_storage(dset, rank, what);

  t.bytes.resize(size_t(bytes));
  if (numel > 0 && H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.bytes.data()) < 0)
    fail("cannot read " + what + " (truncated or damaged file?)");
  return t;
}

// Opens `path` ("conv2d_5/kernel:0") below `layer`, following hard links only.
Handle open_weight(hid_t layer, const std::string& path, const std::string& what) {
  std::vector<std::string> parts;
  size_t from = 0;
  while (true) {
    const size_t slash = path.find('/', from);
    parts.push_back(path.substr(from, slash == std::string::npos ? std::string::npos : slash - from));
    if (slash == std::string::npos) break;
    from = slash + 1;
    if (int(parts.size()) > kMaxPathDepth) throw std::runtime_error("HDF5: " + what + ": path too deep");
  }
  std::vector<Handle> groups;
  hid_t cur = layer;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    check_name(parts[i], "path component in " + what);
    require_hard_link(cur, parts[i], what);
    groups.push_back(checked(H5Gopen2(cur, parts[i].c_str(), H5P_DEFAULT), H5Gclose, "cannot open the group of " + what));
    cur = groups.back().get();
  }
  check_name(parts.back(), "dataset name in " + what);
  require_hard_link(cur, parts.back(), what);
  return checked(H5Dopen2(cur, parts.back().c_str(), H5P_DEFAULT), H5Dclose, what + " is not a dataset");
}

// "conv2d_5/kernel:0" -> "kernel"
std::string short_weight_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  std::string s = slash == std::string::npos ? path : path.substr(slash + 1);
  const size_t colon = s.find(':');
  if (colon != std::string::npos) s.resize(colon);
  return s;
}

// Never print HDF5's error stack; never load filter plugins from the environment.
Handle file_access_properties() {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  H5PLset_loading_state(0);
  Handle fapl = checked(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "cannot create file access properties");
  H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
  return fapl;
}

Handle open_file(const std::string& path) {
  Handle fapl = file_access_properties();
  return checked(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose,
                 "cannot open the file (truncated or damaged?)");
}

// The core driver over a copy of the bytes, without a backing store: the
// name given to H5Fopen is never looked up on disk while an image is set.
Handle open_memory(const uint8_t* data, size_t size) {
  if (size == 0) throw std::runtime_error("HDF5: cannot open the file (it is empty)");
  if (uint64_t(size) > limits::kMaxArchiveBytes)
    throw std::runtime_error("HDF5: the file is larger than " + std::to_string(limits::kMaxArchiveBytes) + " bytes");
  Handle fapl = file_access_properties();
  if (H5Pset_fapl_core(fapl.get(), 64 << 10, 0) < 0) fail("cannot select the in-memory driver");
  if (H5Pset_file_image(fapl.get(), const_cast<uint8_t*>(data), size) < 0) fail("cannot hand the bytes to HDF5");
  return checked(H5Fopen("in-memory.h5", H5F_ACC_RDONLY, fapl.get()), H5Fclose,
                 "cannot open the file (truncated or damaged?)");
}

Checkpoint read_locked(const Handle& file) {
  Handle root = checked(H5Gopen2(file.get(), "/", H5P_DEFAULT), H5Gclose, "cannot open the root group");
  // model.save() nests the weights in "model_weights"; save_weights() does not.
  const htri_t nested = H5Lexists(root.get(), "model_weights", H5P_DEFAULT);
  if (nested < 0) fail("cannot inspect the root group");
  if (nested > 0) require_hard_link(root.get(), "model_weights", "group 'model_weights'");
  Handle weights = checked(H5Gopen2(root.get(), nested > 0 ? "model_weights" : ".", H5P_DEFAULT), H5Gclose,
                           "cannot open the group holding the weights");
  const std::string where = nested > 0 ? "group 'model_weights'" : "the root group";
  Checkpoint ck;
  ck.format = "keras-h5";
  int64_t total_bytes = 0, datasets = 0;
  for (const std::string& layer : read_string_list(weights.get(), "layer_names", where, kMaxLayers)) {
    check_name(layer, "layer name");
    if (layer.find('/') != std::string::npos) throw std::runtime_error("HDF5: layer name '" + layer + "' contains '/'");
    const std::string lwhat = "layer '" + layer + "'";
    require_hard_link(weights.get(), layer, lwhat);
    Handle g = checked(H5Gopen2(weights.get(), layer.c_str(), H5P_DEFAULT), H5Gclose, lwhat + " is not a group");
    for (const std::string& wpath : read_string_list(g.get(), "weight_names", lwhat, kMaxWeightsPerLayer)) {
      const std::string key = layer + "/" + short_weight_name(wpath);
      const std::string what = "weight '" + wpath + "' of " + lwhat;
      check_name(short_weight_name(wpath), "weight name in " + lwhat);
      if (ck.tensors.count(key)) throw std::runtime_error("HDF5: tensor '" + key + "' appears twice");
      if (++datasets > int64_t(limits::kMaxArchiveEntries)) throw std::runtime_error("HDF5: too many weight datasets");
      Handle d = open_weight(g.get(), wpath, what);
      ck.tensors[key] = read_dataset(d.get(), what, total_bytes);
    }
  }
  if (ck.tensors.empty()) throw std::runtime_error("HDF5: the file lists no weights (not a Keras weight file?)");
  return ck;
}

}  // namespace

Checkpoint read_keras_h5(const std::string& path) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  try {
    return read_locked(open_file(path));
  } catch (...) {
    H5Eclear2(H5E_DEFAULT);
    throw;
  }
}

Checkpoint read_keras_h5_memory(const uint8_t* data, size_t size) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  try {
    return read_locked(open_memory(data, size));
  } catch (...) {
    H5Eclear2(H5E_DEFAULT);
    throw;
  }
}

}  // namespace dfd

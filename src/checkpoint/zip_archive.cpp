#include "checkpoint/zip_archive.h"

#include <zip.h>

#include <stdexcept>

#include "checkpoint/limits.h"

namespace dfd {

struct ZipArchive::Handle {
  zip_t* zip = nullptr;
  ~Handle() {
    if (zip) zip_discard(zip);  // read-only: nothing to write back
  }
};

namespace {
[[noreturn]] void fail(const std::string& what) { throw std::runtime_error("zip archive: " + what); }

std::string error_text(int code) {
  zip_error_t e;
  zip_error_init_with_code(&e, code);
  std::string s = zip_error_strerror(&e);
  zip_error_fini(&e);
  return s;
}

// RAII for one open entry.
struct EntryFile {
  zip_file_t* f;
  ~EntryFile() {
    if (f) zip_fclose(f);
  }
};
}  // namespace

ZipArchive::ZipArchive(std::unique_ptr<Handle> h) : h_(std::move(h)) {
  const zip_int64_t n = zip_get_num_entries(h_->zip, 0);
  if (n < 0 || uint64_t(n) > limits::kMaxArchiveEntries)
    fail(std::to_string(n) + " entries (at most " + std::to_string(limits::kMaxArchiveEntries) + ")");
  names_.reserve(size_t(n));
  for (zip_int64_t i = 0; i < n; ++i) {
    const char* name = zip_get_name(h_->zip, zip_uint64_t(i), ZIP_FL_ENC_RAW);
    names_.push_back(name ? name : "");
  }
}

ZipArchive::~ZipArchive() = default;
ZipArchive::ZipArchive(ZipArchive&&) noexcept = default;

ZipArchive ZipArchive::open_file(const std::string& path) {
  int err = 0;
  auto h = std::make_unique<Handle>();
  h->zip = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &err);
  if (!h->zip) fail(error_text(err));
  return ZipArchive(std::move(h));
}

ZipArchive ZipArchive::open_memory(const uint8_t* data, size_t size) {
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_buffer_create(data, size, 0, &err);
  if (!src) {
    std::string s = zip_error_strerror(&err);
    zip_error_fini(&err);
    fail(s);
  }
  auto h = std::make_unique<Handle>();
  h->zip = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &err);
  if (!h->zip) {
    zip_source_free(src);
    std::string s = zip_error_strerror(&err);
    zip_error_fini(&err);
    fail(s);
  }
  zip_error_fini(&err);
  return ZipArchive(std::move(h));
}

int64_t ZipArchive::index_of(const std::string& name) const {
  for (size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name) return int64_t(i);
  return -1;
}

bool ZipArchive::has(const std::string& name) const { return index_of(name) >= 0; }

uint64_t ZipArchive::declared_size(const std::string& name) const {
  const int64_t i = index_of(name);
  if (i < 0) fail("no entry " + name);
  zip_stat_t st;
  if (zip_stat_index(h_->zip, zip_uint64_t(i), 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE))
    fail("cannot read the size of " + name);
  return st.size;
}

std::vector<uint8_t> ZipArchive::read(const std::string& name, uint64_t max_bytes) const {
  const uint64_t size = declared_size(name);
  if (size > max_bytes)
    fail(name + " declares " + std::to_string(size) + " bytes, more than the limit of " +
         std::to_string(max_bytes));
  EntryFile f{zip_fopen_index(h_->zip, zip_uint64_t(index_of(name)), 0)};
  if (!f.f) fail("cannot open " + name + ": " + zip_strerror(h_->zip));
  std::vector<uint8_t> out(size);
  uint64_t got = 0;
  while (got < size) {
    const zip_int64_t n = zip_fread(f.f, out.data() + got, size - got);
    if (n < 0) fail(name + " is corrupt: " + zip_file_strerror(f.f));
    if (n == 0) fail(name + " ends after " + std::to_string(got) + " of " + std::to_string(size) + " bytes");
    got += uint64_t(n);
  }
  uint8_t extra;
  if (zip_fread(f.f, &extra, 1) != 0) fail(name + " holds more bytes than it declares");
  return out;
}

}  // namespace dfd

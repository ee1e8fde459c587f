// A read-only zip archive (libzip) whose reads are bounded: an entry's
// declared size is checked against the caller's cap before a byte is
// inflated, reading streams into a buffer of exactly that size, and an entry
// that inflates to more than it declared is refused. A small hostile archive
// therefore cannot expand into gigabytes. No LibTorch: it can be fuzzed alone.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dfd {

class ZipArchive {
 public:
  // Opens a file, or an archive held in memory (the bytes must outlive it).
  static ZipArchive open_file(const std::string& path);
  static ZipArchive open_memory(const uint8_t* data, size_t size);
  ~ZipArchive();
  ZipArchive(ZipArchive&&) noexcept;
  ZipArchive& operator=(ZipArchive&&) = delete;

  const std::vector<std::string>& names() const { return names_; }
  bool has(const std::string& name) const;
  uint64_t declared_size(const std::string& name) const;
  // The entry's bytes; throws if it declares (or inflates to) more than
  // `max_bytes`, if it is missing, or if its data is corrupt.
  std::vector<uint8_t> read(const std::string& name, uint64_t max_bytes) const;

 private:
  struct Handle;
  explicit ZipArchive(std::unique_ptr<Handle> h);
  int64_t index_of(const std::string& name) const;
  std::unique_ptr<Handle> h_;
  std::vector<std::string> names_;
};

}  // namespace dfd

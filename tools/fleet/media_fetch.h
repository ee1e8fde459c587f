// Where a worker's job media comes from (docs/fleet.md): a job names its
// media by URI (file:// on shared storage, http(s):// fetched with libsoup)
// or carries an upload in Redis. Fetched bytes go into a private temporary
// directory and are removed when the FetchedMedia goes.
#pragma once
#include <cstddef>
#include <stdexcept>
#include <string>

namespace dfd::fleet {

// The media could not be had (missing file, HTTP error, too large, ...).
struct FetchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class FetchedMedia {
 public:
  FetchedMedia() = default;
  ~FetchedMedia();
  FetchedMedia(FetchedMedia&& o) noexcept;
  FetchedMedia& operator=(FetchedMedia&& o) noexcept;
  FetchedMedia(const FetchedMedia&) = delete;
  FetchedMedia& operator=(const FetchedMedia&) = delete;

  const std::string& path() const { return path_; }  // a local file to scan

  // file:///PATH: the file itself (nothing copied). Throws FetchError.
  static FetchedMedia from_file_uri(const std::string& uri);
  // http(s)://: downloaded (at most max_bytes, within timeout_s). Throws FetchError.
  static FetchedMedia from_http(const std::string& uri, size_t max_bytes, double timeout_s);
  // Bytes already at hand (an upload from Redis), written to a temporary file.
  static FetchedMedia from_bytes(const std::string& bytes, const std::string& name_hint);

 private:
  std::string path_, temp_dir_;  // temp_dir_ set when we own the file
  void release();
};

}  // namespace dfd::fleet

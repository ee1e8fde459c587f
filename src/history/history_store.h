// The result history of deepfake-serve: one row per scan (when, which upload,
// the sha256 of its bytes, which model, the verdict and the full report), kept
// in SQLite (one service) or PostgreSQL (a fleet sharing one history).
// No GStreamer, no LibTorch: tools/serve/history_api.cpp is the HTTP side.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace dfd::history {

struct ScanEntry {
  int64_t id = 0;            // assigned by record()
  int64_t time_ms = 0;       // Unix time of the scan, milliseconds
  std::string source;        // the upload's name as the client gave it
  std::string media_sha256;  // lowercase hex of the uploaded bytes
  std::string model;         // model name shown to people
  // Identifies the weights + card (e.g. the model file's checksum): a cached
  // result is reused only for the same media AND the same model_key.
  std::string model_key;
  std::string verdict;       // "REAL", "FAKE", "NO_FACE", ...
  double probability = 0;    // P(FAKE)
  std::string report_json;   // the full report, as served
};

struct ScanQuery {
  std::string verdict;   // empty: any
  int64_t since_ms = 0;  // 0: no lower bound (inclusive)
  int64_t until_ms = 0;  // 0: no upper bound (inclusive)
  int limit = 50;
  int offset = 0;
};

// Every method is safe to call from several threads at once. Failures of the
// database (full disk, lost connection, corrupt file) throw std::runtime_error;
// a failed record() leaves nothing behind.
class HistoryStore {
 public:
  virtual ~HistoryStore() = default;
  // Stores the entry (its id is ignored) and answers the new id.
  virtual int64_t record(const ScanEntry&) = 0;
  virtual std::optional<ScanEntry> get(int64_t id) = 0;
  // The newest entry for these bytes scanned with this model, if any.
  virtual std::optional<ScanEntry> find_media(const std::string& media_sha256, const std::string& model_key) = 0;
  // Newest first; *total (when not null) receives the count matching the
  // filter, ignoring limit/offset.
  virtual std::vector<ScanEntry> list(const ScanQuery&, int64_t* total) = 0;
  // False when there was no such entry.
  virtual bool remove(int64_t id) = 0;
};

// A path or "sqlite:PATH" -> SQLite; "postgresql://..." or "postgres://..." ->
// PostgreSQL. Throws std::runtime_error with a clear message.
std::unique_ptr<HistoryStore> open_history_store(const std::string& url);

}  // namespace dfd::history

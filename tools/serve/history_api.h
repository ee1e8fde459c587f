// deepfake-serve's result history (see src/history/ and docs/service.md):
//
//   every scan by /predict_media and /api/v1/analyze is recorded (time, the
//   upload's name, the sha256 of its bytes, model name and key, verdict,
//   P(FAKE), the report); an upload whose bytes were already scanned with the
//   same model and settings is answered from the history instead of scanned.
//
//   GET    /api/v1/scans       ?limit=&offset=&verdict=&since=&until= (newest first)
//   GET    /api/v1/scans/ID    one entry with its report (?format=html: as the HTML report)
//   DELETE /api/v1/scans/ID    removes it (404 when absent, 400 for a bad id)
//
// The API's database calls run on GLib's thread pool, never on the main loop.
#pragma once
#include <libsoup/soup.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "history/history_store.h"
#include "scan_runner.h"

namespace dfd::serve {

// The history URL deepfake-serve uses: `option` as given ("none": no history,
// returned as ""); when empty, $DFD_HISTORY, else SQLite in `data_dir`
// (default $XDG_DATA_HOME/deepfakedetect or ~/.local/share/deepfakedetect),
// which is created (0700). Throws std::runtime_error.
std::string resolve_history_url(const std::string& option, const std::string& data_dir);

// What a cached result must match besides the bytes: the weights' checksum
// and a digest of the model card and the element settings that change a
// verdict (window, threshold, face detector, ...).
std::string history_model_key(const std::string& checksum, const std::string& card_json, const ScanOptions& scan);

// Lowercase hex SHA-256 of a file's bytes. Throws std::runtime_error.
std::string sha256_of_file(const std::string& path);

bool is_history_path(const char* path);  // /api/v1/scans and below

class ServeHistory {
 public:
  ServeHistory(std::shared_ptr<history::HistoryStore> store, std::string model_name, std::string model_key);
  ~ServeHistory();  // waits for the API calls still running
  ServeHistory(const ServeHistory&) = delete;
  ServeHistory& operator=(const ServeHistory&) = delete;

  struct Outcome {
    Report report;
    int64_t scan_id = 0;  // 0: not recorded (see error)
    bool cached = false;  // answered from the history, `run` was not called
    std::string error;    // the history failed (logged); the scan itself is good
  };
  // Worker thread: the stored result for these bytes and this model, else
  // run() (which throws ScanError as run_scan does) and record its report.
  Outcome scan(const std::string& upload_path, const std::string& source_name, const std::function<Report()>& run);

  // Main thread: answers a request under /api/v1/scans (paused until the
  // database answers).
  void handle(SoupServerMessage* msg, const char* path, GHashTable* query);

 private:
  struct Call;
  static void on_done(GObject*, GAsyncResult* result, gpointer data);

  std::shared_ptr<history::HistoryStore> store_;
  std::string model_name_, model_key_;
  GMainContext* context_ = nullptr;
  std::shared_ptr<std::atomic<int>> in_flight_;
  std::shared_ptr<std::atomic<bool>> closing_;
};

// Answers a history request when the history is off (--history none).
void respond_history_off(SoupServerMessage* msg);

}  // namespace dfd::serve

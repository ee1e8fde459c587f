// deepfake-serve: the HTTP service (libsoup 3, GLib main loop).
//
//   POST /predict_media   multipart field "file": the original Flask API's
//                         response, {"label", "confidence", "img"}, unchanged
//   POST /api/v1/analyze  multipart field "file": the full JSON report plus
//                         "model_card" and "images" (crops and heatmaps,
//                         base64 PNG); ?format=html gives the HTML report
//   GET  /healthz         {"status": "ok", "model": {...}, "busy", ...}
//   GET  /api/v1/scans[/ID], DELETE /api/v1/scans/ID   the result history
//                         (history_api.h); a result already in it is reused
//   GET  /                the upload page
//
// Uploads are untrusted: capped in size (413, answered as soon as the headers
// say so, without reading the body), sniffed by content (415), pictures and
// frames capped in pixels before decoding (413), written only into a private
// mkdtemp directory under server-chosen names and removed after the request;
// at most max_concurrent analyses run at once (503 beyond), each on its own
// thread with a time limit (504). Connections are accepted here, not by
// libsoup: at most max_connections_per_client from one address and
// max_connections in all; request headers must arrive within header_timeout_s
// and the body within body_timeout_s (408, then the connection is closed);
// one request per connection. The main loop only parses requests and writes
// responses, so the server keeps answering while analyses run. The model is
// loaded once at start-up and shared by every request. Private directories
// left by a server that died are removed at start-up (each live one holds a
// lock file).
#pragma once
#include <glib.h>

#include <cstddef>
#include <memory>
#include <string>

#include "scan_runner.h"

namespace dfd::serve {

struct ServerConfig {
  std::string bind = "127.0.0.1";  // an IP address
  int port = 5000;                 // the original API's port; 0 = any free port
  std::string model;               // empty: the shipped trained MesoNet (dfd::find_default_model())
  size_t max_upload_bytes = 16u << 20;
  int max_concurrent = 2;
  double timeout_s = 120;          // per request, analysis and pictures
  double header_timeout_s = 10;    // request line and headers, from the connection's start
  double body_timeout_s = 60;      // the whole body, from the end of the headers
  int max_connections_per_client = 16;  // open connections from one IP address
  int max_connections = 256;            // open connections in all
  int images_per_track = 3;        // suspicious crops with heatmaps in /api/v1/analyze
  ScanOptions scan;                // element settings and scan.max_pixels for every request (input, model
                                   // and time limits are set per request)
  std::string plugin_dir;          // extra directory to look for the deepfakedetect plugin
  std::string temp_parent;         // where the private directory goes; empty: g_get_tmp_dir()
  std::string redis_url;           // the fleet's job API (job_api.h, docs/fleet.md); empty: off
  // The result history (tools/serve/history_api.h): a path, sqlite:PATH or
  // postgresql://...; empty: none. deepfake-serve fills in its default
  // (SQLite in data_dir) with resolve_history_url().
  std::string history;
  std::string data_dir;            // empty: $XDG_DATA_HOME/deepfakedetect or ~/.local/share/deepfakedetect
};

class Server {
 public:
  // Loads the model and makes the private directory. Throws std::runtime_error.
  explicit Server(ServerConfig config);
  ~Server();  // stops listening, waits for running analyses, removes the directory
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Starts listening on the thread-default main context; returns the bound
  // port (the real one when config.port is 0). Throws std::runtime_error.
  int listen();
  std::string url() const;  // e.g. http://127.0.0.1:5000
  // One line about the model, with the untrained warning when it applies.
  std::string model_summary() const;
  // Runs the main loop until quit() (or SIGINT/SIGTERM when handle_signals).
  void run(bool handle_signals = true);
  void quit();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfd::serve

// deepfake-monitor's service: the sources (one SourceRunner each) and the
// REST API on libsoup 3, all on one GLib main loop.
//
//   GET    /api/v1/sources        {"sources": [figures...]}
//   GET    /api/v1/sources/ID     one source's figures; 404 if unknown
//   POST   /api/v1/sources        add one (a config "sources" entry as the body):
//                                 201 with its figures; 400 bad body or setting
//                                 (the message names the field); 409 id taken
//   DELETE /api/v1/sources/ID     stop and remove: 200; 404 if unknown
//   GET    /metrics               Prometheus text format
//   GET    /healthz               {"status": "ok", "sources": N, "playing": N}
#pragma once
#include <libsoup/soup.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "monitor/monitor_config.h"
#include "source_runner.h"

namespace dfd::monitor {

class Monitor {
 public:
  // Builds every configured source (throws BuildError naming the source and
  // the setting when one cannot be built); nothing plays until start().
  explicit Monitor(MonitorConfig config);
  ~Monitor();
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  void start();     // sets every source playing
  int listen();     // returns the bound port; throws std::runtime_error
  void run();       // the main loop, until SIGINT/SIGTERM
  std::string url() const;

  struct Reply {
    int status;
    std::string content_type, body;
  };
  // The REST API without HTTP: method, path and body in, status and body out.
  Reply handle(const std::string& method, const std::string& path, const std::string& body);

 private:
  static gboolean on_tick(gpointer self);
  static void on_request(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable*, gpointer self);
  static gboolean on_signal(gpointer loop);
  std::vector<SourceFigures> all_figures() const;
  Reply add_source(const std::string& body);

  MonitorConfig config_;
  std::vector<std::string> order_;  // ids in the order they were added
  std::map<std::string, std::unique_ptr<SourceRunner>> sources_;
  SoupServer* server_ = nullptr;
  int port_ = 0;
  guint tick_ = 0;
  int64_t started_us_ = 0;
};

}  // namespace dfd::monitor

// What the monitor knows about one source: its state and counters, as
// GET /api/v1/sources shows them (JSON) and GET /metrics exports them
// (Prometheus text format). Counters are cumulative over the source's
// restarts. No GStreamer here: tools/monitor fills these in from the
// element's bus messages, its metas and its counters.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "monitor/frame_latency.h"

namespace dfd::monitor {

enum class SourceState { Playing, Reconnecting, Stopped };
const char* source_state_name(SourceState s);

struct LastVerdict {
  bool set = false;
  uint64_t track_id = 0;
  std::string label;              // the window's FAKE/REAL
  double fake_probability = -1;   // the window's P(FAKE)
  std::string track_label;        // the track's aggregate after it
  double track_fake_probability = -1;
  int64_t unix_ms = 0;            // when the monitor received it
};

struct SourceFigures {
  std::string id, uri, restart;
  SourceState state = SourceState::Stopped;
  uint64_t frames = 0;             // buffers through the pipeline
  uint64_t faces = 0;              // face ROI metas on them
  uint64_t windows = 0;            // window verdict messages
  uint64_t windows_skipped = 0;    // dropped by the element's full queue (live sources)
  std::map<std::string, uint64_t> verdicts;  // window label -> count
  uint64_t reconnects = 0;         // restarts after an error or an end
  uint64_t errors = 0;             // errors seen (bus errors, stalls, failed starts)
  uint64_t events_published = 0;   // deepfakemetapublish's published
  uint64_t events_dropped = 0;     // deepfakemetapublish's dropped
  std::string last_error;          // empty if none
  double next_retry_s = 0;         // while reconnecting: the delay being waited
  LastVerdict last_verdict;
  LatencyStats latency;            // queue depth and added latency (current pipeline's window)
};

nlohmann::json figures_json(const SourceFigures& f);

// Prometheus text format (version 0.0.4): one family per counter with a
// `source` label, plus the process's figures.
struct ProcessFigures {
  uint64_t rss_bytes = 0;
  double uptime_s = 0;
  std::string model;  // the detect "model" default, or "default"
};
std::string render_metrics(const std::vector<SourceFigures>& sources, const ProcessFigures& process);

// Resident set size of this process from /proc/self/statm (0 if unreadable).
uint64_t process_rss_bytes();

}  // namespace dfd::monitor

#include "monitor/source_figures.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace dfd::monitor {

using nlohmann::json;

const char* source_state_name(SourceState s) {
  switch (s) {
    case SourceState::Playing: return "playing";
    case SourceState::Reconnecting: return "reconnecting";
    case SourceState::Stopped: return "stopped";
  }
  return "?";
}

json figures_json(const SourceFigures& f) {
  json j = {{"id", f.id},
            {"uri", f.uri},
            {"restart", f.restart},
            {"state", source_state_name(f.state)},
            {"frames", f.frames},
            {"faces", f.faces},
            {"windows", f.windows},
            {"windows_skipped", f.windows_skipped},
            {"verdicts", f.verdicts},
            {"reconnects", f.reconnects},
            {"errors", f.errors},
            {"events_published", f.events_published},
            {"events_dropped", f.events_dropped},
            {"last_error", f.last_error.empty() ? json(nullptr) : json(f.last_error)},
            {"last_verdict", nullptr},
            {"queue_depth", f.latency.queue_depth},
            {"added_latency_s", nullptr}};
  if (f.state == SourceState::Reconnecting) j["next_retry_s"] = f.next_retry_s;
  if (f.latency.window > 0) {
    const LatencyStats& l = f.latency;
    j["added_latency_s"] = {{"last", l.last_s}, {"mean", l.mean_s}, {"p50", l.p50_s}, {"p99", l.p99_s},
                            {"window_frames", l.window}};
  }
  if (f.last_verdict.set) {
    const LastVerdict& v = f.last_verdict;
    j["last_verdict"] = {{"track_id", v.track_id},
                         {"label", v.label},
                         {"fake_probability", v.fake_probability},
                         {"track_label", v.track_label},
                         {"track_fake_probability", v.track_fake_probability},
                         {"unix_ms", v.unix_ms}};
  }
  return j;
}

namespace {

// A label value: backslash, double quote and newline escaped (the format's rule).
std::string label_value(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void family(std::ostringstream& o, const char* name, const char* type, const char* help) {
  o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

template <typename Get>
void per_source(std::ostringstream& o, const std::vector<SourceFigures>& sources, const char* name,
                const char* type, const char* help, Get get) {
  family(o, name, type, help);
  for (const auto& s : sources) o << name << "{source=\"" << label_value(s.id) << "\"} " << get(s) << '\n';
}

// A summary: quantiles over the sliding window (NaN before the first frame,
// the format's convention), _sum and _count over all frames.
void added_latency(std::ostringstream& o, const std::vector<SourceFigures>& sources) {
  const char* name = "dfd_monitor_added_latency_seconds";
  family(o, name, "summary",
         "Time a frame spends in deepfakedetect and deepfakemetapublish (quantiles: the last 1000 frames).");
  for (const auto& s : sources) {
    const std::string source = label_value(s.id);
    const LatencyStats& l = s.latency;
    for (const auto& [q, v] : {std::pair{"0.5", l.p50_s}, std::pair{"0.99", l.p99_s}}) {
      o << name << "{source=\"" << source << "\",quantile=\"" << q << "\"} ";
      if (l.window > 0) o << v << '\n';
      else o << "NaN\n";
    }
    o << name << "_sum{source=\"" << source << "\"} " << l.sum_s << '\n';
    o << name << "_count{source=\"" << source << "\"} " << l.count << '\n';
  }
}

}  // namespace

std::string render_metrics(const std::vector<SourceFigures>& sources, const ProcessFigures& process) {
  std::ostringstream o;
  per_source(o, sources, "dfd_monitor_frames_total", "counter", "Frames through the source's pipeline.",
             [](const SourceFigures& s) { return s.frames; });
  per_source(o, sources, "dfd_monitor_faces_total", "counter", "Face boxes on those frames.",
             [](const SourceFigures& s) { return s.faces; });
  per_source(o, sources, "dfd_monitor_windows_total", "counter", "Windows classified (verdict messages).",
             [](const SourceFigures& s) { return s.windows; });
  per_source(o, sources, "dfd_monitor_windows_skipped_total", "counter",
             "Windows skipped by deepfakedetect's full queue.",
             [](const SourceFigures& s) { return s.windows_skipped; });
  family(o, "dfd_monitor_verdicts_total", "counter", "Window verdicts by label.");
  for (const auto& s : sources)
    for (const char* label : {"FAKE", "REAL"}) {
      const auto it = s.verdicts.find(label);
      o << "dfd_monitor_verdicts_total{source=\"" << label_value(s.id) << "\",label=\"" << label << "\"} "
        << (it == s.verdicts.end() ? 0 : it->second) << '\n';
    }
  per_source(o, sources, "dfd_monitor_reconnects_total", "counter", "Restarts after an error or an end.",
             [](const SourceFigures& s) { return s.reconnects; });
  per_source(o, sources, "dfd_monitor_errors_total", "counter", "Errors (bus errors, stalls, failed starts).",
             [](const SourceFigures& s) { return s.errors; });
  per_source(o, sources, "dfd_monitor_events_published_total", "counter", "Events deepfakemetapublish delivered.",
             [](const SourceFigures& s) { return s.events_published; });
  per_source(o, sources, "dfd_monitor_events_dropped_total", "counter", "Events deepfakemetapublish dropped.",
             [](const SourceFigures& s) { return s.events_dropped; });
  per_source(o, sources, "dfd_monitor_queue_depth", "gauge",
             "Frames in deepfakedetect and deepfakemetapublish (entered, not yet at the sink).",
             [](const SourceFigures& s) { return s.latency.queue_depth; });
  added_latency(o, sources);
  family(o, "dfd_monitor_source_state", "gauge", "1 for the source's current state.");
  for (const auto& s : sources)
    for (SourceState st : {SourceState::Playing, SourceState::Reconnecting, SourceState::Stopped})
      o << "dfd_monitor_source_state{source=\"" << label_value(s.id) << "\",state=\"" << source_state_name(st)
        << "\"} " << (s.state == st ? 1 : 0) << '\n';
  family(o, "dfd_monitor_sources", "gauge", "Sources configured.");
  o << "dfd_monitor_sources " << sources.size() << '\n';
  family(o, "dfd_monitor_process_resident_memory_bytes", "gauge", "Resident set size of the monitor.");
  o << "dfd_monitor_process_resident_memory_bytes " << process.rss_bytes << '\n';
  family(o, "dfd_monitor_uptime_seconds", "gauge", "Seconds since the monitor started.");
  o << "dfd_monitor_uptime_seconds " << process.uptime_s << '\n';
  family(o, "dfd_monitor_model_info", "gauge", "The default model setting (label).");
  o << "dfd_monitor_model_info{model=\"" << label_value(process.model) << "\"} 1\n";
  return o.str();
}

uint64_t process_rss_bytes() {
  std::ifstream f("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (!(f >> size >> resident)) return 0;
  return resident * uint64_t(sysconf(_SC_PAGESIZE));
}

}  // namespace dfd::monitor

// One monitored source: its pipeline
//   uridecodebin uri=URI ! videoconvert ! deepfakedetect ... ! deepfakemetapublish ... ! fakesink
// (streams that are not video go to a fakesink of their own), its figures,
// and its restarts. Lives on the main loop's thread: the bus is watched
// there, restarts are timeouts there; only the frame/face counters
// (atomics) and the latency stamps (FrameLatency, locked) are written from
// the streaming threads.
//
// A source that errors, ends or stalls (no frame for stall_timeout_s while
// playing) is torn down and built again after a delay from its Backoff
// (doubling up to max_s, back to initial_s once frames flow again), forever,
// unless its restart policy says otherwise. Other sources are not touched.
#pragma once
#include <gst/gst.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "monitor/backoff.h"
#include "monitor/frame_latency.h"
#include "monitor/monitor_config.h"
#include "monitor/source_figures.h"

namespace dfd::monitor {

// A setting the element refuses (no such property, a value out of range or
// not in its enum) or an element that is missing: the source cannot be built.
struct BuildError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class SourceRunner {
 public:
  SourceRunner(SourceConfig config, ReconnectPolicy policy);
  ~SourceRunner();  // stops
  SourceRunner(const SourceRunner&) = delete;
  SourceRunner& operator=(const SourceRunner&) = delete;

  // Builds the pipeline and sets it playing. Throws BuildError when the
  // settings are refused; a source that fails later (unreachable, bad data)
  // goes to `reconnecting` with last_error set.
  void start();
  void stop();  // to NULL; state stopped; no more restarts
  // Called every half second from the main loop: stall detection, backoff
  // reset once frames flow, the elements' own counters.
  void tick();
  SourceFigures figures() const;
  const SourceConfig& config() const { return config_; }

 private:
  static gboolean on_bus(GstBus*, GstMessage* msg, gpointer self);
  static gboolean on_retry(gpointer self);
  static void on_pad_added(GstElement*, GstPad* pad, gpointer self);
  static GstPadProbeReturn on_buffer(GstPad*, GstPadProbeInfo* info, gpointer self);
  static GstPadProbeReturn on_detect_buffer(GstPad*, GstPadProbeInfo* info, gpointer self);

  void build();              // throws BuildError
  void teardown();           // pipeline to NULL and freed; element counters kept
  void failed(bool is_error, const std::string& why);  // schedule a restart (or stop)
  void read_element_counters();
  void on_window(GstMessage* msg);

  SourceConfig config_;
  ReconnectPolicy policy_;
  Backoff backoff_;
  SourceFigures fig_;        // state, errors, windows, verdicts, reconnects (main thread)
  GstElement* pipeline_ = nullptr;
  GstElement* detect_ = nullptr;
  GstElement* publish_ = nullptr;
  GstElement* convert_ = nullptr;
  guint bus_watch_ = 0;
  guint retry_source_ = 0;
  // Counters of the current pipeline's elements, and the sum over earlier ones.
  uint64_t skipped_base_ = 0, published_base_ = 0, dropped_base_ = 0;
  uint64_t skipped_now_ = 0, published_now_ = 0, dropped_now_ = 0;
  // Written by the streaming thread.
  std::atomic<uint64_t> frames_{0}, faces_{0};
  std::atomic<int64_t> last_frame_us_{0};  // g_get_monotonic_time of the last frame
  FrameLatency latency_;                    // stamps at detect's sink pad, looked up at the sink
  int64_t started_us_ = 0;                  // when the current pipeline was started
  uint64_t frames_at_start_ = 0;
};

}  // namespace dfd::monitor

#include "source_runner.h"

#include <gst/video/video.h>

#include <cstring>

#include "deepfakedetect-meta.h"

namespace dfd::monitor {

namespace {

// Sets one element property from its text form, checked against the
// property's own spec: type, range and enum values.
void set_checked(GstElement* element, const std::string& field, const std::string& name, const std::string& value) {
  GParamSpec* spec = g_object_class_find_property(G_OBJECT_GET_CLASS(element), name.c_str());
  if (!spec || !(spec->flags & G_PARAM_WRITABLE))
    throw BuildError(field + "." + name + ": " + GST_ELEMENT_NAME(element) + " has no writable property '" + name + "'");
  GValue v = G_VALUE_INIT;
  g_value_init(&v, spec->value_type);
  if (!gst_value_deserialize(&v, value.c_str())) {
    g_value_unset(&v);
    throw BuildError(field + "." + name + ": '" + value + "' is not a valid " + g_type_name(spec->value_type));
  }
  if (g_param_value_validate(spec, &v)) {  // TRUE: it had to be changed to fit
    g_value_unset(&v);
    throw BuildError(field + "." + name + ": " + value + " is out of range");
  }
  g_object_set_property(G_OBJECT(element), name.c_str(), &v);
  g_value_unset(&v);
}

GstElement* make(const char* factory, const char* name) {
  GstElement* e = gst_element_factory_make(factory, name);
  if (!e) throw BuildError(std::string("the GStreamer element '") + factory + "' is not installed");
  return e;
}

std::string error_text(GstMessage* msg) {
  GError* err = nullptr;
  gchar* debug = nullptr;
  gst_message_parse_error(msg, &err, &debug);
  std::string text = std::string(GST_OBJECT_NAME(GST_MESSAGE_SRC(msg))) + ": " + (err ? err->message : "error");
  // The debug string's last line is often the cause ("Failed to connect.",
  // "Not found"); the lines before it are source locations and object paths.
  const char* cause = debug ? std::strrchr(debug, '\n') : nullptr;
  if (cause && cause[1]) text += std::string(" (") + std::string(cause + 1).substr(0, 200) + ")";
  g_clear_error(&err);
  g_free(debug);
  return text;
}

int64_t unix_ms() { return g_get_real_time() / 1000; }

}  // namespace

SourceRunner::SourceRunner(SourceConfig config, ReconnectPolicy policy)
    : config_(std::move(config)), policy_(policy), backoff_(policy.initial_s, policy.max_s) {
  fig_.id = config_.id;
  fig_.uri = config_.uri;
  fig_.restart = restart_policy_name(config_.restart);
}

SourceRunner::~SourceRunner() { stop(); }

void SourceRunner::build() {
  pipeline_ = gst_pipeline_new(("source-" + config_.id).c_str());
  try {
    GstElement* src = make("uridecodebin", "src");
    gst_bin_add(GST_BIN(pipeline_), src);
    convert_ = make("videoconvert", "convert");
    gst_bin_add(GST_BIN(pipeline_), convert_);
    detect_ = make("deepfakedetect", "detect");
    gst_bin_add(GST_BIN(pipeline_), detect_);
    publish_ = make("deepfakemetapublish", "publish");
    gst_bin_add(GST_BIN(pipeline_), publish_);
    GstElement* sink = make("fakesink", "sink");
    gst_bin_add(GST_BIN(pipeline_), sink);
    g_object_set(src, "uri", config_.uri.c_str(), nullptr);
    // Decode as fast as the pipeline goes: files are analysed, not watched.
    g_object_set(sink, "sync", FALSE, "async", FALSE, nullptr);
    for (const auto& [k, v] : config_.detect) set_checked(detect_, "detect", k, v);
    g_object_set(detect_, "post-messages", TRUE, nullptr);
    if (!config_.publish.count("source")) g_object_set(publish_, "source", config_.uri.c_str(), nullptr);
    // A source is rebuilt after every error: its events file must not be
    // emptied each time. A JSON array cannot be continued, and the config
    // may still say "file-append": false.
    const auto format = config_.publish.find("file-format");
    if (format == config_.publish.end() || format->second != "json")
      g_object_set(publish_, "file-append", TRUE, nullptr);
    for (const auto& [k, v] : config_.publish) set_checked(publish_, "publish", k, v);
    if (!gst_element_link_many(convert_, detect_, publish_, sink, nullptr))
      throw BuildError("cannot link videoconvert ! deepfakedetect ! deepfakemetapublish ! fakesink");
    g_signal_connect(src, "pad-added", G_CALLBACK(on_pad_added), this);
    GstPad* pad = gst_element_get_static_pad(sink, "sink");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, this, nullptr);
    gst_object_unref(pad);
    pad = gst_element_get_static_pad(detect_, "sink");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_detect_buffer, this, nullptr);
    gst_object_unref(pad);
  } catch (...) {
    gst_object_unref(pipeline_);
    pipeline_ = detect_ = publish_ = convert_ = nullptr;
    throw;
  }
  GstBus* bus = gst_element_get_bus(pipeline_);
  bus_watch_ = gst_bus_add_watch(bus, on_bus, this);
  gst_object_unref(bus);
}

void SourceRunner::start() {
  if (retry_source_) g_source_remove(retry_source_);
  retry_source_ = 0;
  build();
  latency_.reset();  // the old pipeline is gone (NULL): its frames never arrive
  started_us_ = g_get_monotonic_time();
  frames_at_start_ = frames_.load();
  fig_.state = SourceState::Playing;
  if (gst_element_set_state(pipeline_, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    // The reason is an error message on the bus: take it from there.
    GstBus* bus = gst_element_get_bus(pipeline_);
    GstMessage* msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    const std::string why = msg ? error_text(msg) : "the pipeline refused to start";
    if (msg) gst_message_unref(msg);
    gst_object_unref(bus);
    failed(true, why);
  }
}

void SourceRunner::read_element_counters() {
  if (detect_) {
    guint64 skipped = 0;
    g_object_get(detect_, "windows-skipped", &skipped, nullptr);
    skipped_now_ = skipped;
  }
  if (publish_) {
    guint64 published = 0, dropped = 0;
    g_object_get(publish_, "published", &published, "dropped", &dropped, nullptr);
    published_now_ = published;
    dropped_now_ = dropped;
  }
}

void SourceRunner::teardown() {
  if (!pipeline_) return;
  gst_element_set_state(pipeline_, GST_STATE_NULL);  // the publisher flushes (flush-timeout) here
  read_element_counters();
  skipped_base_ += skipped_now_;
  published_base_ += published_now_;
  dropped_base_ += dropped_now_;
  skipped_now_ = published_now_ = dropped_now_ = 0;
  if (bus_watch_) g_source_remove(bus_watch_);
  bus_watch_ = 0;
  gst_object_unref(pipeline_);
  pipeline_ = detect_ = publish_ = convert_ = nullptr;
}

void SourceRunner::stop() {
  if (retry_source_) g_source_remove(retry_source_);
  retry_source_ = 0;
  teardown();
  fig_.state = SourceState::Stopped;
}

void SourceRunner::failed(bool is_error, const std::string& why) {
  if (is_error) {
    ++fig_.errors;
    fig_.last_error = why;
    g_printerr("deepfake-monitor: %s: %s\n", config_.id.c_str(), why.c_str());
  }
  teardown();
  const bool restart = config_.restart == RestartPolicy::Always ||
                       (config_.restart == RestartPolicy::OnError && is_error);
  if (!restart) {
    fig_.state = SourceState::Stopped;
    return;
  }
  fig_.state = SourceState::Reconnecting;
  fig_.next_retry_s = backoff_.next_delay();
  retry_source_ = g_timeout_add(guint(fig_.next_retry_s * 1000), on_retry, this);
}

gboolean SourceRunner::on_retry(gpointer p) {
  auto* self = static_cast<SourceRunner*>(p);
  self->retry_source_ = 0;
  ++self->fig_.reconnects;
  try {
    self->start();
  } catch (const std::exception& e) {
    self->failed(true, e.what());
  }
  return G_SOURCE_REMOVE;
}

void SourceRunner::tick() {
  if (!pipeline_ || fig_.state != SourceState::Playing) return;
  read_element_counters();
  const int64_t now = g_get_monotonic_time();
  if (frames_.load() != frames_at_start_) backoff_.reset();  // it works again
  if (policy_.stall_timeout_s <= 0) return;
  const int64_t last = std::max<int64_t>(last_frame_us_.load(), started_us_);
  if (now - last > int64_t(policy_.stall_timeout_s * 1e6))
    failed(true, "no frame for " + std::to_string(int(policy_.stall_timeout_s)) + " s");
}

void SourceRunner::on_window(GstMessage* msg) {
  DfdWindowVerdict w;
  if (!dfd_message_parse_window(msg, &w)) return;
  ++fig_.windows;
  if (w.label) ++fig_.verdicts[w.label];
  LastVerdict& v = fig_.last_verdict;
  v.set = true;
  v.track_id = w.track_id;
  v.label = w.label ? w.label : "";
  v.fake_probability = w.fake_probability;
  v.track_label = w.track_label ? w.track_label : "";
  v.track_fake_probability = w.track_fake_probability;
  v.unix_ms = unix_ms();
}

gboolean SourceRunner::on_bus(GstBus*, GstMessage* msg, gpointer p) {
  auto* self = static_cast<SourceRunner*>(p);
  switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_ERROR:
      self->failed(true, error_text(msg));
      return G_SOURCE_REMOVE;  // teardown removed the watch's pipeline
    case GST_MESSAGE_EOS:
      self->failed(false, "");
      return G_SOURCE_REMOVE;
    case GST_MESSAGE_ELEMENT:
      if (dfd_message_has_name(msg, "deepfakedetect")) self->on_window(msg);
      break;
    default:
      break;
  }
  return G_SOURCE_CONTINUE;
}

void SourceRunner::on_pad_added(GstElement*, GstPad* pad, gpointer p) {
  auto* self = static_cast<SourceRunner*>(p);
  GstCaps* caps = gst_pad_get_current_caps(pad);
  if (!caps) caps = gst_pad_query_caps(pad, nullptr);
  const bool video = caps && gst_caps_get_size(caps) > 0 &&
                     g_str_has_prefix(gst_structure_get_name(gst_caps_get_structure(caps, 0)), "video/");
  if (caps) gst_caps_unref(caps);
  GstPad* sinkpad = gst_element_get_static_pad(self->convert_, "sink");
  if (video && !gst_pad_is_linked(sinkpad)) {
    gst_pad_link(pad, sinkpad);
  } else {
    // Audio, subtitles, a second video stream: swallowed, so that an
    // unlinked pad does not stop the pipeline (not-linked).
    GstElement* sink = gst_element_factory_make("fakesink", nullptr);
    g_object_set(sink, "sync", FALSE, "async", FALSE, nullptr);
    gst_bin_add(GST_BIN(self->pipeline_), sink);
    gst_element_sync_state_with_parent(sink);
    GstPad* other = gst_element_get_static_pad(sink, "sink");
    gst_pad_link(pad, other);
    gst_object_unref(other);
  }
  gst_object_unref(sinkpad);
}

GstPadProbeReturn SourceRunner::on_buffer(GstPad*, GstPadProbeInfo* info, gpointer p) {
  auto* self = static_cast<SourceRunner*>(p);
  GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
  DfdFaceVerdict verdicts[64];
  const guint faces = dfd_buffer_get_verdicts(buf, verdicts, 64);
  self->faces_ += faces;
  self->frames_ += 1;
  const int64_t now = g_get_monotonic_time();
  self->last_frame_us_ = now;
  if (GST_BUFFER_PTS_IS_VALID(buf)) self->latency_.left(GST_BUFFER_PTS(buf), now);
  return GST_PAD_PROBE_OK;
}

// A frame enters deepfakedetect: stamped by PTS (a frame without one is not
// measured; it cannot be told apart at the sink).
GstPadProbeReturn SourceRunner::on_detect_buffer(GstPad*, GstPadProbeInfo* info, gpointer p) {
  auto* self = static_cast<SourceRunner*>(p);
  GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
  if (GST_BUFFER_PTS_IS_VALID(buf)) self->latency_.entered(GST_BUFFER_PTS(buf), g_get_monotonic_time());
  return GST_PAD_PROBE_OK;
}

SourceFigures SourceRunner::figures() const {
  SourceFigures f = fig_;
  f.frames = frames_.load();
  f.faces = faces_.load();
  f.windows_skipped = skipped_base_ + skipped_now_;
  f.events_published = published_base_ + published_now_;
  f.events_dropped = dropped_base_ + dropped_now_;
  f.latency = latency_.stats();
  return f;
}

}  // namespace dfd::monitor

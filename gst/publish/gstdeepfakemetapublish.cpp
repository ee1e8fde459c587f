/**
 * SECTION:element-deepfakemetapublish
 * @title: deepfakemetapublish
 * @short_description: sends deepfakedetect's results as JSON to a file, MQTT or Kafka
 *
 * deepfakemetapublish goes after deepfakedetect. Video passes through
 * untouched (in place); each frame with faces becomes a JSON event in the
 * shape gvametaconvert users know (resolution, source, timestamp in ns,
 * objects with a normalised bounding box, pixel x/y/w/h, the track id and a
 * "deepfake" attribute: label, confidence = P(FAKE), model, trained,
 * frames_ago), each newly classified window a "window" event, and the end of
 * the stream a "summary" event. docs/event-schema.json is the JSON Schema.
 *
 * Events go to #GstDeepfakeMetaPublish:method: a file or stdout (JSON lines,
 * or one JSON array closed at EOS), an MQTT broker (libmosquitto, QoS 1) or
 * Kafka (librdkafka). The streaming thread never waits for the network: events
 * wait in a bounded buffer (#GstDeepfakeMetaPublish:max-buffered) while a
 * broker is away, reconnects back off up to
 * #GstDeepfakeMetaPublish:max-reconnect-interval, and what does not fit is
 * dropped and counted (#GstDeepfakeMetaPublish:dropped).
 *
 * Window verdicts and the summary are read from the ROI metas (a window is
 * new when a track's window-start/window-end move; the summary is the last
 * verdict of every track seen). When deepfakedetect's own "deepfakedetect" and
 * "deepfakedetect-summary" structures arrive as custom downstream events,
 * those are sent instead ("origin": "element").
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=30 ! video/x-raw,width=320,height=240 ! deepfakedetect face-detector=none ! deepfakemetapublish file-path=events.jsonl ! fakesink
 * ]| One JSON line per frame and per window, and the summary, in events.jsonl.
 * |[
 * gst-launch-1.0 filesrc location=clip.mp4 ! decodebin ! videoconvert ! deepfakedetect ! deepfakemetapublish method=mqtt address=localhost:1883 topic=cameras/door ! fakesink
 * ]| Events to an MQTT broker, topic cameras/door.
 *
 * Since: 0.2
 */
#include "gstdeepfakemetapublish.h"

#include <gst/video/video.h>

#include <exception>
#include <memory>
#include <string>

#include "events/meta_follower.h"
#include "events/publisher.h"
#include "meta_events.h"

GST_DEBUG_CATEGORY_STATIC(gst_deepfake_meta_publish_debug);
#define GST_CAT_DEFAULT gst_deepfake_meta_publish_debug

#define SINCE " (Since: 0.2)"

namespace ev = dfd::events;

namespace {

// What the user set; copied under the object lock when the element starts.
struct Props {
  ev::PublisherConfig publisher;
  std::string source;
  gboolean add_empty_results = FALSE;
  guint flush_timeout_ms = 5000;
};

// Per run (start to stop): only the streaming thread touches it, except
// `publisher`, which stop() and the counters' getters take under the lock.
struct State {
  std::unique_ptr<ev::Publisher> publisher;
  ev::MetaFollower follower;
  GstVideoInfo info;
  uint64_t seq = 0;
  bool windows_from_element = false, summary_sent = false;
  ev::PublisherStats last_stats;  // kept after stop() for the counters
};

}  // namespace

struct _GstDeepfakeMetaPublish {
  GstBaseTransform parent;
  Props* props;
  Props* run;  // the copy taken at start()
  State* state;
};

enum {
  PROP_0,
  PROP_METHOD,
  PROP_FILE_PATH,
  PROP_FILE_FORMAT,
  PROP_FILE_APPEND,
  PROP_ADDRESS,
  PROP_TOPIC,
  PROP_MQTT_CLIENT_ID,
  PROP_USERNAME,
  PROP_PASSWORD,
  PROP_CA_FILE,
  PROP_CERT_FILE,
  PROP_KEY_FILE,
  PROP_MAX_RECONNECT_INTERVAL,
  PROP_MAX_BUFFERED,
  PROP_FLUSH_TIMEOUT,
  PROP_SOURCE,
  PROP_ADD_EMPTY_RESULTS,
  PROP_PUBLISHED,
  PROP_DROPPED,
};

#define GST_TYPE_DFD_PUBLISH_METHOD (dfd_publish_method_get_type())
static GType dfd_publish_method_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {(gint)ev::Method::File, "A file or stdout", "file"},
      {(gint)ev::Method::Mqtt, "An MQTT broker (libmosquitto)", "mqtt"},
      {(gint)ev::Method::Kafka, "Kafka brokers (librdkafka)", "kafka"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("DfdPublishMethod", values));
  return type;
}

#define GST_TYPE_DFD_PUBLISH_FILE_FORMAT (dfd_publish_file_format_get_type())
static GType dfd_publish_file_format_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {(gint)ev::FileFormat::Json, "One JSON array, closed at EOS", "json"},
      {(gint)ev::FileFormat::JsonLines, "One JSON event per line", "json-lines"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("DfdPublishFileFormat", values));
  return type;
}

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-raw(ANY)"));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-raw(ANY)"));

G_DEFINE_TYPE(GstDeepfakeMetaPublish, gst_deepfake_meta_publish, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE(deepfakemetapublish, "deepfakemetapublish", GST_RANK_NONE, GST_TYPE_DEEPFAKE_META_PUBLISH);

static void publish(GstDeepfakeMetaPublish* self, ev::Json event) {
  self->state->publisher->publish(event.dump());
}

static void publish_window(GstDeepfakeMetaPublish* self, const ev::WindowVerdict& w) {
  publish(self, ev::window_event(self->state->seq++, self->run->source, w));
}

static void publish_summary(GstDeepfakeMetaPublish* self, const ev::StreamSummary& s) {
  publish(self, ev::summary_event(self->state->seq++, self->run->source, s));
  self->state->summary_sent = true;
}

static gboolean dfd_publish_start(GstBaseTransform* trans) {
  auto* self = GST_DEEPFAKE_META_PUBLISH(trans);
  GST_OBJECT_LOCK(self);
  *self->run = *self->props;
  GST_OBJECT_UNLOCK(self);
  ev::PublisherConfig config = self->run->publisher;
  // Called from the backends' threads: posting a message is thread-safe.
  config.on_warning = [self](const std::string& s) {
    GST_ELEMENT_WARNING(self, RESOURCE, WRITE, ("%s", s.c_str()), (nullptr));
  };
  config.on_info = [self](const std::string& s) { GST_INFO_OBJECT(self, "%s", s.c_str()); };
  try {
    auto publisher = ev::make_publisher(config);
    auto state = std::make_unique<State>();
    gst_video_info_init(&state->info);
    state->publisher = std::move(publisher);
    GST_OBJECT_LOCK(self);
    delete self->state;
    self->state = state.release();
    GST_OBJECT_UNLOCK(self);
  } catch (const std::exception& e) {
    const bool file = config.method == ev::Method::File;
    if (file)
      GST_ELEMENT_ERROR(self, RESOURCE, OPEN_WRITE, ("Could not open the events file: %s", e.what()), (nullptr));
    else
      GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Could not set up the event publisher: %s", e.what()), (nullptr));
    return FALSE;
  }
  return TRUE;
}

static gboolean dfd_publish_stop(GstBaseTransform* trans) {
  auto* self = GST_DEEPFAKE_META_PUBLISH(trans);
  GST_OBJECT_LOCK(self);
  State* state = self->state;
  GST_OBJECT_UNLOCK(self);
  if (!state || !state->publisher) return TRUE;
  // Outside the lock: the counters stay readable while this waits.
  state->publisher->finish(std::chrono::milliseconds(self->run->flush_timeout_ms));
  GST_OBJECT_LOCK(self);
  state->last_stats = state->publisher->stats();
  state->publisher.reset();
  GST_OBJECT_UNLOCK(self);
  GST_INFO_OBJECT(self, "published %" G_GUINT64_FORMAT ", dropped %" G_GUINT64_FORMAT,
                  state->last_stats.published, state->last_stats.dropped);
  return TRUE;
}

static gboolean dfd_publish_set_caps(GstBaseTransform* trans, GstCaps* incaps, GstCaps*) {
  auto* self = GST_DEEPFAKE_META_PUBLISH(trans);
  GstVideoInfo info;
  if (!gst_video_info_from_caps(&info, incaps)) {
    GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("Not raw video caps: %" GST_PTR_FORMAT, incaps), (nullptr));
    return FALSE;
  }
  self->state->info = info;
  return TRUE;
}

static GstFlowReturn dfd_publish_transform_ip(GstBaseTransform* trans, GstBuffer* buf) {
  auto* self = GST_DEEPFAKE_META_PUBLISH(trans);
  State& st = *self->state;
  try {
    ev::FrameInfo frame;
    frame.width = GST_VIDEO_INFO_WIDTH(&st.info);
    frame.height = GST_VIDEO_INFO_HEIGHT(&st.info);
    frame.source = self->run->source;
    frame.pts_ns = dfd::gst_events::time_of(GST_BUFFER_PTS(buf));
    const auto faces = dfd::gst_events::faces_of(buf);
    const auto windows = st.follower.on_frame(frame, faces);
    if (!st.windows_from_element)
      for (const auto& w : windows) publish_window(self, w);
    if (!faces.empty() || self->run->add_empty_results) publish(self, ev::frame_event(st.seq++, frame, faces));
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, LIBRARY, FAILED, ("Could not publish an event: %s", e.what()), (nullptr));
    return GST_FLOW_ERROR;
  }
  return GST_FLOW_OK;
}

// deepfakedetect's own window verdicts and summary, when they come as
// custom downstream events (same structures as its bus messages).
static void on_custom_event(GstDeepfakeMetaPublish* self, const GstStructure* s) {
  if (auto w = dfd::gst_events::window_of(s)) {
    self->state->windows_from_element = true;
    publish_window(self, *w);
  } else if (auto sum = dfd::gst_events::summary_of(s)) {
    publish_summary(self, *sum);
  }
}

static gboolean dfd_publish_sink_event(GstBaseTransform* trans, GstEvent* event) {
  auto* self = GST_DEEPFAKE_META_PUBLISH(trans);
  try {
    switch (GST_EVENT_TYPE(event)) {
      case GST_EVENT_CUSTOM_DOWNSTREAM:
        if (const GstStructure* s = gst_event_get_structure(event)) on_custom_event(self, s);
        break;
      case GST_EVENT_EOS: {
        State& st = *self->state;
        if (!st.summary_sent) publish_summary(self, st.follower.summary());
        // A file is complete (a JSON array closed) when EOS goes on; brokers
        // deliver in the background.
        st.publisher->end_of_stream(std::chrono::milliseconds(self->run->flush_timeout_ms));
        st.follower = ev::MetaFollower();  // a later stream (after a flush) starts afresh
        st.summary_sent = false;
        break;
      }
      default:
        break;
    }
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, LIBRARY, FAILED, ("Could not publish an event: %s", e.what()), (nullptr));
  }
  return GST_BASE_TRANSFORM_CLASS(gst_deepfake_meta_publish_parent_class)->sink_event(trans, event);
}

static void set_string(std::string& field, const GValue* value) {
  const gchar* s = g_value_get_string(value);
  field = s ? s : "";
}

static void dfd_publish_set_property(GObject* object, guint prop_id, const GValue* value, GParamSpec* pspec) {
  auto* self = GST_DEEPFAKE_META_PUBLISH(object);
  GST_OBJECT_LOCK(self);
  Props& p = *self->props;
  ev::PublisherConfig& c = p.publisher;
  switch (prop_id) {
    case PROP_METHOD: c.method = (ev::Method)g_value_get_enum(value); break;
    case PROP_FILE_PATH: set_string(c.file_path, value); break;
    case PROP_FILE_FORMAT: c.file_format = (ev::FileFormat)g_value_get_enum(value); break;
    case PROP_FILE_APPEND: c.file_append = g_value_get_boolean(value); break;
    case PROP_ADDRESS: set_string(c.address, value); break;
    case PROP_TOPIC: set_string(c.topic, value); break;
    case PROP_MQTT_CLIENT_ID: set_string(c.client_id, value); break;
    case PROP_USERNAME: set_string(c.username, value); break;
    case PROP_PASSWORD: set_string(c.password, value); break;
    case PROP_CA_FILE: set_string(c.ca_file, value); break;
    case PROP_CERT_FILE: set_string(c.cert_file, value); break;
    case PROP_KEY_FILE: set_string(c.key_file, value); break;
    case PROP_MAX_RECONNECT_INTERVAL: c.max_reconnect_interval_s = (int)g_value_get_uint(value); break;
    case PROP_MAX_BUFFERED: c.max_buffered = g_value_get_uint(value); break;
    case PROP_FLUSH_TIMEOUT: p.flush_timeout_ms = g_value_get_uint(value); break;
    case PROP_SOURCE: set_string(p.source, value); break;
    case PROP_ADD_EMPTY_RESULTS: p.add_empty_results = g_value_get_boolean(value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

static ev::PublisherStats current_stats(GstDeepfakeMetaPublish* self) {
  State* st = self->state;
  if (!st) return {};
  return st->publisher ? st->publisher->stats() : st->last_stats;
}

static void dfd_publish_get_property(GObject* object, guint prop_id, GValue* value, GParamSpec* pspec) {
  auto* self = GST_DEEPFAKE_META_PUBLISH(object);
  GST_OBJECT_LOCK(self);
  const Props& p = *self->props;
  const ev::PublisherConfig& c = p.publisher;
  switch (prop_id) {
    case PROP_METHOD: g_value_set_enum(value, (gint)c.method); break;
    case PROP_FILE_PATH: g_value_set_string(value, c.file_path.c_str()); break;
    case PROP_FILE_FORMAT: g_value_set_enum(value, (gint)c.file_format); break;
    case PROP_FILE_APPEND: g_value_set_boolean(value, c.file_append); break;
    case PROP_ADDRESS: g_value_set_string(value, c.address.c_str()); break;
    case PROP_TOPIC: g_value_set_string(value, c.topic.c_str()); break;
    case PROP_MQTT_CLIENT_ID: g_value_set_string(value, c.client_id.c_str()); break;
    case PROP_USERNAME: g_value_set_string(value, c.username.c_str()); break;
    case PROP_PASSWORD: g_value_set_string(value, c.password.empty() ? "" : "***"); break;
    case PROP_CA_FILE: g_value_set_string(value, c.ca_file.c_str()); break;
    case PROP_CERT_FILE: g_value_set_string(value, c.cert_file.c_str()); break;
    case PROP_KEY_FILE: g_value_set_string(value, c.key_file.c_str()); break;
    case PROP_MAX_RECONNECT_INTERVAL: g_value_set_uint(value, (guint)c.max_reconnect_interval_s); break;
    case PROP_MAX_BUFFERED: g_value_set_uint(value, (guint)c.max_buffered); break;
    case PROP_FLUSH_TIMEOUT: g_value_set_uint(value, p.flush_timeout_ms); break;
    case PROP_SOURCE: g_value_set_string(value, p.source.c_str()); break;
    case PROP_ADD_EMPTY_RESULTS: g_value_set_boolean(value, p.add_empty_results); break;
    case PROP_PUBLISHED: g_value_set_uint64(value, current_stats(self).published); break;
    case PROP_DROPPED: g_value_set_uint64(value, current_stats(self).dropped); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void dfd_publish_finalize(GObject* object) {
  auto* self = GST_DEEPFAKE_META_PUBLISH(object);
  delete self->state;  // a publisher left running (no stop()) finishes at once
  delete self->run;
  delete self->props;
  G_OBJECT_CLASS(gst_deepfake_meta_publish_parent_class)->finalize(object);
}

static void gst_deepfake_meta_publish_init(GstDeepfakeMetaPublish* self) {
  self->props = new Props();
  self->run = new Props();
  self->state = nullptr;
  // Reads metas only: passthrough, so buffers are never made writable (copied);
  // transform_ip still sees each one (transform_ip_on_passthrough).
  gst_base_transform_set_in_place(GST_BASE_TRANSFORM(self), TRUE);
  gst_base_transform_set_passthrough(GST_BASE_TRANSFORM(self), TRUE);
}

static const GParamFlags kRW = (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
static const GParamFlags kRO = (GParamFlags)(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

static void install_string(GObjectClass* oc, guint id, const char* name, const char* blurb, const char* def) {
  g_object_class_install_property(oc, id, g_param_spec_string(name, name, blurb, def, kRW));
}

static void install_properties(GObjectClass* oc) {
  /**
   * GstDeepfakeMetaPublish:method:
   * Where the events go: file, mqtt or kafka.
   * Since: 0.2
   */
  g_object_class_install_property(oc, PROP_METHOD,
      g_param_spec_enum("method", "Method", "Where the events go" SINCE, GST_TYPE_DFD_PUBLISH_METHOD,
                        (gint)ev::Method::File, kRW));
  /**
   * GstDeepfakeMetaPublish:file-path:
   * method=file: the file, "-" for stdout (truncated at start).
   * Since: 0.2
   */
  install_string(oc, PROP_FILE_PATH, "file-path", "method=file: the events file, - for stdout" SINCE, "-");
  /**
   * GstDeepfakeMetaPublish:file-format:
   * method=file: json-lines (one event a line) or json (an array, closed at EOS).
   * Since: 0.2
   */
  g_object_class_install_property(oc, PROP_FILE_FORMAT,
      g_param_spec_enum("file-format", "File format", "method=file: json-lines or json (an array closed at EOS)" SINCE,
                        GST_TYPE_DFD_PUBLISH_FILE_FORMAT, (gint)ev::FileFormat::JsonLines, kRW));
  /**
   * GstDeepfakeMetaPublish:file-append:
   * method=file: append to the file instead of emptying it at start
   * (file-format=json-lines only), so that a restarted pipeline keeps the
   * events written before.
   * Since: 0.3
   */
  g_object_class_install_property(oc, PROP_FILE_APPEND,
      g_param_spec_boolean("file-append", "File append",
                           "method=file: append instead of emptying the file at start (json-lines only) (Since: 0.3)",
                           FALSE, kRW));
  /**
   * GstDeepfakeMetaPublish:address:
   * HOST:PORT of the MQTT broker (default localhost:1883, 8883 with TLS) or
   * the Kafka bootstrap servers (default localhost:9092).
   * Since: 0.2
   */
  install_string(oc, PROP_ADDRESS, "address", "MQTT broker HOST:PORT or Kafka bootstrap servers; empty: localhost" SINCE, "");
  /**
   * GstDeepfakeMetaPublish:topic:
   * MQTT or Kafka topic.
   * Since: 0.2
   */
  install_string(oc, PROP_TOPIC, "topic", "MQTT or Kafka topic" SINCE, "deepfakedetect");
  /**
   * GstDeepfakeMetaPublish:mqtt-client-id:
   * MQTT client id (Kafka: client.id); empty: a unique one.
   * Since: 0.2
   */
  install_string(oc, PROP_MQTT_CLIENT_ID, "mqtt-client-id", "MQTT client id (Kafka client.id); empty: unique" SINCE, "");
  /**
   * GstDeepfakeMetaPublish:username:
   * MQTT username, Kafka SASL PLAIN username.
   * Since: 0.2
   */
  install_string(oc, PROP_USERNAME, "username", "MQTT username or Kafka SASL PLAIN username" SINCE, "");
  /**
   * GstDeepfakeMetaPublish:password:
   * Password for username (read back as ***).
   * Since: 0.2
   */
  install_string(oc, PROP_PASSWORD, "password", "Password for username (reads back as ***)" SINCE, "");
  /**
   * GstDeepfakeMetaPublish:ca-file:
   * CA certificate (PEM); set: TLS.
   * Since: 0.2
   */
  install_string(oc, PROP_CA_FILE, "ca-file", "CA certificate, PEM; set: TLS" SINCE, "");
  /**
   * GstDeepfakeMetaPublish:cert-file:
   * Client certificate (PEM) for TLS.
   * Since: 0.2
   */
  install_string(oc, PROP_CERT_FILE, "cert-file", "Client certificate for TLS, PEM" SINCE, "");
  /**
   * GstDeepfakeMetaPublish:key-file:
   * Client key (PEM) for TLS.
   * Since: 0.2
   */
  install_string(oc, PROP_KEY_FILE, "key-file", "Client key for TLS, PEM" SINCE, "");
  /**
   * GstDeepfakeMetaPublish:max-reconnect-interval:
   * Longest wait between reconnection attempts, seconds (back-off from 1 s).
   * Since: 0.2
   */
  g_object_class_install_property(oc, PROP_MAX_RECONNECT_INTERVAL,
      g_param_spec_uint("max-reconnect-interval", "Max reconnect interval",
                        "Longest wait between reconnection attempts, s (exponential from 1 s)" SINCE, 1, 3600, 30, kRW));
  /**
   * GstDeepfakeMetaPublish:max-buffered:
   * Events kept while they cannot be delivered; beyond, dropped and counted.
   * Since: 0.2
   */
  g_object_class_install_property(oc, PROP_MAX_BUFFERED,
      g_param_spec_uint("max-buffered", "Max buffered",
                        "Events kept while undeliverable; more are dropped and counted (file, mqtt: the oldest; "
                        "kafka: the newest)" SINCE, 0, 10000000, 1000, kRW));
  /**
   * GstDeepfakeMetaPublish:flush-timeout:
   * At stop (and for a file at EOS), how long to wait for delivery, ms.
   * Since: 0.2
   */
  g_object_class_install_property(oc, PROP_FLUSH_TIMEOUT,
      g_param_spec_uint("flush-timeout", "Flush timeout",
                        "At stop (file: at EOS) wait this long for delivery, ms; the rest is dropped" SINCE, 0, 600000,
                        5000, kRW));
  /**
   * GstDeepfakeMetaPublish:source:
   * The "source" field of every event (e.g. the camera's URI); empty: null.
   * Since: 0.2
   */
  install_string(oc, PROP_SOURCE, "source", "The events' source field, e.g. a URI; empty: null" SINCE, "");
  /**
   * GstDeepfakeMetaPublish:add-empty-results:
   * Also send frame events for frames without faces.
   * Since: 0.2
   */
  g_object_class_install_property(oc, PROP_ADD_EMPTY_RESULTS,
      g_param_spec_boolean("add-empty-results", "Add empty results", "Also send frames without faces" SINCE, FALSE, kRW));
  /**
   * GstDeepfakeMetaPublish:published:
   * Events delivered: written, or acknowledged by the broker.
   * Since: 0.2
   */
  g_object_class_install_property(oc, PROP_PUBLISHED,
      g_param_spec_uint64("published", "Published", "Events delivered (written or acknowledged)" SINCE, 0,
                          G_MAXUINT64, 0, kRO));
  /**
   * GstDeepfakeMetaPublish:dropped:
   * Events lost: buffer full, or undelivered when the element stopped.
   * Since: 0.2
   */
  g_object_class_install_property(oc, PROP_DROPPED,
      g_param_spec_uint64("dropped", "Dropped", "Events lost: buffer full or undelivered at stop" SINCE, 0,
                          G_MAXUINT64, 0, kRO));
}

static void gst_deepfake_meta_publish_class_init(GstDeepfakeMetaPublishClass* klass) {
  GObjectClass* oc = G_OBJECT_CLASS(klass);
  GstElementClass* ec = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass* bc = GST_BASE_TRANSFORM_CLASS(klass);
  GST_DEBUG_CATEGORY_INIT(gst_deepfake_meta_publish_debug, "deepfakemetapublish", 0, "deepfake event publisher");
  oc->set_property = dfd_publish_set_property;
  oc->get_property = dfd_publish_get_property;
  oc->finalize = dfd_publish_finalize;
  install_properties(oc);
  gst_type_mark_as_plugin_api(GST_TYPE_DFD_PUBLISH_METHOD, (GstPluginAPIFlags)0);
  gst_type_mark_as_plugin_api(GST_TYPE_DFD_PUBLISH_FILE_FORMAT, (GstPluginAPIFlags)0);
  gst_element_class_set_static_metadata(ec, "Deepfake event publisher", "Filter/Video/Analytics",
      "Sends deepfakedetect's verdicts as JSON events to a file, MQTT or Kafka", "deepfakedetect");
  gst_element_class_add_static_pad_template(ec, &sink_template);
  gst_element_class_add_static_pad_template(ec, &src_template);
  bc->start = dfd_publish_start;
  bc->stop = dfd_publish_stop;
  bc->set_caps = dfd_publish_set_caps;
  bc->transform_ip = dfd_publish_transform_ip;
  bc->sink_event = dfd_publish_sink_event;
  bc->passthrough_on_same_caps = TRUE;
  bc->transform_ip_on_passthrough = TRUE;
}

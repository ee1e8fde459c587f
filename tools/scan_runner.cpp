#include "scan_runner.h"

#include <gst/app/gstappsink.h>
#include <gst/base/gsttypefindhelper.h>
#include <gst/gst.h>
#include <gst/pbutils/missing-plugins.h>
#include <gst/video/video.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <set>

#include "deepfakedetect-meta.h"
#include "dfd_config.h"
#include "faces/crop.h"
#include "report/heatmap.h"

namespace dfd {

namespace {

template <typename T>
struct GstUnref {
  void operator()(T* p) const {
    if (p) gst_object_unref(p);
  }
};
// A pipeline is brought to NULL before its last reference goes.
struct PipelineUnref {
  void operator()(GstElement* p) const {
    if (!p) return;
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
  }
};
using PipelinePtr = std::unique_ptr<GstElement, PipelineUnref>;
using BusPtr = std::unique_ptr<GstBus, GstUnref<GstBus>>;

struct MessageUnref {
  void operator()(GstMessage* m) const {
    if (m) gst_message_unref(m);
  }
};
using MessagePtr = std::unique_ptr<GstMessage, MessageUnref>;

struct CapsUnref {
  void operator()(GstCaps* c) const {
    if (c) gst_caps_unref(c);
  }
};
using CapsPtr = std::unique_ptr<GstCaps, CapsUnref>;

std::string to_uri(const std::string& input) {
  if (gst_uri_is_valid(input.c_str())) return input;
  GError* err = nullptr;
  gchar* uri = gst_filename_to_uri(input.c_str(), &err);
  if (!uri) {
    std::string m = err ? err->message : "invalid file name";
    g_clear_error(&err);
    throw ScanError(ScanErrorKind::Input, input + ": " + m);
  }
  std::string out = uri;
  g_free(uri);
  return out;
}

std::string local_path(const std::string& input) {
  if (!gst_uri_is_valid(input.c_str())) return input;
  gchar* f = g_filename_from_uri(input.c_str(), nullptr, nullptr);
  std::string out = f ? f : "";
  g_free(f);
  return out;
}

std::string string_property(GstElement* element, const char* name) {
  gchar* v = nullptr;
  g_object_get(element, name, &v, nullptr);
  std::string out = v ? v : "";
  g_free(v);
  return out;
}

void check_input(const std::string& input) {
  const std::string path = local_path(input);
  if (path.empty()) throw ScanError(ScanErrorKind::Input, input + ": only local files can be scanned");
  GStatBuf st;
  if (!g_file_test(path.c_str(), G_FILE_TEST_IS_REGULAR) || access(path.c_str(), R_OK) != 0 ||
      g_stat(path.c_str(), &st) != 0)
    throw ScanError(ScanErrorKind::Input, path + ": no such readable file");
  if (st.st_size == 0) throw ScanError(ScanErrorKind::Input, path + " is empty");
}

void set_enum(GstElement* e, const char* prop, const std::string& nick) {
  if (nick.empty()) return;
  GParamSpec* ps = g_object_class_find_property(G_OBJECT_GET_CLASS(e), prop);
  if (!ps) throw ScanError(ScanErrorKind::Internal, std::string("deepfakedetect has no property ") + prop);
  if (G_IS_PARAM_SPEC_ENUM(ps)) {
    GEnumClass* klass = G_PARAM_SPEC_ENUM(ps)->enum_class;
    if (!g_enum_get_value_by_nick(klass, nick.c_str()))
      throw ScanError(ScanErrorKind::Input, std::string("invalid ") + prop + " '" + nick + "'");
  }
  gst_util_set_object_arg(G_OBJECT(e), prop, nick.c_str());
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Errors the runner itself posts on the bus (MediaGuard): code = ScanErrorKind.
GQuark scan_error_quark() { return g_quark_from_static_string("dfd-scan-error-quark"); }

// Whether an element of the "Parser" class posted the message.
bool posted_by_parser(GstMessage* msg) {
  if (!GST_IS_ELEMENT(GST_MESSAGE_SRC(msg))) return false;
  GstElementFactory* f = gst_element_get_factory(GST_ELEMENT(GST_MESSAGE_SRC(msg)));
  const gchar* klass = f ? gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_KLASS) : nullptr;
  return klass && std::strstr(klass, "Parser");
}

// The error a bus error message stands for.
ScanError error_from_message(GstMessage* msg, GstElement* detector, const std::string& missing) {
  GError* err = nullptr;
  gchar* dbg = nullptr;
  gst_message_parse_error(msg, &err, &dbg);
  std::string text = err ? err->message : "unknown error";
  ScanErrorKind kind = ScanErrorKind::Decode;
  if (err && err->domain == scan_error_quark()) {
    kind = ScanErrorKind(err->code);
  } else if (GST_MESSAGE_SRC(msg) == GST_OBJECT(detector) && err && err->domain == GST_CORE_ERROR &&
             err->code == GST_CORE_ERROR_NEGOTIATION) {
    // The element refused the stream's format: the file's fault, not ours.
    kind = ScanErrorKind::Decode;
  } else if (GST_MESSAGE_SRC(msg) == GST_OBJECT(detector)) {
    kind = (err && err->domain == GST_RESOURCE_ERROR) || (err && err->domain == GST_LIBRARY_ERROR)
               ? ScanErrorKind::Model
               : ScanErrorKind::Internal;
    if (dbg && *dbg) {
      // The element's debug text ends with the cause (e.g. the loader's message).
      const std::string d = dbg;
      const auto colon = d.rfind(":\n");
      text += ": " + (colon != std::string::npos ? d.substr(colon + 2) : d);
    }
  } else if (err && err->domain == GST_STREAM_ERROR && err->code == GST_STREAM_ERROR_WRONG_TYPE &&
             posted_by_parser(msg)) {
    // A parser that found no valid frame in a file whose type was recognised
    // (gst-plugins-bad's pngparse on a truncated PNG): damaged, not unsupported.
    kind = ScanErrorKind::Decode;
  } else if (err && err->domain == GST_STREAM_ERROR &&
             (err->code == GST_STREAM_ERROR_CODEC_NOT_FOUND || err->code == GST_STREAM_ERROR_TYPE_NOT_FOUND ||
              err->code == GST_STREAM_ERROR_WRONG_TYPE)) {
    kind = ScanErrorKind::Unsupported;
    if (!missing.empty()) text += " (" + missing + ")";
  } else if (err && err->domain == GST_RESOURCE_ERROR &&
             (err->code == GST_RESOURCE_ERROR_NOT_FOUND || err->code == GST_RESOURCE_ERROR_OPEN_READ ||
              err->code == GST_RESOURCE_ERROR_READ)) {
    kind = ScanErrorKind::Input;
  }
  g_clear_error(&err);
  g_free(dbg);
  return ScanError(kind, text);
}

// Refuses pictures and frames over the pixel limit from their declared size,
// before any decoder works on them, and frames the element could not map
// (a buffer too short for its declared size). Hooked into every element that
// appears inside uridecodebin (caps on every source pad: typefind, demuxers,
// parsers, decoders; picture headers on every image decoder's input) and on
// the frames leaving the decode chain. The first refusal is posted on the bus
// as an error of scan_error_quark(); from then on every buffer is dropped.
struct MediaGuard {
  uint64_t max_pixels = 0;  // 0: no limit
  std::string name;         // the file, for messages
  const char* what = "the video's frames are";  // or "the picture is", by the file's type
  GstElement* pipeline = nullptr;
  std::atomic<bool> refused{false};
  std::atomic<bool> frame_seen{false};  // a decoded frame reached the end of the decode chain

  bool too_large(uint64_t w, uint64_t h) const { return max_pixels > 0 && w * h > max_pixels; }

  void refuse(ScanErrorKind kind, const std::string& text) {
    if (refused.exchange(true)) return;
    GError* e = g_error_new_literal(scan_error_quark(), int(kind), (name + ": " + text).c_str());
    gst_element_post_message(pipeline, gst_message_new_error(GST_OBJECT(pipeline), e, nullptr));
    g_error_free(e);
  }

  // Fixed width and height on any structure of `caps` over the limit?
  bool check_caps(const GstCaps* caps, const char* what) {
    if (!caps) return true;
    for (guint i = 0; i < gst_caps_get_size(caps); ++i) {
      const GstStructure* st = gst_caps_get_structure(caps, i);
      int w = 0, h = 0;
      if (!gst_structure_get_int(st, "width", &w) || !gst_structure_get_int(st, "height", &h)) continue;
      if (w <= 0 || h <= 0) {
        refuse(ScanErrorKind::Decode, std::string(what) + " " + std::to_string(w) + "x" + std::to_string(h) +
                                          ": an impossible size (corrupt file?)");
        return false;
      }
      if (too_large(uint64_t(w), uint64_t(h))) {
        refuse(ScanErrorKind::TooLarge, std::string(what) + " " + too_large_text(uint64_t(w), uint64_t(h), max_pixels));
        return false;
      }
    }
    return true;
  }
};

GstPadProbeReturn on_caps_probe(GstPad*, GstPadProbeInfo* info, gpointer user) {
  auto* g = static_cast<MediaGuard*>(user);
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER) return g->refused ? GST_PAD_PROBE_DROP : GST_PAD_PROBE_OK;
  GstEvent* ev = GST_PAD_PROBE_INFO_EVENT(info);
  if (!ev || GST_EVENT_TYPE(ev) != GST_EVENT_CAPS) return GST_PAD_PROBE_OK;
  GstCaps* caps = nullptr;
  gst_event_parse_caps(ev, &caps);
  if (!g->check_caps(caps, g->what)) return GST_PAD_PROBE_DROP;
  return g->refused ? GST_PAD_PROBE_DROP : GST_PAD_PROBE_OK;
}

// An image decoder's input: the picture header of each buffer that starts one
// (a whole frame from a demuxer, or the start of an image file).
GstPadProbeReturn on_image_input(GstPad* pad, GstPadProbeInfo* info, gpointer user) {
  auto* g = static_cast<MediaGuard*>(user);
  if (g->refused) return GST_PAD_PROBE_DROP;
  GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
  if (!buf || g->max_pixels == 0) return GST_PAD_PROBE_OK;
  CapsPtr caps(gst_pad_get_current_caps(pad));
  if (!caps || gst_caps_get_size(caps.get()) == 0 ||
      !g_str_has_prefix(gst_structure_get_name(gst_caps_get_structure(caps.get(), 0)), "image/"))
    return GST_PAD_PROBE_OK;
  GstMapInfo map;
  if (!gst_buffer_map(buf, &map, GST_MAP_READ)) return GST_PAD_PROBE_OK;
  uint64_t w = 0, h = 0;
  const bool known = declared_image_size(map.data, map.size, &w, &h);
  gst_buffer_unmap(buf, &map);
  if (known && g->too_large(w, h)) {
    g->refuse(ScanErrorKind::TooLarge, std::string(g->what) + " " + too_large_text(w, h, g->max_pixels));
    return GST_PAD_PROBE_DROP;
  }
  return GST_PAD_PROBE_OK;
}

void guard_pad(GstPad* pad, MediaGuard* g) {
  if (GST_PAD_DIRECTION(pad) == GST_PAD_SRC)
    gst_pad_add_probe(pad, GstPadProbeType(GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM | GST_PAD_PROBE_TYPE_BUFFER),
                      on_caps_probe, g, nullptr);
}

void on_guarded_pad_added(GstElement*, GstPad* pad, gpointer user) { guard_pad(pad, static_cast<MediaGuard*>(user)); }

// Every element uridecodebin creates (typefind, demuxers, parsers, decoders).
void on_deep_element_added(GstBin*, GstBin*, GstElement* element, gpointer user) {
  auto* g = static_cast<MediaGuard*>(user);
  if (GST_IS_BIN(element)) return;  // its children come through here too
  GstIterator* it = gst_element_iterate_pads(element);
  GValue v = G_VALUE_INIT;
  while (gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
    guard_pad(GST_PAD(g_value_get_object(&v)), g);
    g_value_reset(&v);
  }
  g_value_unset(&v);
  gst_iterator_free(it);
  g_signal_connect(element, "pad-added", G_CALLBACK(on_guarded_pad_added), g);
  GstElementFactory* f = gst_element_get_factory(element);
  const char* klass = f ? gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_KLASS) : nullptr;
  if (klass && std::strstr(klass, "Decoder")) {
    GstPad* sink = gst_element_get_static_pad(element, "sink");
    if (sink) {
      gst_pad_add_probe(sink, GST_PAD_PROBE_TYPE_BUFFER, on_image_input, g, nullptr);
      gst_object_unref(sink);
    }
  }
}

// decodebin asks before it plugs anything for a new stream: refused streams
// stay undecoded.
gboolean on_autoplug_continue(GstElement*, GstPad*, GstCaps* caps, gpointer user) {
  auto* g = static_cast<MediaGuard*>(user);
  if (g->refused) return FALSE;
  return g->check_caps(caps, g->what) ? TRUE : FALSE;
}

// The frames leaving the decode chain (BGR, to the element or the appsink):
// the format must be a real one, under the limit, and every buffer must hold
// a whole frame of it (a raw stream may declare more than it carries).
struct FrameCheck {
  MediaGuard* guard = nullptr;
  std::mutex mu;
  GstVideoInfo info;
  bool have_info = false;
};

GstPadProbeReturn on_frame_probe(GstPad*, GstPadProbeInfo* info, gpointer user) {
  auto* fc = static_cast<FrameCheck*>(user);
  MediaGuard* g = fc->guard;
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEvent* ev = GST_PAD_PROBE_INFO_EVENT(info);
    if (!ev || GST_EVENT_TYPE(ev) != GST_EVENT_CAPS) return GST_PAD_PROBE_OK;
    GstCaps* caps = nullptr;
    gst_event_parse_caps(ev, &caps);
    GstVideoInfo vi;
    if (!caps || !gst_video_info_from_caps(&vi, caps)) {
      gchar* c = caps ? gst_caps_to_string(caps) : g_strdup("none");
      g->refuse(ScanErrorKind::Decode, std::string("impossible video format (") + c + ")");
      g_free(c);
      return GST_PAD_PROBE_DROP;
    }
    if (!g->check_caps(caps, g->what)) return GST_PAD_PROBE_DROP;
    std::lock_guard<std::mutex> lock(fc->mu);
    fc->info = vi;
    fc->have_info = true;
    return GST_PAD_PROBE_OK;
  }
  if (g->refused) return GST_PAD_PROBE_DROP;
  GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
  if (!buf) return GST_PAD_PROBE_OK;
  GstVideoInfo vi;
  {
    std::lock_guard<std::mutex> lock(fc->mu);
    if (!fc->have_info) return GST_PAD_PROBE_OK;  // not negotiated: the pad refuses it itself
    vi = fc->info;
  }
  GstVideoFrame vf;
  if (!gst_video_frame_map(&vf, &vi, buf, GST_MAP_READ)) {
    g->refuse(ScanErrorKind::Decode, "a frame of " + std::to_string(gst_buffer_get_size(buf)) +
                                         " bytes is too short for its declared size " +
                                         std::to_string(GST_VIDEO_INFO_WIDTH(&vi)) + "x" +
                                         std::to_string(GST_VIDEO_INFO_HEIGHT(&vi)) + " (corrupt file?)");
    return GST_PAD_PROBE_DROP;
  }
  gst_video_frame_unmap(&vf);
  g->frame_seen = true;
  return GST_PAD_PROBE_OK;
}

// uridecodebin ! (video pads) videoconvert ! video/x-raw,format=BGR ! <sink_chain>
// Other pads (audio, subtitles) go to their own fakesinks.
struct DecodeChain {
  GstElement* pipeline = nullptr;  // owned by the caller's ElementPtr
  GstElement* convert = nullptr;
  std::atomic<int> video_pads{0};
  std::mutex mu;
  MediaGuard guard;
  FrameCheck frames;
};

void on_pad_added(GstElement*, GstPad* pad, gpointer user) {
  auto* chain = static_cast<DecodeChain*>(user);
  CapsPtr caps(gst_pad_get_current_caps(pad));
  if (!caps) caps.reset(gst_pad_query_caps(pad, nullptr));
  const GstStructure* s = caps && gst_caps_get_size(caps.get()) > 0 ? gst_caps_get_structure(caps.get(), 0) : nullptr;
  const bool video = s && g_str_has_prefix(gst_structure_get_name(s), "video/");
  std::lock_guard<std::mutex> lock(chain->mu);
  if (video) {
    GstPad* sink = gst_element_get_static_pad(chain->convert, "sink");
    const bool free = !gst_pad_is_linked(sink);
    if (free && gst_pad_link(pad, sink) == GST_PAD_LINK_OK) chain->video_pads++;
    gst_object_unref(sink);
    if (chain->video_pads > 0) return;
    if (free) {
      // The converter refused the stream's format (e.g. a raw frame 100000
      // pixels wide): nothing would ever reach the element.
      gchar* c = gst_caps_to_string(caps.get());
      chain->guard.refuse(ScanErrorKind::Unsupported,
                          std::string("its video (") + c + ") cannot be converted for analysis");
      g_free(c);
    }
  }
  // Anything else (or a second video stream): drained into a fakesink.
  GstElement* fs = gst_element_factory_make("fakesink", nullptr);
  if (!fs) return;
  g_object_set(fs, "sync", FALSE, "async", FALSE, nullptr);
  gst_bin_add(GST_BIN(chain->pipeline), fs);
  gst_element_sync_state_with_parent(fs);
  GstPad* sink = gst_element_get_static_pad(fs, "sink");
  gst_pad_link(pad, sink);
  gst_object_unref(sink);
}

// Builds uridecodebin + videoconvert + capsfilter(BGR) into `pipeline`;
// returns the capsfilter to link the rest to.
GstElement* add_decode_chain(GstElement* pipeline, DecodeChain& chain, const std::string& uri,
                             uint64_t max_pixels, const std::string& name, bool picture) {
  GstElement* src = gst_element_factory_make("uridecodebin", "src");
  GstElement* conv = gst_element_factory_make("videoconvert", "convert");
  GstElement* filter = gst_element_factory_make("capsfilter", "bgr");
  if (!src || !conv || !filter) {
    for (GstElement* e : {src, conv, filter})
      if (e) gst_object_unref(e);
    throw ScanError(ScanErrorKind::Internal, "GStreamer base plugins missing (uridecodebin, videoconvert)");
  }
  g_object_set(src, "uri", uri.c_str(), nullptr);
  CapsPtr caps(gst_caps_from_string("video/x-raw,format=BGR"));
  g_object_set(filter, "caps", caps.get(), nullptr);
  gst_bin_add_many(GST_BIN(pipeline), src, conv, filter, nullptr);
  if (!gst_element_link(conv, filter)) throw ScanError(ScanErrorKind::Internal, "could not link videoconvert");
  chain.pipeline = pipeline;
  chain.convert = conv;
  chain.guard.pipeline = pipeline;
  chain.guard.max_pixels = max_pixels;
  chain.guard.name = name;
  chain.guard.what = picture ? "the picture is" : "the video's frames are";
  chain.frames.guard = &chain.guard;
  g_signal_connect(src, "pad-added", G_CALLBACK(on_pad_added), &chain);
  g_signal_connect(src, "autoplug-continue", G_CALLBACK(on_autoplug_continue), &chain.guard);
  g_signal_connect(pipeline, "deep-element-added", G_CALLBACK(on_deep_element_added), &chain.guard);
  GstPad* out = gst_element_get_static_pad(filter, "src");
  gst_pad_add_probe(out, GstPadProbeType(GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM | GST_PAD_PROBE_TYPE_BUFFER),
                    on_frame_probe, &chain.frames, nullptr);
  gst_object_unref(out);
  return filter;
}

void stop_pipeline(GstElement* p) { gst_element_set_state(p, GST_STATE_NULL); }

// Stopping early (time limit, cancel, error): a flush-start on the element's
// sink pad wakes its streaming thread if it waits for the model (a full queue
// in sync mode, or the drain at EOS), so the state change does not wait for
// every queued window to be classified.
void abort_pipeline(GstElement* p, GstElement* detector) {
  if (detector) {
    GstPad* pad = gst_element_get_static_pad(detector, "sink");
    if (pad) {
      gst_pad_send_event(pad, gst_event_new_flush_start());
      gst_object_unref(pad);
    }
  }
  stop_pipeline(p);
}

}  // namespace

namespace {

uint32_t be16(const uint8_t* p) { return uint32_t(p[0]) << 8 | p[1]; }
uint32_t le16(const uint8_t* p) { return uint32_t(p[1]) << 8 | p[0]; }
uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }
uint32_t le32(const uint8_t* p) { return uint32_t(p[3]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | p[0]; }

bool jpeg_size(const uint8_t* d, size_t n, uint64_t* w, uint64_t* h) {
  size_t pos = 2;
  while (pos + 4 <= n) {
    if (d[pos] != 0xFF) return false;  // not at a marker: corrupt
    while (pos < n && d[pos] == 0xFF) ++pos;  // fill bytes
    if (pos >= n) return false;
    const uint8_t m = d[pos++];
    if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // no length
    if (m == 0xD9 || m == 0xDA) return false;  // end of image, or scan data before any frame header
    if (pos + 2 > n) return false;
    const uint32_t len = be16(d + pos);
    if (len < 2) return false;
    const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (sof) {
      if (pos + 7 > n) return false;
      *h = be16(d + pos + 3);
      *w = be16(d + pos + 5);
      return true;
    }
    pos += len;
  }
  return false;
}

bool tiff_size(const uint8_t* d, size_t n, uint64_t* w, uint64_t* h) {
  const bool le = d[0] == 'I';
  auto u16 = [&](size_t o) { return le ? le16(d + o) : be16(d + o); };
  auto u32 = [&](size_t o) { return le ? le32(d + o) : be32(d + o); };
  const size_t ifd = u32(4);
  if (ifd + 2 > n) return false;
  const size_t count = u16(ifd);
  bool gw = false, gh = false;
  for (size_t i = 0; i < count; ++i) {
    const size_t e = ifd + 2 + 12 * i;
    if (e + 12 > n) return false;
    const uint32_t tag = u16(e), type = u16(e + 2);
    const uint32_t value = type == 3 ? u16(e + 8) : u32(e + 8);  // SHORT or LONG
    if (tag == 256) { *w = value; gw = true; }
    if (tag == 257) { *h = value; gh = true; }
    if (gw && gh) return true;
  }
  return false;
}

bool pnm_size(const uint8_t* d, size_t n, uint64_t* w, uint64_t* h) {
  size_t pos = 2;
  uint64_t v[2] = {0, 0};
  for (int k = 0; k < 2; ++k) {
    for (;;) {  // whitespace and comments
      while (pos < n && std::isspace(d[pos])) ++pos;
      if (pos < n && d[pos] == '#') {
        while (pos < n && d[pos] != '\n') ++pos;
        continue;
      }
      break;
    }
    int digits = 0;
    while (pos < n && std::isdigit(d[pos]) && digits < 12) {
      v[k] = v[k] * 10 + uint64_t(d[pos++] - '0');
      ++digits;
    }
    if (digits == 0) return false;
  }
  *w = v[0];
  *h = v[1];
  return true;
}

}  // namespace

bool declared_image_size(const uint8_t* d, size_t n, uint64_t* w, uint64_t* h) {
  if (!d || n < 8) return false;
  if (std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) {
    if (n < 24 || std::memcmp(d + 12, "IHDR", 4) != 0) return false;
    *w = be32(d + 16);
    *h = be32(d + 20);
    return true;
  }
  if (d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return jpeg_size(d, n, w, h);
  if (std::memcmp(d, "GIF87a", 6) == 0 || std::memcmp(d, "GIF89a", 6) == 0) {
    if (n < 10) return false;
    *w = le16(d + 6);
    *h = le16(d + 8);
    return true;
  }
  if (d[0] == 'B' && d[1] == 'M') {
    if (n < 26) return false;
    const uint32_t hdr = le32(d + 14);
    if (hdr == 12) {  // OS/2 core header
      *w = le16(d + 18);
      *h = le16(d + 20);
    } else {
      const int32_t sw = int32_t(le32(d + 18)), sh = int32_t(le32(d + 22));  // negative height: top-down
      *w = uint64_t(std::llabs(int64_t(sw)));
      *h = uint64_t(std::llabs(int64_t(sh)));
    }
    return true;
  }
  if (n >= 30 && std::memcmp(d, "RIFF", 4) == 0 && std::memcmp(d + 8, "WEBP", 4) == 0) {
    if (std::memcmp(d + 12, "VP8 ", 4) == 0) {
      *w = le16(d + 26) & 0x3FFF;
      *h = le16(d + 28) & 0x3FFF;
      return true;
    }
    if (std::memcmp(d + 12, "VP8L", 4) == 0 && d[20] == 0x2F) {
      const uint32_t b = le32(d + 21);
      *w = (b & 0x3FFF) + 1;
      *h = ((b >> 14) & 0x3FFF) + 1;
      return true;
    }
    if (std::memcmp(d + 12, "VP8X", 4) == 0) {
      *w = (uint64_t(d[24]) | uint64_t(d[25]) << 8 | uint64_t(d[26]) << 16) + 1;
      *h = (uint64_t(d[27]) | uint64_t(d[28]) << 8 | uint64_t(d[29]) << 16) + 1;
      return true;
    }
    return false;
  }
  if ((d[0] == 'I' && d[1] == 'I' && d[2] == 42 && d[3] == 0) || (d[0] == 'M' && d[1] == 'M' && d[2] == 0 && d[3] == 42))
    return tiff_size(d, n, w, h);
  if (d[0] == 'P' && d[1] >= '1' && d[1] <= '6' && std::isspace(d[2])) return pnm_size(d, n, w, h);
  return false;
}

std::string too_large_text(uint64_t w, uint64_t h, uint64_t max_pixels) {
  char buf[200];
  if (max_pixels >= 1000000)
    std::snprintf(buf, sizeof buf, "%llux%llu pixels (%.1f megapixels), over the limit of %.1f megapixels",
                  (unsigned long long)w, (unsigned long long)h, double(w) * double(h) / 1e6, double(max_pixels) / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%llux%llu pixels (%.0f), over the limit of %llu pixels", (unsigned long long)w,
                  (unsigned long long)h, double(w) * double(h), (unsigned long long)max_pixels);
  return buf;
}

const char* to_string(ScanErrorKind k) {
  switch (k) {
    case ScanErrorKind::Input: return "input";
    case ScanErrorKind::NotMedia: return "not-media";
    case ScanErrorKind::Unsupported: return "unsupported";
    case ScanErrorKind::NoVideo: return "no-video";
    case ScanErrorKind::Decode: return "decode";
    case ScanErrorKind::TooLarge: return "too-large";
    case ScanErrorKind::Model: return "model";
    case ScanErrorKind::Timeout: return "timeout";
    case ScanErrorKind::Cancelled: return "cancelled";
    case ScanErrorKind::Internal: return "internal";
  }
  return "internal";
}

double steady_seconds() { return now_s(); }

void scan_init(const std::string& plugin_dir) {
  GError* err = nullptr;
  if (!gst_is_initialized() && !gst_init_check(nullptr, nullptr, &err)) {
    std::string m = err ? err->message : "gst_init failed";
    g_clear_error(&err);
    throw ScanError(ScanErrorKind::Internal, "GStreamer: " + m);
  }
  if (!plugin_dir.empty()) gst_registry_scan_path(gst_registry_get(), plugin_dir.c_str());
  GstElementFactory* f = gst_element_factory_find("deepfakedetect");
#ifdef DFD_BUILD_PLUGIN_DIR
  if (!f) {  // run from the build tree: the plugin beside the tools
    gst_registry_scan_path(gst_registry_get(), DFD_BUILD_PLUGIN_DIR);
    f = gst_element_factory_find("deepfakedetect");
  }
#endif
  if (!f)
    throw ScanError(ScanErrorKind::Internal,
                    "the deepfakedetect element is not installed: set GST_PLUGIN_PATH to the build's gst/ "
                    "directory or install the plugin");
  gst_object_unref(f);
}

std::string sniff_media_type(const std::string& path) {
  std::ifstream in(local_path(path), std::ios::binary);
  if (!in) throw ScanError(ScanErrorKind::Input, path + ": cannot be read");
  std::vector<char> head(1 << 20);  // typefinders look at the start of the file
  in.read(head.data(), std::streamsize(head.size()));
  head.resize(size_t(in.gcount()));
  if (head.empty()) return "";
  GstTypeFindProbability prob = GST_TYPE_FIND_NONE;
  CapsPtr caps(gst_type_find_helper_for_data(nullptr, reinterpret_cast<const guint8*>(head.data()), head.size(), &prob));
  if (!caps || gst_caps_is_empty(caps.get()) || gst_caps_is_any(caps.get())) return "";
  return gst_structure_get_name(gst_caps_get_structure(caps.get(), 0));
}

namespace {

// declared_image_size of a file: its first MiB, or for a JPEG whose frame
// header lies further (large metadata segments), up to 16 MiB of it.
bool declared_file_image_size(const std::string& input, uint64_t* w, uint64_t* h) {
  std::ifstream in(local_path(input), std::ios::binary);
  if (!in) return false;
  std::vector<char> head(1 << 20);
  in.read(head.data(), std::streamsize(head.size()));
  head.resize(size_t(in.gcount()));
  const auto* d = reinterpret_cast<const uint8_t*>(head.data());
  if (declared_image_size(d, head.size(), w, h)) return true;
  if (head.size() == (1u << 20) && d[0] == 0xFF && d[1] == 0xD8) {
    head.resize(16u << 20);
    in.read(head.data() + (1 << 20), std::streamsize(head.size() - (1 << 20)));
    head.resize((1u << 20) + size_t(in.gcount()));
    return declared_image_size(reinterpret_cast<const uint8_t*>(head.data()), head.size(), w, h);
  }
  return false;
}

}  // namespace

bool is_analysable_media_type(const std::string& t) {
  static const std::set<std::string> images = {"image/png", "image/jpeg", "image/bmp", "image/gif",
                                               "image/tiff", "image/webp", "image/x-portable-pixmap"};
  static const std::set<std::string> containers = {"application/ogg", "application/x-3gp", "application/mxf",
                                                   "application/x-yuv4mpeg"};
  if (t.rfind("video/", 0) == 0) return true;
  return images.count(t) || containers.count(t);
}

ModelOptions model_options_of(const ScanOptions& options) {
  ModelOptions mo;
  mo.device = options.device.empty() ? "cpu" : options.device;
  mo.precision = options.precision.empty() ? "fp32" : options.precision;
  mo.num_threads = options.num_threads;
  return mo;
}

Report run_scan(const ScanOptions& o, const ScanProgressCallback& progress, const Detector* model,
                std::vector<std::string>* warnings) {
  const double t0 = now_s();
  check_input(o.input);
  const std::string name = o.source_name.empty() ? o.input : o.source_name;
  const std::string media = sniff_media_type(o.input);
  if (!is_analysable_media_type(media))
    throw ScanError(ScanErrorKind::NotMedia, name + ": not an image or a video" +
                                                 (media.empty() ? std::string() : " (content is " + media + ")"));
  // A large picture takes seconds to decode (more on a loaded machine): the
  // wait for its first frame grows with its declared size (1 s per
  // megapixel), so that a large valid picture is never called corrupt.
  double preroll_timeout_s = o.preroll_timeout_s;
  if (media.rfind("image/", 0) == 0) {
    // A picture's declared size, before anything decodes it.
    uint64_t w = 0, h = 0;
    if (declared_file_image_size(o.input, &w, &h)) {
      if (o.max_pixels > 0 && w * h > o.max_pixels)
        throw ScanError(ScanErrorKind::TooLarge, name + ": the picture is " + too_large_text(w, h, o.max_pixels));
      if (preroll_timeout_s > 0) preroll_timeout_s += double(w) * double(h) / 1e6;
    }
  }
  const std::string uri = to_uri(o.input);

  DecodeChain chain;  // outlives the pipeline: its pad-added handler points here
  PipelinePtr pipeline(GST_ELEMENT(gst_object_ref_sink(gst_pipeline_new("deepfake-scan"))));
  GstElement* tail = add_decode_chain(pipeline.get(), chain, uri, o.max_pixels, name, media.rfind("image/", 0) == 0);
  GstElement* det = gst_element_factory_make("deepfakedetect", "detect");
  GstElement* sink = gst_element_factory_make("fakesink", "sink");
  if (!det || !sink) {
    if (det) gst_object_unref(det);
    if (sink) gst_object_unref(sink);
    throw ScanError(ScanErrorKind::Internal, "the deepfakedetect element is not available (see scan_init)");
  }
  gst_bin_add_many(GST_BIN(pipeline.get()), det, sink, nullptr);
  if (!gst_element_link_many(tail, det, sink, nullptr))
    throw ScanError(ScanErrorKind::Internal, "could not link deepfakedetect");
  g_object_set(sink, "sync", FALSE, nullptr);
  if (!o.model.empty()) g_object_set(det, "model", o.model.c_str(), nullptr);
  set_enum(det, "head", o.head);
  set_enum(det, "face-detector", o.face_detector);
  set_enum(det, "aggregation", o.aggregation);
  set_enum(det, "sync", "true");
  if (!o.face_detector_model.empty()) g_object_set(det, "face-detector-model", o.face_detector_model.c_str(), nullptr);
  g_object_set(det, "window-size", o.window_size, "window-stride", o.window_stride, "interval", o.interval,
               "detect-interval", o.detect_interval, "min-face-size", o.min_face_size, "max-faces", o.max_faces,
               "crop-margin", o.crop_margin, "threshold", o.threshold, "num-threads", o.num_threads,
               "frame-messages", gboolean(o.frame_probabilities), "post-messages", TRUE, nullptr);
  if (!o.device.empty()) g_object_set(det, "device", o.device.c_str(), nullptr);
  if (!o.precision.empty()) g_object_set(det, "precision", o.precision.c_str(), nullptr);

  ReportModel rm;
  if (model) {
    const ModelCard& card = model->card();
    rm.name = card.name;
    rm.head = o.head == "auto" || o.head.empty() ? to_string(card.head) : o.head;
    rm.source = model->source();
    rm.checksum = model->checksum();
    rm.trained = card.trained;
    rm.notice = card.trust_notice();
  }
  // The element takes unset values from the model card; so does the report.
  float threshold = float(o.threshold);
  int window_size = o.window_size;
  if (model) {
    if (threshold < 0) threshold = model->card().threshold;
    if (window_size <= 0) {
      const DetectorInfo& in = model->info();
      // Per-crop detectors are scored one crop per window (see docs/element.md).
      window_size = in.per_crop && !in.needs_window && !in.window_head ? 1 : model->card().window_size;
    }
  }
  if (threshold < 0) threshold = 0.5f;
  if (window_size <= 0) window_size = 20;
  ReportBuilder builder(o.source_name.empty() ? o.input : o.source_name, rm, threshold);
  builder.meta().aggregation = o.aggregation;
  builder.meta().window_size = window_size;
  builder.meta().face_detector = o.face_detector;
  bool have_summary = false;
  StreamSummary summary;
  std::string missing;

  BusPtr bus(gst_element_get_bus(pipeline.get()));
  if (gst_element_set_state(pipeline.get(), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    // The error (if any) is on the bus.
    MessagePtr m(gst_bus_pop_filtered(bus.get(), GST_MESSAGE_ERROR));
    stop_pipeline(pipeline.get());
    if (m) throw error_from_message(m.get(), det, missing);
    throw ScanError(ScanErrorKind::Internal, "the pipeline did not start");
  }

  ScanProgress prog;
  double last_progress = 0;
  auto report_progress = [&](bool done) {
    if (!progress) return;
    guint64 frames = 0;
    g_object_get(det, "frames-processed", &frames, nullptr);
    prog.frames = frames;
    gint64 pos = -1, dur = -1;
    if (gst_element_query_position(pipeline.get(), GST_FORMAT_TIME, &pos) && pos >= 0) prog.position_ns = uint64_t(pos);
    if (gst_element_query_duration(pipeline.get(), GST_FORMAT_TIME, &dur) && dur > 0) {
      prog.duration_ns = uint64_t(dur);
      GstPad* pad = gst_element_get_static_pad(det, "sink");
      CapsPtr caps(gst_pad_get_current_caps(pad));
      gst_object_unref(pad);
      GstVideoInfo info;
      if (caps && gst_video_info_from_caps(&info, caps.get()) && info.fps_n > 0 && info.fps_d > 0)
        prog.total_frames = uint64_t(std::llround(double(dur) / 1e9 * info.fps_n / info.fps_d));
    }
    if (done && prog.total_frames < prog.frames) prog.total_frames = prog.frames;
    prog.elapsed_s = now_s() - t0;
    prog.done = done;
    progress(prog);
  };

  const auto mask = GstMessageType(GST_MESSAGE_ERROR | GST_MESSAGE_EOS | GST_MESSAGE_ELEMENT | GST_MESSAGE_WARNING |
                                   GST_MESSAGE_ASYNC_DONE | GST_MESSAGE_STATE_CHANGED);
  bool prerolled = false;
  // States change from the sinks up: once the element is PAUSED (its model
  // loaded), the decoder starts.
  double decoding_since = 0;
  for (;;) {
    if (o.cancel && o.cancel->load()) {
      abort_pipeline(pipeline.get(), det);
      throw ScanError(ScanErrorKind::Cancelled, "cancelled");
    }
    if (o.timeout_s > 0 && now_s() - t0 > o.timeout_s) {
      abort_pipeline(pipeline.get(), det);
      throw ScanError(ScanErrorKind::Timeout, "the scan took longer than " + std::to_string(int(o.timeout_s)) + " s");
    }
    // Only while no frame has been decoded: a frame that reached the element
    // proves the file decodes, and its analysis is bounded by timeout_s alone.
    if (!prerolled && !chain.guard.frame_seen && decoding_since > 0 && preroll_timeout_s > 0 &&
        now_s() - decoding_since > preroll_timeout_s) {
      abort_pipeline(pipeline.get(), det);
      char secs[32];
      std::snprintf(secs, sizeof secs, "%g", preroll_timeout_s);
      throw ScanError(ScanErrorKind::Decode,
                      name + ": no frame could be decoded within " + secs + " s (truncated or corrupt file?)");
    }
    if (progress && now_s() - last_progress > 0.25) {
      report_progress(false);
      last_progress = now_s();
    }
    MessagePtr msg(gst_bus_timed_pop_filtered(bus.get(), 50 * GST_MSECOND, mask));
    if (!msg) continue;
    if (GST_MESSAGE_TYPE(msg.get()) == GST_MESSAGE_ERROR) {
      ScanError e = error_from_message(msg.get(), det, missing);
      abort_pipeline(pipeline.get(), det);
      throw e;
    }
    if (GST_MESSAGE_TYPE(msg.get()) == GST_MESSAGE_EOS) {
      if (chain.guard.refused) {  // its error is on the bus, behind this
        MessagePtr m(gst_bus_pop_filtered(bus.get(), GST_MESSAGE_ERROR));
        abort_pipeline(pipeline.get(), det);
        if (m) throw error_from_message(m.get(), det, missing);
        throw ScanError(ScanErrorKind::Decode, name + ": refused");
      }
      break;
    }
    if (GST_MESSAGE_TYPE(msg.get()) == GST_MESSAGE_WARNING) {
      GError* err = nullptr;
      gst_message_parse_warning(msg.get(), &err, nullptr);
      if (warnings && err) warnings->push_back(err->message);
      g_clear_error(&err);
      continue;
    }
    if (GST_MESSAGE_TYPE(msg.get()) == GST_MESSAGE_ASYNC_DONE) {
      if (GST_MESSAGE_SRC(msg.get()) == GST_OBJECT(pipeline.get())) prerolled = true;
      continue;
    }
    if (GST_MESSAGE_TYPE(msg.get()) == GST_MESSAGE_STATE_CHANGED) {
      GstState old_state, new_state;
      gst_message_parse_state_changed(msg.get(), &old_state, &new_state, nullptr);
      if (GST_MESSAGE_SRC(msg.get()) == GST_OBJECT(det) && new_state >= GST_STATE_PAUSED && decoding_since == 0)
        decoding_since = now_s();
      continue;
    }
    if (gst_is_missing_plugin_message(msg.get())) {
      gchar* d = gst_missing_plugin_message_get_description(msg.get());
      if (d) missing = std::string("missing: ") + d;
      g_free(d);
      continue;
    }
    DfdWindowVerdict w;
    DfdFrameVerdict f;
    DfdSummary s;
    if (dfd_message_parse_window(msg.get(), &w)) {
      WindowVerdict v;
      v.track_id = w.track_id;
      v.start.index = w.window_start;
      v.start.pts_ns = w.start_pts;
      v.end.index = w.window_end;
      v.end.pts_ns = w.end_pts;  // already the end of the last frame
      v.frames = w.frames;
      v.box = cv::Rect(w.x, w.y, w.width, w.height);
      v.prediction.prob_fake = float(w.fake_probability);
      v.track_probability = float(w.track_fake_probability);
      v.final = w.final;
      builder.add_window(v);
      if (!model && w.model) {
        builder.meta().model.name = w.model;
        builder.meta().model.trained = w.trained;
      }
    } else if (dfd_message_parse_frame(msg.get(), &f)) {
      FrameVerdict v;
      v.track_id = f.track_id;
      v.times.index = f.frame;
      v.times.pts_ns = f.timestamp;
      v.times.duration_ns = f.duration;
      v.box = cv::Rect(f.x, f.y, f.width, f.height);
      v.prob_fake = float(f.fake_probability);
      builder.add_frame(v);
    } else if (dfd_message_parse_summary(msg.get(), &s)) {
      have_summary = true;
      summary.verdict = s.verdict;
      summary.fake_probability = float(s.fake_probability);
      summary.frames = s.frames;
      summary.frames_analysed = s.frames_analysed;
      summary.windows_analysed = s.windows_analysed;
      summary.windows_skipped = s.windows_skipped;
      summary.crops_analysed = s.crops_analysed;
      for (guint i = 0; i < s.n_tracks; ++i) {
        DfdTrackSummary ts;
        if (!dfd_message_get_summary_track(msg.get(), i, &ts)) continue;
        TrackSummary t;
        t.id = ts.track_id;
        t.verdict = ts.verdict ? ts.verdict : "";
        t.fake_probability = float(ts.fake_probability);
        t.windows = ts.windows;
        t.crops = ts.frames;
        t.first_index = ts.first_frame;
        t.last_index = ts.last_frame;
        summary.tracks.push_back(t);
      }
      if (!model && s.model) {
        builder.meta().model.name = s.model;
        builder.meta().model.trained = s.trained;
      }
      const GstStructure* st = gst_message_get_structure(msg.get());
      if (const char* head = gst_structure_get_string(st, "head")) builder.meta().model.head = head;
    }
  }
  report_progress(true);
  guint64 frames = 0;
  g_object_get(det, "frames-processed", &frames, nullptr);
  stop_pipeline(pipeline.get());
  if (chain.video_pads == 0) throw ScanError(ScanErrorKind::NoVideo, name + ": no video stream could be decoded");
  if (frames == 0)
    throw ScanError(ScanErrorKind::Decode, name + ": no frame could be decoded (truncated or corrupt file?)");
  if (!model) {
    ReportModel& m = builder.meta().model;
    if (!m.trained && m.notice.empty()) m.notice = ModelCard{}.trust_notice();
    if (m.source.empty()) m.source = o.model.empty() ? find_default_model() : o.model;  // the element's default
  }
  Report r = builder.build(have_summary ? &summary : nullptr);
  if (!have_summary) r.stats.frames = frames;
  if (r.model.head.empty()) r.model.head = o.head;
  r.model.precision = string_property(det, "precision");
  r.model.device = string_property(det, "device");
  r.stats.elapsed_s = now_s() - t0;
  return r;
}

std::vector<ImageRequest> most_suspicious(const Report& r, int per_track) {
  std::vector<ImageRequest> out;
  if (per_track <= 0) return out;
  for (const auto& t : r.tracks) {
    std::vector<const ReportFrame*> fs;
    for (const auto& f : t.frames) fs.push_back(&f);
    std::stable_sort(fs.begin(), fs.end(), [](const ReportFrame* a, const ReportFrame* b) {
      if (a->fake_probability != b->fake_probability) return a->fake_probability > b->fake_probability;
      return a->index < b->index;
    });
    if (int(fs.size()) > per_track) fs.resize(size_t(per_track));
    std::sort(fs.begin(), fs.end(), [](const ReportFrame* a, const ReportFrame* b) { return a->index < b->index; });
    for (const ReportFrame* f : fs) {
      ImageRequest q;
      q.track_id = t.id;
      q.frame_index = f->index;
      q.pts_ns = f->pts_ns;
      q.bbox = f->bbox;
      q.fake_probability = f->fake_probability;
      q.cls = kClassFake;
      out.push_back(q);
    }
  }
  return out;
}

std::vector<ImageRequest> verdict_crop(const Report& r) {
  if (r.verdict == "NO_FACE" || r.tracks.empty()) return {};
  const ReportTrack* best = nullptr;
  for (const auto& t : r.tracks)
    if (!t.frames.empty() && (!best || t.fake_probability > best->fake_probability)) best = &t;
  if (!best) return {};
  const ReportFrame& f = best->frames.back();
  ImageRequest q;
  q.track_id = best->id;
  q.frame_index = f.index;
  q.pts_ns = f.pts_ns;
  q.bbox = f.bbox;
  q.fake_probability = f.fake_probability;
  q.cls = r.verdict == "FAKE" ? kClassFake : kClassReal;
  return {q};
}

std::vector<ReportImage> render_report_images(const ScanOptions& o, const Detector& model,
                                              const std::vector<ImageRequest>& requests, double started_s,
                                              int display_size) {
  std::vector<ReportImage> out;
  if (requests.empty()) return out;
  const double t0 = started_s > 0 ? started_s : now_s();
  std::map<int64_t, std::vector<const ImageRequest*>> wanted;
  for (const auto& q : requests)
    if (q.frame_index >= 0) wanted[q.frame_index].push_back(&q);
  if (wanted.empty()) return out;
  const int64_t last = wanted.rbegin()->first;

  DecodeChain chain;  // outlives the pipeline: its pad-added handler points here
  PipelinePtr pipeline(GST_ELEMENT(gst_object_ref_sink(gst_pipeline_new("deepfake-frames"))));
  GstElement* tail = add_decode_chain(pipeline.get(), chain, to_uri(o.input), o.max_pixels,
                                      o.source_name.empty() ? o.input : o.source_name,
                                      sniff_media_type(o.input).rfind("image/", 0) == 0);
  GstElement* sink = gst_element_factory_make("appsink", "frames");
  if (!sink) throw ScanError(ScanErrorKind::Internal, "appsink missing (gst-plugins-base)");
  gst_bin_add(GST_BIN(pipeline.get()), sink);
  if (!gst_element_link(tail, sink)) throw ScanError(ScanErrorKind::Internal, "could not link appsink");
  g_object_set(sink, "sync", FALSE, "max-buffers", 4, "drop", FALSE, nullptr);
  if (gst_element_set_state(pipeline.get(), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    stop_pipeline(pipeline.get());
    throw ScanError(ScanErrorKind::Decode, "could not decode the file again for its pictures");
  }
  BusPtr bus(gst_element_get_bus(pipeline.get()));
  std::map<const ImageRequest*, ReportImage> done;
  int64_t index = 0;
  while (index <= last) {
    if (o.cancel && o.cancel->load()) {
      stop_pipeline(pipeline.get());
      throw ScanError(ScanErrorKind::Cancelled, "cancelled");
    }
    if (o.timeout_s > 0 && now_s() - t0 > o.timeout_s) {
      stop_pipeline(pipeline.get());
      throw ScanError(ScanErrorKind::Timeout, "the scan took longer than " + std::to_string(int(o.timeout_s)) + " s");
    }
    MessagePtr err(gst_bus_pop_filtered(bus.get(), GST_MESSAGE_ERROR));
    if (err) {
      ScanError e = error_from_message(err.get(), nullptr, "");
      stop_pipeline(pipeline.get());
      throw e;
    }
    GstSample* sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 100 * GST_MSECOND);
    if (!sample) {
      if (gst_app_sink_is_eos(GST_APP_SINK(sink))) break;
      continue;
    }
    auto it = wanted.find(index);
    if (it != wanted.end()) {
      GstVideoInfo info;
      GstBuffer* buf = gst_sample_get_buffer(sample);
      GstVideoFrame vf;
      if (gst_video_info_from_caps(&info, gst_sample_get_caps(sample)) &&
          gst_video_frame_map(&vf, &info, buf, GST_MAP_READ)) {
        const cv::Mat frame(GST_VIDEO_FRAME_HEIGHT(&vf), GST_VIDEO_FRAME_WIDTH(&vf), CV_8UC3,
                            GST_VIDEO_FRAME_PLANE_DATA(&vf, 0), size_t(GST_VIDEO_FRAME_PLANE_STRIDE(&vf, 0)));
        for (const ImageRequest* q : it->second) {
          ReportImage im;
          im.track_id = q->track_id;
          im.frame_index = q->frame_index;
          im.pts_ns = q->pts_ns;
          im.bbox = q->bbox;
          im.fake_probability = q->fake_probability;
          try {
            const float margin = o.crop_margin >= 0 ? float(o.crop_margin) : model.info().crop_margin;
            if (auto resnext = model.info().has_cam ? model.resnext_model() : nullptr) {
              FaceHeatmap h = face_heatmap(*resnext, frame, q->bbox, q->cls, margin, display_size);
              const auto crop = encode_png(h.crop), heat = encode_png(h.heatmap);
              im.crop_png.assign(crop.begin(), crop.end());
              im.heatmap_png.assign(heat.begin(), heat.end());
            } else {  // no activation map for this architecture: the crop alone
              const auto crop = encode_png(crop_face(frame, q->bbox, margin, display_size));
              im.crop_png.assign(crop.begin(), crop.end());
            }
          } catch (const std::invalid_argument&) {
            // The box misses this frame: keep the entry without pictures.
          }
          done[q] = std::move(im);
        }
        gst_video_frame_unmap(&vf);
      }
    }
    gst_sample_unref(sample);
    ++index;
  }
  stop_pipeline(pipeline.get());
  for (const auto& q : requests) {
    auto it = done.find(&q);
    if (it != done.end()) out.push_back(std::move(it->second));
  }
  return out;
}

int exit_code_for(const Report& r) {
  if (r.verdict == "FAKE") return kExitFake;
  if (r.verdict == "REAL") return kExitReal;
  return kExitNoFace;
}

int exit_code_for(const ScanError&) { return kExitError; }

// ------------------------------------------------------------ progress bar

ProgressBar::ProgressBar(FILE* out) : ProgressBar(out, out && isatty(fileno(out))) {}
ProgressBar::ProgressBar(FILE* out, bool enabled) : out_(out), enabled_(enabled && out) {}

std::string ProgressBar::format(const ScanProgress& p, int width) {
  char buf[128];
  std::vector<std::string> parts;
  const double fps = p.elapsed_s > 0 ? double(p.frames) / p.elapsed_s : 0.0;
  double frac = -1;
  if (p.total_frames > 0) frac = std::min(1.0, double(p.frames) / double(p.total_frames));
  else if (p.duration_ns != kNoTime && p.position_ns != kNoTime && p.duration_ns > 0)
    frac = std::min(1.0, double(p.position_ns) / double(p.duration_ns));
  if (p.done) frac = 1.0;
  if (frac >= 0) {
    const int fill = int(std::lround(frac * width));
    std::snprintf(buf, sizeof buf, " %3d%%", int(std::floor(frac * 100.0)));
    parts.push_back("[" + std::string(size_t(fill), '#') + std::string(size_t(width - fill), '-') + "]" + buf);
  }
  if (p.total_frames > 0)
    std::snprintf(buf, sizeof buf, "%llu/%llu frames", (unsigned long long)p.frames,
                  (unsigned long long)p.total_frames);
  else
    std::snprintf(buf, sizeof buf, "%llu frames", (unsigned long long)p.frames);
  parts.push_back(buf);
  std::snprintf(buf, sizeof buf, "%.1f fps", fps);
  parts.push_back(buf);
  if (!p.done && frac > 0.0 && frac < 1.0 && p.elapsed_s > 0) {
    const long eta = std::lround(p.elapsed_s * (1.0 - frac) / frac);
    std::snprintf(buf, sizeof buf, "ETA %ld:%02ld", eta / 60, eta % 60);
    parts.push_back(buf);
  } else if (p.done) {
    std::snprintf(buf, sizeof buf, "done in %.1f s", p.elapsed_s);
    parts.push_back(buf);
  }
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? "  " : "") + parts[i];
  return s;
}

void ProgressBar::update(const ScanProgress& p) {
  if (!enabled_) return;
  const double t = now_s();
  if (!p.done && last_draw_ >= 0 && t - last_draw_ < 0.1) return;
  last_draw_ = t;
  std::string line = format(p);
  const size_t len = line.size();
  if (len < last_len_) line += std::string(last_len_ - len, ' ');
  last_len_ = len;
  std::fprintf(out_, "\r%s", line.c_str());
  std::fflush(out_);
}

void ProgressBar::finish() {
  if (!enabled_ || last_len_ == 0) return;
  std::fprintf(out_, "\r%s\r", std::string(last_len_, ' ').c_str());
  std::fflush(out_);
  last_len_ = 0;
}

}  // namespace dfd

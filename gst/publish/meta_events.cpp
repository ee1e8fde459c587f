#include "meta_events.h"

#include "deepfakedetect-meta.h"

namespace dfd::gst_events {
namespace {

std::string str(const gchar* s) { return s ? s : ""; }

// The parse helpers read messages: wrap the structure in one.
GstMessage* as_message(const GstStructure* s) { return gst_message_new_element(nullptr, gst_structure_copy(s)); }

}  // namespace

std::optional<uint64_t> time_of(GstClockTime t) {
  if (!GST_CLOCK_TIME_IS_VALID(t)) return std::nullopt;
  return static_cast<uint64_t>(t);
}

std::vector<events::FaceObject> faces_of(GstBuffer* buf) {
  std::vector<events::FaceObject> out;
  gpointer state = nullptr;
  GstMeta* m;
  while ((m = gst_buffer_iterate_meta_filtered(buf, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    DfdFaceVerdict v;
    if (!dfd_roi_meta_get_verdict(reinterpret_cast<GstVideoRegionOfInterestMeta*>(m), &v)) continue;
    events::FaceObject f;
    f.track_id = v.track_id;
    f.x = v.x;
    f.y = v.y;
    f.w = v.width;
    f.h = v.height;
    f.fake_probability = v.fake_probability;
    f.label = str(v.label);
    f.window_start = v.window_start;
    f.window_end = v.window_end;
    f.frames_ago = v.frames_ago;
    f.window_fake_probability = v.window_fake_probability;
    f.model = str(v.model);
    f.trained = v.trained;
    out.push_back(std::move(f));
  }
  return out;
}

std::optional<events::WindowVerdict> window_of(const GstStructure* s) {
  GstMessage* msg = as_message(s);
  DfdWindowVerdict v;
  std::optional<events::WindowVerdict> out;
  if (dfd_message_parse_window(msg, &v)) {
    events::WindowVerdict w;
    w.origin = "element";
    w.track_id = v.track_id;
    w.start_frame = v.window_start;
    w.end_frame = v.window_end;
    w.fake_probability = v.fake_probability;
    w.label = str(v.label);
    w.track_fake_probability = v.track_fake_probability;
    w.track_label = str(v.track_label ? v.track_label : v.label);
    w.model = str(v.model);
    w.trained = v.trained;
    w.pts_ns = time_of(v.timestamp);
    w.start_pts_ns = time_of(v.start_pts);
    w.end_pts_ns = time_of(v.end_pts);
    w.frames = v.frames;
    w.final = v.final;
    out = w;
  }
  gst_message_unref(msg);
  return out;
}

std::optional<events::StreamSummary> summary_of(const GstStructure* s) {
  GstMessage* msg = as_message(s);
  DfdSummary v;
  std::optional<events::StreamSummary> out;
  if (dfd_message_parse_summary(msg, &v)) {
    events::StreamSummary sum;
    sum.origin = "element";
    sum.verdict = str(v.verdict);
    sum.fake_probability = v.fake_probability;
    sum.frames = v.frames;
    sum.model = str(v.model);
    sum.trained = v.trained;
    sum.windows_analysed = v.windows_analysed;
    sum.windows_skipped = v.windows_skipped;
    for (guint i = 0; i < v.n_tracks; i++) {
      DfdTrackSummary t;
      if (!dfd_message_get_summary_track(msg, i, &t)) continue;
      events::TrackSummary ts;
      ts.track_id = t.track_id;
      ts.verdict = str(t.verdict);
      ts.fake_probability = t.fake_probability;
      ts.frames = t.frames;
      ts.windows = t.windows;
      ts.first_frame = t.first_frame;
      ts.last_frame = t.last_frame;
      sum.tracks.push_back(ts);
    }
    out = sum;
  }
  gst_message_unref(msg);
  return out;
}

}  // namespace dfd::gst_events

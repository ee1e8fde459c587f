/* deepfakedetect: what the element attaches to buffers and posts on the bus,
 * and helpers to read it without hard-coding field names.
 *
 * Header only (static inline functions): include it and link GStreamer video.
 *
 * Per frame: one GstVideoRegionOfInterestMeta per tracked face, roi_type
 * "face", id = track id, with a parameter structure named "deepfake":
 *   fake-probability (gdouble)  the track's verdict (aggregate of its windows);
 *                               -1 while no window of the track is classified
 *   label            (gchararray) "FAKE", "REAL" or "PENDING"
 *   track-id         (guint64)
 *   window-start     (gint64)   first frame index of the latest classified window, -1 if none
 *   window-end       (gint64)   last frame index of that window, -1 if none
 *   frames-ago       (gint64)   this frame's index minus window-end, -1 if none
 *   window-fake-probability (gdouble) the latest window's own P(FAKE), -1 if none
 *   frame-fake-probability (gdouble) this frame's crop alone (sync mode), -1 if not given
 *   (sync mode: the window is the one covering the frame, so frames-ago may be
 *   negative; docs/element.md says what each mode attaches)
 *   model            (gchararray) model name (model card)
 *   trained          (gboolean) FALSE for an untrained (random) model
 *
 * On the bus (GST_MESSAGE_ELEMENT from the element):
 *   "deepfakedetect"         each classified window, see DfdWindowVerdict
 *   "deepfakedetect-frame"   each analysed crop alone (property frame-messages)
 *   "deepfakedetect-summary" once before EOS is forwarded, see DfdSummary
 *
 * Since: 0.1
 */
#ifndef DEEPFAKEDETECT_META_H
#define DEEPFAKEDETECT_META_H

#include <gst/gst.h>
#include <gst/video/video.h>
#include <string.h>

G_BEGIN_DECLS

#define DFD_ROI_TYPE "face"
#define DFD_PARAM_NAME "deepfake"
#define DFD_MESSAGE_WINDOW "deepfakedetect"
#define DFD_MESSAGE_FRAME "deepfakedetect-frame"
#define DFD_MESSAGE_SUMMARY "deepfakedetect-summary"

#define DFD_FIELD_FAKE_PROBABILITY "fake-probability"
#define DFD_FIELD_LABEL "label"
#define DFD_FIELD_TRACK_ID "track-id"
#define DFD_FIELD_WINDOW_START "window-start"
#define DFD_FIELD_WINDOW_END "window-end"
#define DFD_FIELD_FRAMES_AGO "frames-ago"
#define DFD_FIELD_WINDOW_FAKE_PROBABILITY "window-fake-probability"
#define DFD_FIELD_FRAME_FAKE_PROBABILITY "frame-fake-probability"
#define DFD_FIELD_MODEL "model"
#define DFD_FIELD_TRAINED "trained"
#define DFD_FIELD_TIMESTAMP "timestamp"
#define DFD_FIELD_STREAM_TIME "stream-time"
#define DFD_FIELD_RUNNING_TIME "running-time"
#define DFD_FIELD_BBOX "bbox"
/* Ensembles (model=a,b): each member's P(FAKE) of the window, in member order (Since: 0.2). */
#define DFD_FIELD_MEMBER_PROBABILITIES "member-fake-probabilities"

/* A face on a frame, from its ROI meta. Strings point into the meta. */
typedef struct {
  guint64 track_id;
  gint x, y, width, height;
  gdouble fake_probability; /* -1 while pending */
  const gchar *label;       /* "FAKE", "REAL", "PENDING" */
  gint64 window_start, window_end, frames_ago;
  gdouble window_fake_probability;
  const gchar *model;
  gboolean trained;
  gdouble frame_fake_probability; /* this frame's crop alone (sync mode), -1 if not given */
} DfdFaceVerdict;

/* A window verdict, from a "deepfakedetect" message. Strings point into the message. */
typedef struct {
  GstClockTime timestamp;     /* pts of the window's last frame */
  GstClockTime stream_time, running_time;
  GstClockTime start_pts, end_pts; /* first frame's pts; last frame's pts + duration */
  guint64 track_id;
  gint x, y, width, height;   /* the last frame's box */
  gdouble fake_probability;   /* this window */
  const gchar *label;         /* this window: "FAKE" or "REAL" */
  gdouble track_fake_probability; /* the track's aggregate after this window */
  const gchar *track_label;
  gint64 window_start, window_end; /* frame indices */
  gint frames;                /* crops in the window */
  gboolean final;             /* the track's last window */
  const gchar *model;
  gboolean trained;
} DfdWindowVerdict;

/* One analysed crop alone, from a "deepfakedetect-frame" message. */
typedef struct {
  guint64 track_id;
  gint64 frame;               /* frame index */
  GstClockTime timestamp, duration;
  gint x, y, width, height;
  gdouble fake_probability;   /* reference head on this crop only */
} DfdFrameVerdict;

/* The stream's verdict, from the "deepfakedetect-summary" message. The
 * per-track list stays in the message: see dfd_message_get_summary_track(). */
typedef struct {
  const gchar *verdict;       /* "FAKE", "REAL" or "NO_FACE" */
  gdouble fake_probability;
  guint64 frames, frames_analysed, windows_analysed, windows_skipped, crops_analysed;
  guint n_tracks;
  const gchar *model;
  gboolean trained;
} DfdSummary;

typedef struct {
  guint64 track_id;
  const gchar *verdict;
  gdouble fake_probability;
  gint windows, frames;
  gint64 first_frame, last_frame;
} DfdTrackSummary;

static inline gboolean
dfd_structure_get_bbox (const GstStructure * s, gint * x, gint * y, gint * w, gint * h)
{
  const GValue *v = gst_structure_get_value (s, DFD_FIELD_BBOX);
  gint out[4];
  guint i;
  if (!v || !GST_VALUE_HOLDS_ARRAY (v) || gst_value_array_get_size (v) != 4)
    return FALSE;
  for (i = 0; i < 4; i++) {
    const GValue *e = gst_value_array_get_value (v, i);
    if (!G_VALUE_HOLDS_INT (e))
      return FALSE;
    out[i] = g_value_get_int (e);
  }
  *x = out[0]; *y = out[1]; *w = out[2]; *h = out[3];
  return TRUE;
}

static inline GstClockTime
dfd_structure_get_time (const GstStructure * s, const gchar * field)
{
  GstClockTime t = GST_CLOCK_TIME_NONE;
  if (!gst_structure_get_uint64 (s, field, &t))
    return GST_CLOCK_TIME_NONE;
  return t;
}

/* The "deepfake" parameters of a face ROI meta; FALSE when it has none. */
static inline gboolean
dfd_roi_meta_get_verdict (GstVideoRegionOfInterestMeta * meta, DfdFaceVerdict * out)
{
  GstStructure *s;
  memset (out, 0, sizeof (*out));
  if (!meta)
    return FALSE;
  s = gst_video_region_of_interest_meta_get_param (meta, DFD_PARAM_NAME);
  if (!s)
    return FALSE;
  out->x = (gint) meta->x;
  out->y = (gint) meta->y;
  out->width = (gint) meta->w;
  out->height = (gint) meta->h;
  if (!gst_structure_get_uint64 (s, DFD_FIELD_TRACK_ID, &out->track_id) ||
      !gst_structure_get_double (s, DFD_FIELD_FAKE_PROBABILITY, &out->fake_probability))
    return FALSE;
  out->label = gst_structure_get_string (s, DFD_FIELD_LABEL);
  gst_structure_get_int64 (s, DFD_FIELD_WINDOW_START, &out->window_start);
  gst_structure_get_int64 (s, DFD_FIELD_WINDOW_END, &out->window_end);
  gst_structure_get_int64 (s, DFD_FIELD_FRAMES_AGO, &out->frames_ago);
  out->window_fake_probability = -1.0;
  gst_structure_get_double (s, DFD_FIELD_WINDOW_FAKE_PROBABILITY, &out->window_fake_probability);
  out->frame_fake_probability = -1.0;
  gst_structure_get_double (s, DFD_FIELD_FRAME_FAKE_PROBABILITY, &out->frame_fake_probability);
  out->model = gst_structure_get_string (s, DFD_FIELD_MODEL);
  gst_structure_get_boolean (s, DFD_FIELD_TRAINED, &out->trained);
  return TRUE;
}

/* Up to `max` face verdicts of a buffer; returns how many the buffer holds. */
static inline guint
dfd_buffer_get_verdicts (GstBuffer * buf, DfdFaceVerdict * out, guint max)
{
  gpointer state = NULL;
  GstMeta *m;
  guint n = 0;
  while ((m = gst_buffer_iterate_meta_filtered (buf, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    DfdFaceVerdict v;
    if (!dfd_roi_meta_get_verdict ((GstVideoRegionOfInterestMeta *) m, &v))
      continue;
    if (n < max && out)
      out[n] = v;
    n++;
  }
  return n;
}

static inline gboolean
dfd_message_has_name (GstMessage * msg, const gchar * name)
{
  const GstStructure *s;
  if (!msg || GST_MESSAGE_TYPE (msg) != GST_MESSAGE_ELEMENT)
    return FALSE;
  s = gst_message_get_structure (msg);
  return s && gst_structure_has_name (s, name);
}

static inline gboolean
dfd_message_parse_window (GstMessage * msg, DfdWindowVerdict * out)
{
  const GstStructure *s;
  memset (out, 0, sizeof (*out));
  if (!dfd_message_has_name (msg, DFD_MESSAGE_WINDOW))
    return FALSE;
  s = gst_message_get_structure (msg);
  if (!gst_structure_get_uint64 (s, DFD_FIELD_TRACK_ID, &out->track_id) ||
      !gst_structure_get_double (s, DFD_FIELD_FAKE_PROBABILITY, &out->fake_probability) ||
      !dfd_structure_get_bbox (s, &out->x, &out->y, &out->width, &out->height))
    return FALSE;
  out->timestamp = dfd_structure_get_time (s, DFD_FIELD_TIMESTAMP);
  out->stream_time = dfd_structure_get_time (s, DFD_FIELD_STREAM_TIME);
  out->running_time = dfd_structure_get_time (s, DFD_FIELD_RUNNING_TIME);
  out->start_pts = dfd_structure_get_time (s, "window-start-pts");
  out->end_pts = dfd_structure_get_time (s, "window-end-pts");
  out->label = gst_structure_get_string (s, DFD_FIELD_LABEL);
  out->track_fake_probability = out->fake_probability;
  gst_structure_get_double (s, "track-fake-probability", &out->track_fake_probability);
  out->track_label = gst_structure_get_string (s, "track-label");
  gst_structure_get_int64 (s, DFD_FIELD_WINDOW_START, &out->window_start);
  gst_structure_get_int64 (s, DFD_FIELD_WINDOW_END, &out->window_end);
  gst_structure_get_int (s, "frames", &out->frames);
  gst_structure_get_boolean (s, "final", &out->final);
  out->model = gst_structure_get_string (s, DFD_FIELD_MODEL);
  gst_structure_get_boolean (s, DFD_FIELD_TRAINED, &out->trained);
  return TRUE;
}

static inline gboolean
dfd_message_parse_frame (GstMessage * msg, DfdFrameVerdict * out)
{
  const GstStructure *s;
  memset (out, 0, sizeof (*out));
  if (!dfd_message_has_name (msg, DFD_MESSAGE_FRAME))
    return FALSE;
  s = gst_message_get_structure (msg);
  if (!gst_structure_get_uint64 (s, DFD_FIELD_TRACK_ID, &out->track_id) ||
      !gst_structure_get_int64 (s, "frame", &out->frame) ||
      !gst_structure_get_double (s, DFD_FIELD_FAKE_PROBABILITY, &out->fake_probability) ||
      !dfd_structure_get_bbox (s, &out->x, &out->y, &out->width, &out->height))
    return FALSE;
  out->timestamp = dfd_structure_get_time (s, DFD_FIELD_TIMESTAMP);
  out->duration = dfd_structure_get_time (s, "duration");
  return TRUE;
}

static inline gboolean
dfd_message_parse_summary (GstMessage * msg, DfdSummary * out)
{
  const GstStructure *s;
  const GValue *tracks;
  memset (out, 0, sizeof (*out));
  if (!dfd_message_has_name (msg, DFD_MESSAGE_SUMMARY))
    return FALSE;
  s = gst_message_get_structure (msg);
  out->verdict = gst_structure_get_string (s, "verdict");
  if (!out->verdict || !gst_structure_get_double (s, DFD_FIELD_FAKE_PROBABILITY, &out->fake_probability))
    return FALSE;
  gst_structure_get_uint64 (s, "frames", &out->frames);
  gst_structure_get_uint64 (s, "frames-analysed", &out->frames_analysed);
  gst_structure_get_uint64 (s, "windows-analysed", &out->windows_analysed);
  gst_structure_get_uint64 (s, "windows-skipped", &out->windows_skipped);
  gst_structure_get_uint64 (s, "crops-analysed", &out->crops_analysed);
  out->model = gst_structure_get_string (s, DFD_FIELD_MODEL);
  gst_structure_get_boolean (s, DFD_FIELD_TRAINED, &out->trained);
  tracks = gst_structure_get_value (s, "tracks");
  out->n_tracks = (tracks && GST_VALUE_HOLDS_ARRAY (tracks)) ? gst_value_array_get_size (tracks) : 0;
  return TRUE;
}

static inline gboolean
dfd_message_get_summary_track (GstMessage * msg, guint i, DfdTrackSummary * out)
{
  const GstStructure *s, *t;
  const GValue *tracks, *v;
  memset (out, 0, sizeof (*out));
  if (!dfd_message_has_name (msg, DFD_MESSAGE_SUMMARY))
    return FALSE;
  s = gst_message_get_structure (msg);
  tracks = gst_structure_get_value (s, "tracks");
  if (!tracks || !GST_VALUE_HOLDS_ARRAY (tracks) || i >= gst_value_array_get_size (tracks))
    return FALSE;
  v = gst_value_array_get_value (tracks, i);
  if (!GST_VALUE_HOLDS_STRUCTURE (v))
    return FALSE;
  t = gst_value_get_structure (v);
  gst_structure_get_uint64 (t, DFD_FIELD_TRACK_ID, &out->track_id);
  out->verdict = gst_structure_get_string (t, "verdict");
  gst_structure_get_double (t, DFD_FIELD_FAKE_PROBABILITY, &out->fake_probability);
  gst_structure_get_int (t, "windows", &out->windows);
  gst_structure_get_int (t, "frames", &out->frames);
  gst_structure_get_int64 (t, "first-frame", &out->first_frame);
  gst_structure_get_int64 (t, "last-frame", &out->last_frame);
  return TRUE;
}

G_END_DECLS

#endif /* DEEPFAKEDETECT_META_H */

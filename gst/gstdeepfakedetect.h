/* deepfakedetect: GStreamer element finding deepfaked faces in video.
 * Thin glue over the dfd library (src/stream_analyzer.h). */
#ifndef GST_DEEPFAKE_DETECT_H
#define GST_DEEPFAKE_DETECT_H

#include <gst/base/gstbasetransform.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_DEEPFAKE_DETECT (gst_deepfake_detect_get_type ())
G_DECLARE_FINAL_TYPE (GstDeepfakeDetect, gst_deepfake_detect, GST, DEEPFAKE_DETECT, GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE (deepfakedetect);

G_END_DECLS

#endif

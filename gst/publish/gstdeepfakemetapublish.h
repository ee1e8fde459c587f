/* deepfakemetapublish: sends what deepfakedetect found as JSON events to a
 * file, an MQTT broker or Kafka. Thin glue over src/events/. */
#ifndef GST_DEEPFAKE_META_PUBLISH_H
#define GST_DEEPFAKE_META_PUBLISH_H

#include <gst/base/gstbasetransform.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_DEEPFAKE_META_PUBLISH (gst_deepfake_meta_publish_get_type ())
G_DECLARE_FINAL_TYPE (GstDeepfakeMetaPublish, gst_deepfake_meta_publish, GST, DEEPFAKE_META_PUBLISH, GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE (deepfakemetapublish);

G_END_DECLS

#endif

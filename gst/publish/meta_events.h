/* What deepfakedetect attaches and sends, read into the plain structs of
 * src/events/event_json.h (through the parse helpers of deepfakedetect-meta.h,
 * so no field name is written twice). */
#pragma once
#include <gst/gst.h>
#include <gst/video/video.h>

#include <optional>
#include <vector>

#include "events/event_json.h"

namespace dfd::gst_events {

// The "deepfake" face ROI metas of a frame, in meta order.
std::vector<events::FaceObject> faces_of(GstBuffer* buf);

std::optional<uint64_t> time_of(GstClockTime t);

// A "deepfakedetect" window structure (the element message's, carried by a
// custom downstream event); nullopt if it is not one.
std::optional<events::WindowVerdict> window_of(const GstStructure* s);

// A "deepfakedetect-summary" structure; nullopt if it is not one.
std::optional<events::StreamSummary> summary_of(const GstStructure* s);

}  // namespace dfd::gst_events

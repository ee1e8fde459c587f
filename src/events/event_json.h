// The JSON events deepfakemetapublish sends (schema: docs/event-schema.json).
// Plain data in, one JSON object out; no GStreamer here, so the shapes are
// tested with GoogleTest alone. Three kinds, told apart by "type":
//   frame    one per frame with faces, in gvametaconvert's shape (resolution,
//            source, timestamp in ns, objects with a normalised bounding box,
//            pixel x/y/w/h, track id) plus a "deepfake" attribute per object
//   window   a newly classified window of a track
//   summary  the stream's verdict, once at end of stream
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace dfd::events {

using Json = nlohmann::ordered_json;

// One face on a frame, as the deepfakedetect ROI meta describes it.
struct FaceObject {
  uint64_t track_id = 0;
  int x = 0, y = 0, w = 0, h = 0;  // pixels
  double fake_probability = -1;    // the track's verdict; < 0 while PENDING
  std::string label;               // FAKE, REAL, PENDING
  int64_t window_start = -1, window_end = -1, frames_ago = -1;
  double window_fake_probability = -1;
  std::string model;
  bool trained = false;
};

struct FrameInfo {
  int width = 0, height = 0;
  std::string source;             // empty: null
  std::optional<uint64_t> pts_ns; // none: null
};

// A classified window. From the ROI metas only the fields there are known;
// the deepfakedetect element's own window verdict adds the optional ones.
struct WindowVerdict {
  uint64_t track_id = 0;
  int64_t start_frame = -1, end_frame = -1;
  double fake_probability = 0;        // the window's P(FAKE)
  double track_fake_probability = 0;  // the track's aggregate after it
  std::string track_label;
  std::string model;
  bool trained = false;
  std::optional<uint64_t> pts_ns;     // the frame it was seen on / its last frame
  // Only from the element's verdict ("origin": "element"):
  std::optional<std::string> label;
  std::optional<uint64_t> start_pts_ns, end_pts_ns;
  std::optional<int> frames;
  std::optional<bool> final;
  std::string origin = "metas";
};

struct TrackSummary {
  uint64_t track_id = 0;
  std::string verdict;   // FAKE, REAL (PENDING: never classified)
  double fake_probability = -1;
  int64_t frames = 0;    // frames the face was on
  int64_t windows = 0;
  int64_t first_frame = -1, last_frame = -1;
};

struct StreamSummary {
  std::string verdict;   // FAKE, REAL, NO_FACE
  double fake_probability = 0;
  uint64_t frames = 0;
  std::string model;
  bool trained = false;
  std::vector<TrackSummary> tracks;
  std::optional<uint64_t> windows_analysed, windows_skipped;  // element only
  std::string origin = "metas";
};

// Each builder takes the event's sequence number (the publisher's count of
// events made, so a consumer sees gaps) and returns the whole event.
Json frame_event(uint64_t seq, const FrameInfo& frame, const std::vector<FaceObject>& faces);
Json window_event(uint64_t seq, const std::string& source, const WindowVerdict& w);
Json summary_event(uint64_t seq, const std::string& source, const StreamSummary& s);

}  // namespace dfd::events

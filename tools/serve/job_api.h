// deepfake-serve --redis URL: the fleet's front end (docs/fleet.md).
//
//   POST /api/v1/jobs      a multipart upload (field "file"; it travels to a
//                          worker through Redis, with a time-to-live) or a
//                          JSON body {"uri": "file:///...|http(s)://...",
//                          "source": optional name}: 202 {"job_id", "state",
//                          "status_url"}, with Location
//   GET  /api/v1/jobs/ID   200 {"job_id", "state", "attempts", "source", ...,
//                          "report"} (the report once the state is "done";
//                          "error" when it failed or is dead), 404 unknown
//
// Redis away: 503 with a message naming it and Retry-After (the service
// itself goes on; /predict_media and /api/v1/analyze still scan locally).
// Runs on the server's main thread: each request makes at most a couple of
// Redis calls, with a 1 s connect and 5 s command timeout.
#pragma once
#include <libsoup/soup.h>

#include <cstddef>
#include <string>

#include "fleet/job_queue.h"
#include "fleet/redis_client.h"

namespace dfd::serve {

class JobApi {
 public:
  // Throws fleet::RedisUrlError for a bad URL; does not connect yet.
  JobApi(const std::string& redis_url, size_t max_upload_bytes, const std::string& prefix = "dfd");
  // /api/v1/jobs and /api/v1/jobs/...
  static bool handles(const char* path);
  // `too_large`: the server already refused the body as over the upload cap.
  void handle(SoupServerMessage* msg, const char* path, bool too_large);

 private:
  void submit(SoupServerMessage* msg);
  void lookup(SoupServerMessage* msg, const std::string& id);

  fleet::RedisClient redis_;
  fleet::JobQueue queue_;
  size_t max_upload_bytes_;
};

}  // namespace dfd::serve

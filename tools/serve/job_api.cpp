#include "job_api.h"

#include <nlohmann/json.hpp>

namespace dfd::serve {

using nlohmann::json;

namespace {

constexpr const char* kJobsPath = "/api/v1/jobs";

void respond_json(SoupServerMessage* msg, int status, const json& body) {
  const std::string text = body.dump();
  soup_server_message_set_status(msg, guint(status), nullptr);
  SoupMessageHeaders* h = soup_server_message_get_response_headers(msg);
  soup_message_headers_replace(h, "X-Content-Type-Options", "nosniff");
  soup_message_headers_replace(h, "Cache-Control", "no-store");
  soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, text.data(), text.size());
}

void respond_error(SoupServerMessage* msg, int status, const std::string& message) {
  respond_json(msg, status, {{"error", message}, {"status", status}});
}

void queue_unavailable(SoupServerMessage* msg, const std::exception& e) {
  respond_error(msg, SOUP_STATUS_SERVICE_UNAVAILABLE, std::string("the job queue is unavailable: ") + e.what());
  soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Retry-After", "5");
}

// The client's file name, for display only: its last path part, printable ASCII, at most 200 bytes.
std::string display_name(const char* name) {
  std::string n = name ? name : "";
  const auto slash = n.find_last_of("/\\");
  if (slash != std::string::npos) n = n.substr(slash + 1);
  std::string out;
  for (char c : n)
    if (c >= 0x20 && c < 0x7f) out += c;
  if (out.size() > 200) out.resize(200);
  return out.empty() ? "upload" : out;
}

// The multipart field "file": its bytes and name. False when there is none.
bool upload_field(SoupServerMessage* msg, std::string* bytes, std::string* name) {
  SoupMessageHeaders* rh = soup_server_message_get_request_headers(msg);
  GBytes* body = soup_message_body_flatten(soup_server_message_get_request_body(msg));
  SoupMultipart* mp = soup_multipart_new_from_message(rh, body);
  g_bytes_unref(body);
  if (!mp) return false;
  bool found = false;
  for (int i = 0; i < soup_multipart_get_length(mp) && !found; ++i) {
    SoupMessageHeaders* ph = nullptr;
    GBytes* pb = nullptr;
    char* disposition = nullptr;
    GHashTable* params = nullptr;
    if (!soup_multipart_get_part(mp, i, &ph, &pb) ||
        !soup_message_headers_get_content_disposition(ph, &disposition, &params))
      continue;
    if (g_strcmp0(static_cast<const char*>(g_hash_table_lookup(params, "name")), "file") == 0) {
      gsize size = 0;
      const auto* data = static_cast<const char*>(g_bytes_get_data(pb, &size));
      bytes->assign(data ? data : "", size);
      *name = display_name(static_cast<const char*>(g_hash_table_lookup(params, "filename")));
      found = true;
    }
    g_free(disposition);
    g_hash_table_destroy(params);
  }
  soup_multipart_free(mp);
  return found;
}

}  // namespace

JobApi::JobApi(const std::string& redis_url, size_t max_upload_bytes, const std::string& prefix)
    : redis_(redis_url, 1, 5), queue_(redis_, [&] {
        fleet::QueueConfig c;
        c.prefix = prefix;
        return c;
      }()),
      max_upload_bytes_(max_upload_bytes) {}

bool JobApi::handles(const char* path) {
  return g_strcmp0(path, kJobsPath) == 0 || g_str_has_prefix(path, "/api/v1/jobs/");
}

void JobApi::handle(SoupServerMessage* msg, const char* path, bool too_large) {
  const char* method = soup_server_message_get_method(msg);
  if (g_strcmp0(path, kJobsPath) == 0) {
    if (g_strcmp0(method, SOUP_METHOD_POST) != 0) {
      soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow", "POST");
      respond_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, std::string(kJobsPath) + " accepts POST only");
    } else if (too_large) {
      respond_error(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                    "upload larger than " + std::to_string(max_upload_bytes_ >> 20) + " MB");
    } else {
      submit(msg);
    }
    return;
  }
  if (g_strcmp0(method, SOUP_METHOD_GET) != 0 && g_strcmp0(method, SOUP_METHOD_HEAD) != 0) {
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow", "GET, HEAD");
    respond_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "GET only");
    return;
  }
  lookup(msg, path + std::string("/api/v1/jobs/").size());
}

void JobApi::submit(SoupServerMessage* msg) {
  const char* ctype = soup_message_headers_get_content_type(soup_server_message_get_request_headers(msg), nullptr);
  std::string bytes, name, uri;
  if (ctype && g_ascii_strcasecmp(ctype, "multipart/form-data") == 0) {
    if (!upload_field(msg, &bytes, &name))
      return respond_error(msg, SOUP_STATUS_BAD_REQUEST, "no field named 'file' in the multipart upload");
    if (bytes.empty()) return respond_error(msg, SOUP_STATUS_BAD_REQUEST, "the uploaded file is empty");
    if (bytes.size() > max_upload_bytes_)
      return respond_error(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                           "upload larger than " + std::to_string(max_upload_bytes_ >> 20) + " MB");
  } else if (ctype && g_ascii_strcasecmp(ctype, "application/json") == 0) {
    GBytes* body = soup_message_body_flatten(soup_server_message_get_request_body(msg));
    gsize size = 0;
    const auto* data = static_cast<const char*>(g_bytes_get_data(body, &size));
    const json j = json::parse(data ? data : "", data ? data + size : nullptr, nullptr, false);
    g_bytes_unref(body);
    if (!j.is_object() || !j.contains("uri") || !j["uri"].is_string())
      return respond_error(msg, SOUP_STATUS_BAD_REQUEST, "expected a JSON object with a string \"uri\"");
    uri = j["uri"].get<std::string>();
    if (j.contains("source") && j["source"].is_string()) name = display_name(j["source"].get<std::string>().c_str());
    try {
      fleet::check_media_uri(uri);
    } catch (const std::invalid_argument& e) {
      return respond_error(msg, SOUP_STATUS_BAD_REQUEST, e.what());
    }
  } else {
    return respond_error(msg, SOUP_STATUS_BAD_REQUEST,
                         "expected a multipart/form-data upload with a field named 'file', or a JSON body "
                         "{\"uri\": ...}");
  }
  std::string id;
  try {
    queue_.ensure_group();
    id = uri.empty() ? queue_.submit_upload(bytes, name) : queue_.submit_uri(uri, name);
  } catch (const fleet::RedisUnavailable& e) {
    return queue_unavailable(msg, e);
  } catch (const fleet::RedisError& e) {
    return queue_unavailable(msg, e);
  }
  const std::string where = std::string(kJobsPath) + "/" + id;
  respond_json(msg, SOUP_STATUS_ACCEPTED, {{"job_id", id}, {"state", "queued"}, {"status_url", where}});
  soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Location", where.c_str());
}

void JobApi::lookup(SoupServerMessage* msg, const std::string& id) {
  std::optional<fleet::JobStatus> st;
  try {
    st = queue_.status(id);
  } catch (const fleet::RedisUnavailable& e) {
    return queue_unavailable(msg, e);
  } catch (const fleet::RedisError& e) {
    return queue_unavailable(msg, e);
  }
  if (!st) return respond_error(msg, SOUP_STATUS_NOT_FOUND, "no such job (unknown id, or expired)");
  json j = {{"job_id", st->id},          {"state", st->state},           {"attempts", st->attempts},
            {"source", st->source},      {"submitted_ms", st->submitted_ms}};
  if (!st->uri.empty()) j["uri"] = st->uri;
  if (!st->worker.empty()) j["worker"] = st->worker;
  if (!st->error.empty()) j["error"] = st->error;
  if (st->state == "done") {
    j["verdict"] = st->verdict;
    j["fake_probability"] = st->probability;
    j["finished_ms"] = st->finished_ms;
    j["report"] = json::parse(st->report_json, nullptr, false);
  } else if (st->state == "dead") {
    j["finished_ms"] = st->finished_ms;
  }
  respond_json(msg, SOUP_STATUS_OK, j);
}

}  // namespace dfd::serve

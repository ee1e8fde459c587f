#include "server.h"

#include <dirent.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <list>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "model/architecture.h"
#include "dfd_config.h"
#include "report/heatmap.h"
#include "report/html_report.h"
#include "serve_index_html.h"  // kIndexHtml: tools/serve/index.html, embedded at build time
#include "checkpoint/state_dict.h"
#include "job_api.h"  // --redis: the fleet's job API (docs/fleet.md)
#include "history_api.h"

namespace dfd::serve {

using nlohmann::json;

namespace {

constexpr size_t kMultipartSlack = 64 * 1024;  // multipart framing allowed on top of the file cap

enum class Endpoint { Predict, Analyze };

std::string error_json(int status, const std::string& message) {
  return json{{"error", message}, {"status", status}}.dump();
}

void respond(SoupServerMessage* msg, int status, const std::string& content_type, const std::string& body) {
  soup_server_message_set_status(msg, guint(status), nullptr);
  SoupMessageHeaders* h = soup_server_message_get_response_headers(msg);
  soup_message_headers_replace(h, "X-Content-Type-Options", "nosniff");
  soup_message_headers_replace(h, "Cache-Control", "no-store");
  soup_server_message_set_response(msg, content_type.c_str(), SOUP_MEMORY_COPY, body.data(), body.size());
}

void respond_json(SoupServerMessage* msg, int status, const std::string& body) {
  respond(msg, status, "application/json", body);
}

void respond_error(SoupServerMessage* msg, int status, const std::string& message) {
  respond_json(msg, status, error_json(status, message));
}

int http_status_for(ScanErrorKind k) {
  switch (k) {
    case ScanErrorKind::NotMedia:
    case ScanErrorKind::Unsupported: return SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE;  // 415
    case ScanErrorKind::NoVideo:
    case ScanErrorKind::Decode: return SOUP_STATUS_UNPROCESSABLE_ENTITY;  // 422
    case ScanErrorKind::TooLarge: return SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE;  // 413: too many pixels
    case ScanErrorKind::Timeout: return SOUP_STATUS_GATEWAY_TIMEOUT;  // 504
    case ScanErrorKind::Cancelled: return SOUP_STATUS_SERVICE_UNAVAILABLE;
    case ScanErrorKind::Input:
    case ScanErrorKind::Model:
    case ScanErrorKind::Internal: return SOUP_STATUS_INTERNAL_SERVER_ERROR;
  }
  return SOUP_STATUS_INTERNAL_SERVER_ERROR;
}

// A client's file name, for display only: no directories, no control
// characters, at most 120 bytes. Never used to name a file.
std::string display_name(const char* name) {
  if (!name || !*name) return "upload";
  std::string s = name;
  const size_t slash = s.find_last_of("/\\");
  if (slash != std::string::npos) s = s.substr(slash + 1);
  std::string out;
  for (unsigned char c : s)
    if (c >= 0x20 && c != 0x7f) out += char(c);
  if (!g_utf8_validate(out.c_str(), gssize(out.size()), nullptr)) {
    gchar* v = g_utf8_make_valid(out.c_str(), gssize(out.size()));
    out = v;
    g_free(v);
  }
  if (out.size() > 120) {
    const gchar* end = g_utf8_find_prev_char(out.c_str(), out.c_str() + 120);
    out.resize(end ? size_t(end - out.c_str()) : 0);
  }
  return out.empty() ? "upload" : out;
}

double now_s() { return steady_seconds(); }

}  // namespace

struct Job {
  Server::Impl* impl = nullptr;
  SoupServerMessage* msg = nullptr;  // a reference is held
  Endpoint endpoint = Endpoint::Predict;
  bool html = false;
  std::string path;         // the upload, in the private directory
  std::string source_name;  // the client's file name, for display
  double started = 0;
  std::atomic<bool> cancel{false};
  std::thread thread;
  bool responded = false;   // main thread only
  bool gone = false;        // the client went away (main thread only)
  guint watchdog = 0;
  gulong sig_finished = 0, sig_disconnected = 0;
  // Written by the worker, read on the main thread once it is done.
  int status = 500;
  std::string content_type = "application/json";
  std::string body;
};

// One accepted TCP connection (the server accepts them itself, see accept()).
struct Conn {
  Server::Impl* impl = nullptr;
  std::string key;     // remote "address:port", unique among open connections
  std::string client;  // remote address: the per-client limit counts these
  GSocket* socket = nullptr;  // borrowed: alive as long as the connection object
  GObject* object = nullptr;  // the GSocketConnection (weakly referenced)
  guint timer = 0;     // the current phase's deadline
  const char* phase = "headers";
  bool stolen = false;  // answered and being closed by us (Linger), not libsoup
};

struct Server::Impl {
  ServerConfig config;
  std::shared_ptr<const Detector> model;
  std::string model_path;  // what the elements are given (load_shared key)
  std::string card_json;
  std::string private_dir;
  SoupServer* server = nullptr;
  GMainContext* context = nullptr;
  GMainLoop* loop = nullptr;
  int port = 0;
  std::list<Job*> jobs;  // running analyses (main thread only)
  uint64_t served = 0;
  GSocketService* service = nullptr;
  std::map<std::string, Conn*> conns;     // open connections by Conn::key (main thread only)
  std::map<std::string, int> per_client;  // open connections by remote address
  uint64_t refused_connections = 0, timed_out = 0;
  int lock_fd = -1;  // <private_dir>/.lock, flock()ed while the server lives
  std::unique_ptr<JobApi> job_api;  // --redis; null: no job API
  std::unique_ptr<ServeHistory> history;  // the result history; null: --history none

  void accept(GSocketConnection* c);
  void forget(Conn* k);
  Conn* conn_of(SoupServerMessage* msg);
  void set_deadline(Conn* k, double seconds, const char* phase);
  void request_started(SoupServerMessage* msg);
  // Answers now, on a connection taken from libsoup, and closes it without
  // reading the rest of the request (its body may be huge or endless).
  void answer_and_close(SoupServerMessage* msg, int status, const std::string& message);
  void handle(SoupServerMessage* msg, const char* path, GHashTable* query);
  void early(SoupServerMessage* msg, const char* path);
  void analyse(SoupServerMessage* msg, Endpoint ep, bool html);
  void start_job(Job* job);
  void finish_job(Job* job);
  void work(Job* job);
  std::string health() const;
};

namespace {

// Request-body size accounting for uploads sent without Content-Length.
struct BodyGuard {
  Server::Impl* impl = nullptr;
  size_t limit = 0;
  size_t seen = 0;
  bool too_large = false;
  std::string message;  // the 413's text
};

void on_got_chunk(SoupServerMessage* msg, GBytes* chunk, gpointer user) {
  auto* g = static_cast<BodyGuard*>(user);
  g->seen += g_bytes_get_size(chunk);
  if (!g->too_large && g->seen > g->limit) {
    g->too_large = true;
    SoupMessageBody* body = soup_server_message_get_request_body(msg);
    soup_message_body_set_accumulate(body, FALSE);
    soup_message_body_truncate(body);
    // Answered at once; the rest of the body is never read.
    g->impl->answer_and_close(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, g->message);
  }
}

void early_cb(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable*, gpointer user) {
  static_cast<Server::Impl*>(user)->early(msg, path);
}

void handler_cb(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable* query, gpointer user) {
  static_cast<Server::Impl*>(user)->handle(msg, path, query);
}

void request_started_cb(SoupServer*, SoupServerMessage* msg, gpointer user) {
  static_cast<Server::Impl*>(user)->request_started(msg);
}

void log_request(SoupServer*, SoupServerMessage* msg, gpointer) {
  GUri* uri = soup_server_message_get_uri(msg);
  std::fprintf(stderr, "deepfake-serve: %s %s %u\n", soup_server_message_get_method(msg),
               uri ? g_uri_get_path(uri) : "?", soup_server_message_get_status(msg));
}

bool is_upload_path(const char* path) {
  return g_strcmp0(path, "/predict_media") == 0 || g_strcmp0(path, "/api/v1/analyze") == 0 ||
         g_strcmp0(path, "/api/v1/jobs") == 0;
}

}  // namespace

void Server::Impl::early(SoupServerMessage* msg, const char* path) {
  // Every request body is capped: uploads at the configured size, anything else at 64 KiB.
  const bool upload = is_upload_path(path);
  if (upload && g_strcmp0(soup_server_message_get_method(msg), SOUP_METHOD_POST) != 0) {
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow", "POST");
    respond_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, std::string(path) + " accepts POST only");
    return;
  }
  const size_t limit = upload ? config.max_upload_bytes + kMultipartSlack : kMultipartSlack;
  const std::string too_large = upload ? "upload larger than " + std::to_string(config.max_upload_bytes >> 20) + " MB"
                                       : std::string("request body too large");
  SoupMessageHeaders* rh = soup_server_message_get_request_headers(msg);
  if (soup_message_headers_get_encoding(rh) == SOUP_ENCODING_CONTENT_LENGTH &&
      uint64_t(soup_message_headers_get_content_length(rh)) > uint64_t(limit)) {
    // Answered as soon as the headers are read, with or without "Expect:
    // 100-continue"; the body is never read (libsoup would read all of it
    // before answering).
    answer_and_close(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, too_large);
    return;
  }
  auto* guard = new BodyGuard;
  guard->impl = this;
  guard->message = too_large;
  guard->limit = limit;
  g_object_set_data_full(G_OBJECT(msg), "dfd-body-guard", guard, [](gpointer p) { delete static_cast<BodyGuard*>(p); });
  g_signal_connect(msg, "got-chunk", G_CALLBACK(on_got_chunk), guard);
}

void Server::Impl::handle(SoupServerMessage* msg, const char* path, GHashTable* query) {
  const char* method = soup_server_message_get_method(msg);
  auto* guard = static_cast<BodyGuard*>(g_object_get_data(G_OBJECT(msg), "dfd-body-guard"));
  if (guard && guard->too_large && !is_upload_path(path)) {
    respond_error(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "request body too large");
    return;
  }
  const bool get = g_strcmp0(method, SOUP_METHOD_GET) == 0 || g_strcmp0(method, SOUP_METHOD_HEAD) == 0;
  if (g_strcmp0(path, "/") == 0 || g_strcmp0(path, "/index.html") == 0) {
    if (!get) {
      soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow", "GET, HEAD");
      respond_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "GET only");
      return;
    }
    respond(msg, SOUP_STATUS_OK, "text/html; charset=utf-8", kIndexHtml);
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Content-Security-Policy",
                                 "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                 "img-src data:; connect-src 'self'; frame-src 'self' about:; form-action 'self'; "
                                 "base-uri 'none'");
    return;
  }
  if (g_strcmp0(path, "/healthz") == 0) {
    if (!get) {
      soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow", "GET, HEAD");
      respond_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "GET only");
      return;
    }
    respond_json(msg, SOUP_STATUS_OK, health());
    return;
  }
  if (g_strcmp0(path, "/predict_media") == 0) {
    analyse(msg, Endpoint::Predict, false);
    return;
  }
  if (g_strcmp0(path, "/api/v1/analyze") == 0) {
    const char* format = query ? static_cast<const char*>(g_hash_table_lookup(query, "format")) : nullptr;
    if (format && g_strcmp0(format, "html") != 0 && g_strcmp0(format, "json") != 0) {
      respond_error(msg, SOUP_STATUS_BAD_REQUEST, "format must be json or html");
      return;
    }
    analyse(msg, Endpoint::Analyze, g_strcmp0(format, "html") == 0);
    return;
  }
  if (is_history_path(path)) {
    if (history) history->handle(msg, path, query);
    else respond_history_off(msg);
    return;
  }
  if (job_api && JobApi::handles(path)) {
    job_api->handle(msg, path, guard && guard->too_large);
    return;
  }
  respond_error(msg, SOUP_STATUS_NOT_FOUND, "no such endpoint");
}

std::string Server::Impl::health() const {
  const ModelCard& card = model->card();
  json j = {{"status", "ok"},
            {"version", DFD_VERSION},
            {"model", {{"name", card.name}, {"trained", card.trained}, {"checksum", model->checksum()},
                       {"head", to_string(card.head)}}},
            {"busy", jobs.size()},
            {"max_concurrent", config.max_concurrent},
            {"max_upload_bytes", config.max_upload_bytes},
            {"max_pixels", config.scan.max_pixels},
            {"timeout_s", config.timeout_s},
            {"header_timeout_s", config.header_timeout_s},
            {"body_timeout_s", config.body_timeout_s},
            {"connections", conns.size()},
            {"max_connections", config.max_connections},
            {"max_connections_per_client", config.max_connections_per_client},
            {"refused_connections", refused_connections},
            {"timed_out_requests", timed_out},
            {"served", served}};
  if (!card.trained) j["model"]["notice"] = card.trust_notice();
  j["history"] = history != nullptr;
  return j.dump();
}

void Server::Impl::analyse(SoupServerMessage* msg, Endpoint ep, bool html) {
  if (g_strcmp0(soup_server_message_get_method(msg), SOUP_METHOD_POST) != 0) {
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow", "POST");
    respond_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "POST only");
    return;
  }
  auto* guard = static_cast<BodyGuard*>(g_object_get_data(G_OBJECT(msg), "dfd-body-guard"));
  if (guard && guard->too_large) {
    respond_error(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                  "upload larger than " + std::to_string(config.max_upload_bytes >> 20) + " MB");
    return;
  }
  SoupMessageHeaders* rh = soup_server_message_get_request_headers(msg);
  const char* ctype = soup_message_headers_get_content_type(rh, nullptr);
  if (!ctype || g_ascii_strcasecmp(ctype, "multipart/form-data") != 0) {
    respond_error(msg, SOUP_STATUS_BAD_REQUEST, "expected a multipart/form-data upload with a field named 'file'");
    return;
  }
  GBytes* body = soup_message_body_flatten(soup_server_message_get_request_body(msg));
  SoupMultipart* mp = soup_multipart_new_from_message(rh, body);
  g_bytes_unref(body);
  if (!mp) {
    respond_error(msg, SOUP_STATUS_BAD_REQUEST, "malformed multipart/form-data body");
    return;
  }
  GBytes* file = nullptr;
  std::string filename;
  for (int i = 0; i < soup_multipart_get_length(mp); ++i) {
    SoupMessageHeaders* ph = nullptr;
    GBytes* pb = nullptr;
    if (!soup_multipart_get_part(mp, i, &ph, &pb)) continue;
    char* disposition = nullptr;
    GHashTable* params = nullptr;
    if (soup_message_headers_get_content_disposition(ph, &disposition, &params)) {
      const char* name = static_cast<const char*>(g_hash_table_lookup(params, "name"));
      if (g_strcmp0(disposition, "form-data") == 0 && g_strcmp0(name, "file") == 0 && !file) {
        file = g_bytes_ref(pb);
        filename = display_name(static_cast<const char*>(g_hash_table_lookup(params, "filename")));
      }
      g_free(disposition);
      g_hash_table_destroy(params);
    }
  }
  soup_multipart_free(mp);
  if (!file) {
    respond_error(msg, SOUP_STATUS_BAD_REQUEST, "no field named 'file' in the upload");
    return;
  }
  const size_t size = g_bytes_get_size(file);
  if (size == 0) {
    g_bytes_unref(file);
    respond_error(msg, SOUP_STATUS_BAD_REQUEST, "the uploaded file is empty");
    return;
  }
  if (size > config.max_upload_bytes) {
    g_bytes_unref(file);
    respond_error(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                  "upload larger than " + std::to_string(config.max_upload_bytes >> 20) + " MB");
    return;
  }
  if (int(jobs.size()) >= config.max_concurrent) {
    g_bytes_unref(file);
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Retry-After", "2");
    respond_error(msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
                  "busy: " + std::to_string(jobs.size()) + " analyses running, try again shortly");
    return;
  }
  // Into the private directory under a name we choose; 0600, created exclusively.
  std::string tmpl = private_dir + "/upload-XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  const int fd = g_mkstemp_full(name.data(), O_WRONLY | O_CLOEXEC, 0600);
  int err = fd >= 0 ? 0 : errno;
  if (fd >= 0) {
    const auto* p = static_cast<const char*>(g_bytes_get_data(file, nullptr));
    size_t off = 0;
    while (!err && off < size) {
      const ssize_t n = write(fd, p + off, size - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) err = n < 0 ? errno : EIO;
      else off += size_t(n);
    }
    if (close(fd) != 0 && !err) err = errno;
  }
  g_bytes_unref(file);
  if (err) {
    if (fd >= 0) g_remove(name.data());
    // A full disk is the server's condition, not the client's: 507 says so
    // (RFC 4918), any other failure is a plain 500. Nothing is left behind.
    const std::string why = std::string("could not store the upload: ") + g_strerror(err);
    g_printerr("deepfake-serve: %s (%s)\n", why.c_str(), private_dir.c_str());
    respond_error(msg, err == ENOSPC || err == EDQUOT ? SOUP_STATUS_INSUFFICIENT_STORAGE : SOUP_STATUS_INTERNAL_SERVER_ERROR,
                  why);
    return;
  }
  auto* job = new Job;
  job->impl = this;
  job->msg = SOUP_SERVER_MESSAGE(g_object_ref(msg));
  job->endpoint = ep;
  job->html = html;
  job->path = name.data();
  job->source_name = filename;
  job->started = now_s();
  start_job(job);
}

namespace {

void on_client_gone(SoupServerMessage*, gpointer user) {
  auto* job = static_cast<Job*>(user);
  job->gone = true;
  job->cancel = true;
}

gboolean on_watchdog(gpointer user) {
  auto* job = static_cast<Job*>(user);
  job->watchdog = 0;
  job->cancel = true;
  if (!job->responded && !job->gone) {
    job->responded = true;
    respond_error(job->msg, SOUP_STATUS_GATEWAY_TIMEOUT, "the analysis took too long");
    soup_server_message_unpause(job->msg);
  }
  return G_SOURCE_REMOVE;
}

gboolean on_job_done(gpointer user) {
  auto* job = static_cast<Job*>(user);
  job->impl->finish_job(job);
  return G_SOURCE_REMOVE;
}

}  // namespace

void Server::Impl::start_job(Job* job) {
  jobs.push_back(job);
  soup_server_message_pause(job->msg);
  job->sig_finished = g_signal_connect(job->msg, "finished", G_CALLBACK(on_client_gone), job);
  job->sig_disconnected = g_signal_connect(job->msg, "disconnected", G_CALLBACK(on_client_gone), job);
  // The worker enforces the limit itself; this catches a pipeline that does not stop.
  job->watchdog = g_timeout_add_full(G_PRIORITY_DEFAULT, guint((config.timeout_s + 5.0) * 1000), on_watchdog, job, nullptr);
  GMainContext* ctx = context;
  job->thread = std::thread([job, ctx] {
    job->impl->work(job);
    g_main_context_invoke_full(ctx, G_PRIORITY_DEFAULT, on_job_done, job, nullptr);
  });
}

void Server::Impl::work(Job* job) {
  ScanOptions o = config.scan;
  o.input = job->path;
  o.source_name = job->source_name;
  o.model = model_path;
  o.timeout_s = config.timeout_s;
  o.cancel = &job->cancel;
  o.frame_probabilities = true;
  try {
    auto scan = [&] {
      Report s = run_scan(o, {}, model.get());
      // Clients see the model file's name, not where it lives on the server.
      gchar* base = g_path_get_basename(s.model.source.c_str());
      s.model.source = base;
      g_free(base);
      return s;
    };
    // Through the history: the same bytes already scanned with this model
    // are answered from it; a new result is recorded.
    ServeHistory::Outcome outcome;
    if (history) outcome = history->scan(job->path, job->source_name, scan);
    else outcome.report = scan();
    Report& r = outcome.report;
    if (job->endpoint == Endpoint::Predict) {
      // The original Flask API's response, unchanged.
      json j;
      if (r.verdict == "NO_FACE") {
        j = {{"label", "No Face Detected"}, {"confidence", "0.00"}, {"img", ""}};
      } else {
        char conf[32];
        std::snprintf(conf, sizeof conf, "%.4f", verdict_confidence(r));
        std::string img;
        const auto images = render_report_images(o, *model, verdict_crop(r), job->started);
        if (!images.empty() && !images.front().heatmap_png.empty()) img = base64_encode(images.front().heatmap_png);
        j = {{"label", r.verdict}, {"confidence", conf}, {"img", img}};
      }
      job->body = j.dump();
      job->content_type = "application/json";
    } else {
      const auto images =
          render_report_images(o, *model, most_suspicious(r, config.images_per_track), job->started);
      if (job->html) {
        HtmlReportOptions ho;
        ho.model_card_json = card_json;
        ho.images = images;
        ho.generator = std::string("deepfake-serve ") + DFD_VERSION;
        job->body = render_html_report(r, ho);
        job->content_type = "text/html; charset=utf-8";
      } else {
        json j = json::parse(r.to_json(-1));
        j["model_card"] = json::parse(card_json);
        j["images"] = json::parse(report_images_json(images));
        j["confidence"] = verdict_confidence(r);
        if (history) {
          j["cached"] = outcome.cached;
          if (outcome.scan_id) j["scan_id"] = outcome.scan_id;
          if (!outcome.error.empty()) j["history_error"] = outcome.error;
        }
        job->body = j.dump();
        job->content_type = "application/json";
      }
    }
    job->status = SOUP_STATUS_OK;
  } catch (const ScanError& e) {
    job->status = http_status_for(e.kind());
    job->body = json{{"error", e.what()}, {"kind", to_string(e.kind())}, {"status", job->status}}.dump();
    job->content_type = "application/json";
  } catch (const std::exception& e) {
    job->status = SOUP_STATUS_INTERNAL_SERVER_ERROR;
    job->body = error_json(job->status, std::string("internal error: ") + e.what());
    job->content_type = "application/json";
  }
}

void Server::Impl::finish_job(Job* job) {
  if (job->thread.joinable()) job->thread.join();
  if (job->watchdog) g_source_remove(job->watchdog);
  g_signal_handler_disconnect(job->msg, job->sig_finished);
  g_signal_handler_disconnect(job->msg, job->sig_disconnected);
  if (!job->responded && !job->gone) {
    job->responded = true;
    respond(job->msg, job->status, job->content_type, job->body);
    if (job->content_type.rfind("text/html", 0) == 0)
      soup_message_headers_replace(soup_server_message_get_response_headers(job->msg), "Content-Security-Policy",
                                   "default-src 'none'; img-src data:; style-src 'unsafe-inline'");
    soup_server_message_unpause(job->msg);
  }
  g_remove(job->path.c_str());
  g_object_unref(job->msg);
  jobs.remove(job);
  ++served;
  delete job;
}

// ------------------------------------------------------------- connections
//
// The server accepts connections itself (a GSocketService) and hands each to
// libsoup (soup_server_accept_iostream), so that it can count them per client
// and close the ones that stall. Without libsoup listeners libsoup serves
// one request per connection; every response says "Connection: close".

namespace {

std::string address_string(GSocketAddress* a, bool with_port) {
  if (!a || !G_IS_INET_SOCKET_ADDRESS(a)) return "?";
  GInetSocketAddress* ia = G_INET_SOCKET_ADDRESS(a);
  gchar* ip = g_inet_address_to_string(g_inet_socket_address_get_address(ia));
  std::string s = ip ? ip : "?";
  g_free(ip);
  if (with_port) s += "|" + std::to_string(g_inet_socket_address_get_port(ia));
  return s;
}

// A whole HTTP/1.1 response with a JSON error, for connections libsoup does not (or no longer) handle.
std::string raw_error_response(int status, const std::string& message, const char* extra_headers = "") {
  const std::string body = error_json(status, message);
  const char* reason = soup_status_get_phrase(guint(status));
  return "HTTP/1.1 " + std::to_string(status) + " " + (reason ? reason : "Error") +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n" + extra_headers +
         "\r\n" + body;
}

// Best effort, never blocks: the socket's send buffer takes a short answer whole.
void send_now(GSocket* sock, const std::string& bytes) {
  g_socket_send_with_blocking(sock, bytes.data(), bytes.size(), FALSE, nullptr, nullptr);
}

void on_connection_finalized(gpointer data, GObject*) {
  auto* k = static_cast<Conn*>(data);
  k->impl->forget(k);
}

gboolean on_incoming(GSocketService*, GSocketConnection* c, GObject*, gpointer user) {
  static_cast<Server::Impl*>(user)->accept(c);
  return TRUE;
}

gboolean on_deadline(gpointer data) {
  auto* k = static_cast<Conn*>(data);
  k->timer = 0;
  if (k->stolen) return G_SOURCE_REMOVE;
  Server::Impl& s = *k->impl;
  ++s.timed_out;
  const bool reading = g_strcmp0(k->phase, "headers") == 0 || g_strcmp0(k->phase, "body") == 0;
  std::fprintf(stderr, "deepfake-serve: %s: %s not %s in time, connection closed\n", k->client.c_str(),
               reading ? (g_strcmp0(k->phase, "headers") == 0 ? "request headers" : "request body") : "response",
               reading ? "received" : "taken");
  if (reading) {
    // Nothing has been written on this connection yet: a 408 tells the client why.
    const double secs = g_strcmp0(k->phase, "headers") == 0 ? s.config.header_timeout_s : s.config.body_timeout_s;
    char text[96];
    std::snprintf(text, sizeof text, "the request %s did not arrive within %g s",
                  g_strcmp0(k->phase, "headers") == 0 ? "headers" : "body", secs);
    send_now(k->socket, raw_error_response(SOUP_STATUS_REQUEST_TIMEOUT, text));
  }
  // libsoup sees the end of the stream and closes the connection itself.
  g_socket_shutdown(k->socket, TRUE, TRUE, nullptr);
  return G_SOURCE_REMOVE;
}

void on_got_headers(SoupServerMessage* msg, gpointer user) {
  auto* s = static_cast<Server::Impl*>(user);
  if (Conn* k = s->conn_of(msg)) s->set_deadline(k, s->config.body_timeout_s, "body");
}

void on_got_body(SoupServerMessage* msg, gpointer user) {
  auto* s = static_cast<Server::Impl*>(user);
  // The analysis has its own limit (a 504 at timeout_s + 5 s at the latest);
  // then the client has body_timeout_s to take the answer.
  if (Conn* k = s->conn_of(msg)) s->set_deadline(k, s->config.timeout_s + 5 + s->config.body_timeout_s, "response");
}

// A connection taken from libsoup: the answer is written, our side is shut
// for writing, and what the client still sends is read and dropped for up to
// 2 s (so the answer is not lost to a reset), then the connection is closed.
struct Linger {
  GIOStream* stream = nullptr;
  GSocket* socket = nullptr;
  std::string out;
  GCancellable* cancel = nullptr;
  guint timer = 0;
  size_t drained = 0;
  char buf[16384];
};

void linger_close(Linger* l) {
  if (l->timer) g_source_remove(l->timer);
  l->timer = 0;
  g_io_stream_close(l->stream, nullptr, nullptr);
  g_object_unref(l->stream);
  if (l->socket) g_object_unref(l->socket);
  g_object_unref(l->cancel);
  delete l;
}

void linger_read(Linger* l);

void on_linger_read(GObject* src, GAsyncResult* res, gpointer data) {
  auto* l = static_cast<Linger*>(data);
  const gssize n = g_input_stream_read_finish(G_INPUT_STREAM(src), res, nullptr);
  if (n > 0 && l->drained < (64u << 20)) {
    l->drained += size_t(n);
    linger_read(l);
    return;
  }
  linger_close(l);
}

void linger_read(Linger* l) {
  g_input_stream_read_async(g_io_stream_get_input_stream(l->stream), l->buf, sizeof l->buf, G_PRIORITY_DEFAULT,
                            l->cancel, on_linger_read, l);
}

void on_linger_written(GObject* src, GAsyncResult* res, gpointer data) {
  auto* l = static_cast<Linger*>(data);
  if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(src), res, nullptr, nullptr)) {
    linger_close(l);
    return;
  }
  g_output_stream_flush(G_OUTPUT_STREAM(src), nullptr, nullptr);
  if (l->socket) g_socket_shutdown(l->socket, FALSE, TRUE, nullptr);
  linger_read(l);
}

gboolean on_linger_timeout(gpointer data) {
  auto* l = static_cast<Linger*>(data);
  l->timer = 0;
  g_cancellable_cancel(l->cancel);  // the pending write or read finishes with an error and closes
  return G_SOURCE_REMOVE;
}

}  // namespace

void Server::Impl::accept(GSocketConnection* c) {
  GSocketAddress* remote = g_socket_connection_get_remote_address(c, nullptr);
  GSocketAddress* local = g_socket_connection_get_local_address(c, nullptr);
  const std::string client = address_string(remote, false);
  GSocket* sock = g_socket_connection_get_socket(c);
  std::string why;
  if (int(conns.size()) >= config.max_connections)
    why = "too many connections (" + std::to_string(config.max_connections) + ")";
  else if (per_client[client] >= config.max_connections_per_client)
    why = "too many connections from " + client + " (" + std::to_string(config.max_connections_per_client) + ")";
  if (!why.empty()) {
    ++refused_connections;
    std::fprintf(stderr, "deepfake-serve: %s: connection refused: %s\n", client.c_str(), why.c_str());
    send_now(sock, raw_error_response(SOUP_STATUS_SERVICE_UNAVAILABLE, why + ", try again shortly", "Retry-After: 2\r\n"));
    g_socket_shutdown(sock, FALSE, TRUE, nullptr);
    g_io_stream_close(G_IO_STREAM(c), nullptr, nullptr);
    if (per_client[client] == 0) per_client.erase(client);
    if (remote) g_object_unref(remote);
    if (local) g_object_unref(local);
    return;
  }
  auto* k = new Conn;
  k->impl = this;
  k->client = client;
  k->key = address_string(remote, true);
  k->socket = sock;
  k->object = G_OBJECT(c);
  conns[k->key] = k;
  ++per_client[client];
  g_object_weak_ref(G_OBJECT(c), on_connection_finalized, k);
  set_deadline(k, config.header_timeout_s, "headers");
  GError* err = nullptr;
  if (!soup_server_accept_iostream(server, G_IO_STREAM(c), local, remote, &err)) {
    std::fprintf(stderr, "deepfake-serve: %s: %s\n", client.c_str(), err ? err->message : "could not accept");
    g_clear_error(&err);
    g_io_stream_close(G_IO_STREAM(c), nullptr, nullptr);
  }
  if (remote) g_object_unref(remote);
  if (local) g_object_unref(local);
}

void Server::Impl::forget(Conn* k) {
  if (k->timer) g_source_remove(k->timer);
  auto it = conns.find(k->key);
  if (it != conns.end() && it->second == k) conns.erase(it);
  auto pc = per_client.find(k->client);
  if (pc != per_client.end() && --pc->second <= 0) per_client.erase(pc);
  delete k;
}

Conn* Server::Impl::conn_of(SoupServerMessage* msg) {
  auto it = conns.find(address_string(soup_server_message_get_remote_address(msg), true));
  return it == conns.end() || it->second->stolen ? nullptr : it->second;
}

void Server::Impl::set_deadline(Conn* k, double seconds, const char* phase) {
  if (k->timer) g_source_remove(k->timer);
  k->timer = g_timeout_add_full(G_PRIORITY_DEFAULT, guint(std::max(1.0, seconds * 1000)), on_deadline, k, nullptr);
  k->phase = phase;
}

void Server::Impl::request_started(SoupServerMessage* msg) {
  // One request per connection, and every answer says so.
  soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection", "close");
  g_signal_connect(msg, "got-headers", G_CALLBACK(on_got_headers), this);
  g_signal_connect(msg, "got-body", G_CALLBACK(on_got_body), this);
}

void Server::Impl::answer_and_close(SoupServerMessage* msg, int status, const std::string& message) {
  GUri* uri = soup_server_message_get_uri(msg);
  std::fprintf(stderr, "deepfake-serve: %s %s %d (answered before the body, connection closed)\n",
               soup_server_message_get_method(msg), uri ? g_uri_get_path(uri) : "?", status);
  Conn* k = conn_of(msg);
  GSocket* sock = k ? G_SOCKET(g_object_ref(k->socket)) : nullptr;
  GIOStream* stream = soup_server_message_steal_connection(msg);
  if (!stream) {  // not on a connection any more: let libsoup answer
    if (sock) g_object_unref(sock);
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection", "close");
    respond_error(msg, status, message);
    return;
  }
  if (k) {
    k->stolen = true;
    if (k->timer) g_source_remove(k->timer);
    k->timer = 0;
  }
  auto* l = new Linger;
  l->stream = stream;
  l->socket = sock;
  l->cancel = g_cancellable_new();
  l->out = raw_error_response(status, message);
  l->timer = g_timeout_add(2000, on_linger_timeout, l);
  g_output_stream_write_all_async(g_io_stream_get_output_stream(stream), l->out.data(), l->out.size(),
                                  G_PRIORITY_DEFAULT, l->cancel, on_linger_written, l);
}

// -------------------------------------------------------- private directory

namespace {

constexpr const char* kDirPrefix = "deepfake-serve-";
constexpr const char* kLockName = ".lock";

// Removes the regular files in `dirfd` (our uploads, the model copy, the lock).
void remove_files_in(int dirfd) {
  const int fd = dup(dirfd);
  if (fd < 0) return;
  DIR* d = fdopendir(fd);
  if (!d) {
    close(fd);
    return;
  }
  while (struct dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    unlinkat(dirfd, e->d_name, 0);  // fails, harmlessly, on anything that is a directory
  }
  closedir(d);
}

// Private directories of servers that died (crash, SIGKILL, power loss):
// ours (same user, 0700, our name pattern) whose lock is free, or, without a
// lock file (made by an older version), untouched for an hour. A live server
// holds its lock, so its directory is never touched.
void remove_stale_dirs(const std::string& parent) {
  const int pfd = open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (pfd < 0) return;
  const int lfd = dup(pfd);
  DIR* d = lfd >= 0 ? fdopendir(lfd) : nullptr;
  if (!d) {
    if (lfd >= 0) close(lfd);
    close(pfd);
    return;
  }
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d))
    if (std::strncmp(e->d_name, kDirPrefix, std::strlen(kDirPrefix)) == 0 &&
        std::strlen(e->d_name) == std::strlen(kDirPrefix) + 6)
      names.push_back(e->d_name);
  closedir(d);
  for (const auto& n : names) {
    struct stat st;
    if (fstatat(pfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
        (st.st_mode & 0777) != 0700)
      continue;
    const int dfd = openat(pfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) continue;
    struct stat dst;
    if (fstat(dfd, &dst) != 0 || dst.st_ino != st.st_ino || dst.st_dev != st.st_dev) {
      close(dfd);
      continue;
    }
    bool stale = false;
    const int lock = openat(dfd, kLockName, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (lock >= 0) {
      stale = flock(lock, LOCK_EX | LOCK_NB) == 0;  // the owner's lock went with its process
    } else if (errno == ENOENT) {
      stale = std::difftime(std::time(nullptr), st.st_mtime) > 3600;
    }
    if (stale) {
      remove_files_in(dfd);
      if (unlinkat(pfd, n.c_str(), AT_REMOVEDIR) == 0)
        std::fprintf(stderr, "deepfake-serve: removed %s/%s, left by a server that did not stop cleanly\n",
                     parent.c_str(), n.c_str());
    }
    if (lock >= 0) close(lock);
    close(dfd);
  }
  close(pfd);
}

}  // namespace

// ------------------------------------------------------------------ Server

Server::Server(ServerConfig config) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.config = std::move(config);
  if (s.config.max_concurrent < 1) throw std::runtime_error("--max-concurrent must be at least 1");
  if (s.config.max_upload_bytes < 1) throw std::runtime_error("--max-upload-mb must be positive");
  if (s.config.timeout_s <= 0) throw std::runtime_error("--timeout-s must be positive");

  if (s.config.header_timeout_s <= 0 || s.config.body_timeout_s <= 0)
    throw std::runtime_error("--header-timeout-s and --body-timeout-s must be positive");
  if (s.config.max_connections < 1 || s.config.max_connections_per_client < 1)
    throw std::runtime_error("--max-connections and --max-connections-per-client must be at least 1");
  scan_init(s.config.plugin_dir);
  // Opened before anything is made, so that a bad --history leaves nothing behind.
  std::shared_ptr<dfd::history::HistoryStore> store;
  if (!s.config.history.empty()) store = dfd::history::open_history_store(s.config.history);

  const std::string parent = s.config.temp_parent.empty() ? g_get_tmp_dir() : s.config.temp_parent;
  remove_stale_dirs(parent);
  gchar* dir = g_build_filename(parent.c_str(), "deepfake-serve-XXXXXX", nullptr);
  if (!g_mkdtemp_full(dir, 0700)) {
    const std::string m = "could not create a private directory in " + parent + ": " + g_strerror(errno);
    g_free(dir);
    throw std::runtime_error(m);
  }
  s.private_dir = dir;
  g_free(dir);
  // The lock that says "alive" to other servers' start-up clean-up: taken
  // under another name, then renamed, so a .lock is never seen unlocked.
  const std::string taking = s.private_dir + "/.lock-new", lock = s.private_dir + "/" + kLockName;
  s.lock_fd = open(taking.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (s.lock_fd < 0 || flock(s.lock_fd, LOCK_EX | LOCK_NB) != 0 || rename(taking.c_str(), lock.c_str()) != 0) {
    const std::string m = "could not lock the private directory " + s.private_dir + ": " + g_strerror(errno);
    if (s.lock_fd >= 0) close(s.lock_fd);
    g_remove(taking.c_str());
    g_rmdir(s.private_dir.c_str());
    throw std::runtime_error(m);
  }

  const ModelOptions mo = model_options_of(s.config.scan);
  try {
    // The element's default (the shipped trained MesoNet) is named
    // explicitly, so that every element of every request finds this one
    // instance by path (load_detector_shared).
    s.model_path = s.config.model.empty() ? find_default_model() : s.config.model;
    if (s.model_path.empty()) {
      std::string where;
      for (const auto& c : default_model_candidates()) where += " " + c;
      throw std::runtime_error("no --model given and the default model is not installed (looked in" + where + ")");
    }
    s.model = load_detector_shared(s.model_path, mo);
  } catch (const std::exception& e) {
    g_remove((s.private_dir + "/" + kLockName).c_str());
    g_rmdir(s.private_dir.c_str());
    close(s.lock_fd);
    throw std::runtime_error(std::string("could not load the model: ") + e.what());
  }
  s.card_json = s.model->card().to_json();
  if (store)
    s.history = std::make_unique<ServeHistory>(store, s.model->card().name,
                                               history_model_key(s.model->checksum(), s.card_json, s.config.scan));
  if (!s.config.redis_url.empty()) s.job_api = std::make_unique<JobApi>(s.config.redis_url, s.config.max_upload_bytes);
  s.context = g_main_context_ref_thread_default();
  s.loop = g_main_loop_new(s.context, FALSE);
  s.server = soup_server_new("server-header", "deepfake-serve ", nullptr);
  for (const char* p : {"/predict_media", "/api/v1/analyze", "/"}) {
    soup_server_add_early_handler(s.server, p, early_cb, &s, nullptr);
    soup_server_add_handler(s.server, p, handler_cb, &s, nullptr);
  }
  g_signal_connect(s.server, "request-started", G_CALLBACK(request_started_cb), &s);
  g_signal_connect(s.server, "request-finished", G_CALLBACK(log_request), nullptr);
}

Server::~Server() {
  Impl& s = *impl_;
  if (s.service) {
    g_socket_service_stop(s.service);
    g_socket_listener_close(G_SOCKET_LISTENER(s.service));
  }
  if (s.server) soup_server_disconnect(s.server);
  for (Job* j : s.jobs) j->cancel = true;
  while (!s.jobs.empty()) g_main_context_iteration(s.context, TRUE);
  while (g_main_context_iteration(s.context, FALSE)) {
  }
  if (s.server) g_object_unref(s.server);
  if (s.service) g_object_unref(s.service);
  // Connections still open (being closed): no callbacks into this object any more.
  for (auto& [key, k] : s.conns) {
    if (k->timer) g_source_remove(k->timer);
    g_object_weak_unref(k->object, on_connection_finalized, k);
    delete k;
  }
  s.conns.clear();
  if (s.loop) g_main_loop_unref(s.loop);
  if (s.context) g_main_context_unref(s.context);
  // Anything left in the private directory (nothing, normally) goes with it.
  if (GDir* d = g_dir_open(s.private_dir.c_str(), 0, nullptr)) {
    while (const gchar* n = g_dir_read_name(d)) {
      gchar* p = g_build_filename(s.private_dir.c_str(), n, nullptr);
      g_remove(p);
      g_free(p);
    }
    g_dir_close(d);
  }
  g_rmdir(s.private_dir.c_str());
  if (s.lock_fd >= 0) close(s.lock_fd);
}

int Server::listen() {
  Impl& s = *impl_;
  GInetAddress* addr = g_inet_address_new_from_string(s.config.bind.c_str());
  if (!addr) throw std::runtime_error("--bind must be an IP address, not '" + s.config.bind + "'");
  if (s.config.port < 0 || s.config.port > 65535) {
    g_object_unref(addr);
    throw std::runtime_error("--port must be 0..65535");
  }
  GSocketAddress* sa = g_inet_socket_address_new(addr, guint16(s.config.port));
  g_object_unref(addr);
  GError* err = nullptr;
  // Connections are accepted here and handed to libsoup (see accept()).
  s.service = g_socket_service_new();
  g_socket_listener_set_backlog(G_SOCKET_LISTENER(s.service), 128);
  GSocketAddress* effective = nullptr;
  const gboolean ok = g_socket_listener_add_address(G_SOCKET_LISTENER(s.service), sa, G_SOCKET_TYPE_STREAM,
                                                    G_SOCKET_PROTOCOL_TCP, nullptr, &effective, &err);
  g_object_unref(sa);
  if (!ok) {
    const std::string m = err ? err->message : "listen failed";
    g_clear_error(&err);
    throw std::runtime_error("cannot listen on " + s.config.bind + ":" + std::to_string(s.config.port) + ": " + m);
  }
  s.port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(effective));
  g_object_unref(effective);
  g_signal_connect(s.service, "incoming", G_CALLBACK(on_incoming), &s);
  g_socket_service_start(s.service);
  return s.port;
}

std::string Server::url() const {
  const std::string& b = impl_->config.bind;
  const bool v6 = b.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + b + "]" : b) + ":" + std::to_string(impl_->port);
}

std::string Server::model_summary() const {
  const ModelCard& card = impl_->model->card();
  std::string s = "model " + card.name + " (" + impl_->model->source() + ", checksum " + impl_->model->checksum() + ")";
  if (!card.trained) s += ": " + card.trust_notice() + "; every response says so";
  return s;
}

void Server::run(bool handle_signals) {
  Impl& s = *impl_;
  guint sigint = 0, sigterm = 0;
  if (handle_signals) {
    auto stop = [](gpointer loop) -> gboolean {
      g_main_loop_quit(static_cast<GMainLoop*>(loop));
      return G_SOURCE_CONTINUE;
    };
    sigint = g_unix_signal_add(SIGINT, stop, s.loop);
    sigterm = g_unix_signal_add(SIGTERM, stop, s.loop);
  }
  g_main_loop_run(s.loop);
  if (sigint) g_source_remove(sigint);
  if (sigterm) g_source_remove(sigterm);
}

void Server::quit() { g_main_loop_quit(impl_->loop); }

}  // namespace dfd::serve

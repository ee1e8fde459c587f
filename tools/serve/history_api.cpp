#include "history_api.h"

#include <glib.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "report/html_report.h"

namespace dfd::serve {

using history::ScanEntry;
using history::ScanQuery;
using nlohmann::json;

namespace {

constexpr const char* kScansPath = "/api/v1/scans";
constexpr int kMaxLimit = 500;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void respond(SoupServerMessage* msg, int status, const std::string& body,
             const std::string& content_type = "application/json") {
  soup_server_message_set_status(msg, guint(status), nullptr);
  SoupMessageHeaders* h = soup_server_message_get_response_headers(msg);
  soup_message_headers_replace(h, "X-Content-Type-Options", "nosniff");
  soup_message_headers_replace(h, "Cache-Control", "no-store");
  if (content_type.rfind("text/html", 0) == 0)  // a stored report: no script, nothing external
    soup_message_headers_replace(h, "Content-Security-Policy",
                                 "default-src 'none'; img-src data:; style-src 'unsafe-inline'");
  soup_server_message_set_response(msg, content_type.c_str(), SOUP_MEMORY_COPY, body.data(), body.size());
}

void respond_error(SoupServerMessage* msg, int status, const std::string& message) {
  respond(msg, status, dump({{"error", message}, {"status", status}}));
}

std::string iso_time(int64_t time_ms) {
  GDateTime* t = g_date_time_new_from_unix_utc(time_ms / 1000);
  if (!t) return "";
  gchar* text = g_date_time_format(t, "%Y-%m-%dT%H:%M:%S");
  char millis[8];
  std::snprintf(millis, sizeof millis, ".%03dZ", int(time_ms % 1000));
  std::string out = std::string(text ? text : "") + millis;
  g_free(text);
  g_date_time_unref(t);
  return out;
}

json entry_json(const ScanEntry& e, bool with_report) {
  json j = {{"id", e.id},         {"time", iso_time(e.time_ms)},    {"time_ms", e.time_ms},
            {"source", e.source}, {"media_sha256", e.media_sha256}, {"model", e.model},
            {"model_key", e.model_key}, {"verdict", e.verdict},     {"probability", e.probability}};
  if (with_report) {
    json report = json::parse(e.report_json, nullptr, false);
    j["report"] = report.is_discarded() ? json(e.report_json) : report;
  }
  return j;
}

// A whole decimal number in [low, high], or false.
bool parse_int(const char* text, int64_t low, int64_t high, int64_t* out) {
  if (!text || !*text || std::strlen(text) > 19) return false;
  for (const char* p = text; *p; ++p)
    if (!g_ascii_isdigit(*p)) return false;
  const int64_t value = g_ascii_strtoll(text, nullptr, 10);
  if (value < low || value > high) return false;
  *out = value;
  return true;
}

// Milliseconds since 1970, or an ISO 8601 time (a zone is required unless it
// is a bare date-time, which is taken as UTC).
bool parse_time(const char* text, int64_t* out) {
  if (parse_int(text, 0, int64_t(1) << 52, out)) return true;
  GTimeZone* utc = g_time_zone_new_utc();
  GDateTime* t = text ? g_date_time_new_from_iso8601(text, utc) : nullptr;
  g_time_zone_unref(utc);
  if (!t) return false;
  *out = g_date_time_to_unix(t) * 1000 + g_date_time_get_microsecond(t) / 1000;
  g_date_time_unref(t);
  return *out > 0;
}

bool valid_verdict(const std::string& verdict) {
  if (verdict.empty() || verdict.size() > 32) return false;
  for (char c : verdict)
    if (!(g_ascii_isupper(c) || c == '_')) return false;
  return true;
}

// The query of GET /api/v1/scans; an empty string, or why it is bad.
std::string parse_query(GHashTable* query, ScanQuery* out) {
  if (!query) return "";
  GHashTableIter it;
  gpointer key, value;
  g_hash_table_iter_init(&it, query);
  while (g_hash_table_iter_next(&it, &key, &value)) {
    const std::string name = static_cast<const char*>(key);
    const char* text = static_cast<const char*>(value);
    int64_t number = 0;
    if (name == "limit") {
      if (!parse_int(text, 1, kMaxLimit, &number)) return "limit must be 1.." + std::to_string(kMaxLimit);
      out->limit = int(number);
    } else if (name == "offset") {
      if (!parse_int(text, 0, 1000000000, &number)) return "offset must be a whole number, 0 or more";
      out->offset = int(number);
    } else if (name == "verdict") {
      out->verdict = text ? text : "";
      if (!valid_verdict(out->verdict)) return "verdict must be REAL, FAKE or NO_FACE";
    } else if (name == "since" || name == "until") {
      if (!parse_time(text, &number))
        return name + " must be milliseconds since 1970 or an ISO 8601 time (e.g. 2026-12-01T09:00:00Z)";
      (name == "since" ? out->since_ms : out->until_ms) = number;
    } else {
      return "unknown parameter '" + name + "' (limit, offset, verdict, since, until)";
    }
  }
  if (out->since_ms && out->until_ms && out->since_ms > out->until_ms) return "since is after until";
  return "";
}

}  // namespace

// ---------------------------------------------------------------- helpers

std::string resolve_history_url(const std::string& option, const std::string& data_dir) {
  std::string url = option;
  const char* env = std::getenv("DFD_HISTORY");
  if (url.empty() && env && *env) url = env;
  if (url == "none") return "";
  if (!url.empty()) return url;
  const std::string dir = data_dir.empty() ? std::string(g_get_user_data_dir()) + "/deepfakedetect" : data_dir;
  if (g_mkdir_with_parents(dir.c_str(), 0700) != 0)
    throw std::runtime_error("cannot create the data directory " + dir + ": " + g_strerror(errno));
  return "sqlite:" + dir + "/history.db";
}

std::string history_model_key(const std::string& checksum, const std::string& card_json, const ScanOptions& scan) {
  const json settings = {{"head", scan.head},
                         {"window_size", scan.window_size},
                         {"window_stride", scan.window_stride},
                         {"interval", scan.interval},
                         {"detect_interval", scan.detect_interval},
                         {"face_detector", scan.face_detector},
                         {"face_detector_model", scan.face_detector_model},
                         {"min_face_size", scan.min_face_size},
                         {"max_faces", scan.max_faces},
                         {"crop_margin", scan.crop_margin},
                         {"threshold", scan.threshold},
                         {"aggregation", scan.aggregation},
                         // Another precision or device scores the same bytes
                         // a little differently: never answer from the other's.
                         {"precision", scan.precision.empty() ? "fp32" : scan.precision},
                         {"device", scan.device}};
  const std::string text = card_json + "\n" + settings.dump();
  gchar* digest = g_compute_checksum_for_string(G_CHECKSUM_SHA256, text.c_str(), gssize(text.size()));
  const std::string key = checksum + ":" + std::string(digest).substr(0, 16);
  g_free(digest);
  return key;
}

std::string sha256_of_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  GChecksum* sum = g_checksum_new(G_CHECKSUM_SHA256);
  std::vector<char> block(1 << 16);
  while (in.read(block.data(), std::streamsize(block.size())) || in.gcount() > 0)
    g_checksum_update(sum, reinterpret_cast<const guchar*>(block.data()), gssize(in.gcount()));
  const bool failed = in.bad();
  const std::string hex = g_checksum_get_string(sum);
  g_checksum_free(sum);
  if (failed) throw std::runtime_error("cannot read " + path);
  return hex;
}

bool is_history_path(const char* path) {
  return path && (g_strcmp0(path, kScansPath) == 0 || g_str_has_prefix(path, "/api/v1/scans/"));
}

void respond_history_off(SoupServerMessage* msg) {
  respond_error(msg, SOUP_STATUS_NOT_FOUND, "the result history is off (deepfake-serve --history none)");
}

// ------------------------------------------------------------ ServeHistory

ServeHistory::ServeHistory(std::shared_ptr<history::HistoryStore> store, std::string model_name, std::string model_key)
    : store_(std::move(store)),
      model_name_(std::move(model_name)),
      model_key_(std::move(model_key)),
      context_(g_main_context_ref_thread_default()),
      in_flight_(std::make_shared<std::atomic<int>>(0)),
      closing_(std::make_shared<std::atomic<bool>>(false)) {}

ServeHistory::~ServeHistory() {
  *closing_ = true;
  while (*in_flight_ > 0) g_main_context_iteration(context_, TRUE);
  g_main_context_unref(context_);
}

ServeHistory::Outcome ServeHistory::scan(const std::string& upload_path, const std::string& source_name,
                                         const std::function<Report()>& run) {
  Outcome out;
  std::string sha;
  try {
    sha = sha256_of_file(upload_path);
    if (auto hit = store_->find_media(sha, model_key_)) {
      try {
        out.report = Report::from_json(hit->report_json);
        out.report.source = source_name;  // the same bytes, under this upload's name
        out.scan_id = hit->id;
        out.cached = true;
        return out;
      } catch (const std::exception& e) {  // a damaged entry: scanned again, and recorded anew
        std::fprintf(stderr, "deepfake-serve: history: entry %lld has an unreadable report (%s); scanning again\n",
                     static_cast<long long>(hit->id), e.what());
      }
    }
  } catch (const std::exception& e) {
    out.error = e.what();
    std::fprintf(stderr, "deepfake-serve: %s (scanning without the history)\n", e.what());
  }
  out.report = run();
  if (sha.empty()) return out;
  ScanEntry entry;
  entry.time_ms = g_get_real_time() / 1000;
  entry.source = source_name;
  entry.media_sha256 = sha;
  entry.model = model_name_;
  entry.model_key = model_key_;
  entry.verdict = out.report.verdict;
  entry.probability = out.report.fake_probability;
  entry.report_json = out.report.to_json(-1);
  try {
    out.scan_id = store_->record(entry);
  } catch (const std::exception& e) {
    out.error = e.what();
    std::fprintf(stderr, "deepfake-serve: %s (the result was answered, not recorded)\n", e.what());
  }
  return out;
}

// One API request, answered on the thread pool.
struct ServeHistory::Call {
  enum class Kind { List, Get, Delete } kind = Kind::List;
  std::shared_ptr<history::HistoryStore> store;
  SoupServerMessage* msg = nullptr;  // a reference is held
  int64_t id = 0;
  ScanQuery query;
  bool html = false;  // GET ?format=html: the stored report as the HTML report (without pictures)
  int status = SOUP_STATUS_INTERNAL_SERVER_ERROR;
  std::string body;
  std::string content_type = "application/json";
  std::shared_ptr<std::atomic<int>> in_flight;
  std::shared_ptr<std::atomic<bool>> closing;
  // The two hand-offs between threads, ordered in our own code and not only
  // inside GTask's thread pool (whose GLib-internal locks ThreadSanitizer
  // cannot see): `submitted` is set by the main loop once the call is filled
  // in and read by the worker before execute(); `executed` is set by the
  // worker after execute() and read by on_done() first.
  std::atomic<bool> submitted{false};
  std::atomic<bool> executed{false};

  void execute() {
    try {
      if (kind == Kind::List) {
        int64_t total = 0;
        json scans = json::array();
        for (const auto& e : store->list(query, &total)) scans.push_back(entry_json(e, false));
        status = SOUP_STATUS_OK;
        body = dump({{"total", total}, {"limit", query.limit}, {"offset", query.offset}, {"scans", scans}});
      } else if (kind == Kind::Get) {
        const auto entry = store->get(id);
        status = entry ? SOUP_STATUS_OK : SOUP_STATUS_NOT_FOUND;
        if (entry && html) {
          // Pictures are not kept (the media is gone): the report's verdict,
          // charts and model fields only.
          HtmlReportOptions options;
          options.title = "Deepfake report: " + entry->source + " (scan " + std::to_string(id) + ", " +
                          iso_time(entry->time_ms) + ")";
          options.generator = "deepfake-serve result history";
          body = render_html_report(Report::from_json(entry->report_json), options);
          content_type = "text/html; charset=utf-8";
        } else {
          body = entry ? dump(entry_json(*entry, true))
                       : dump({{"error", "no scan " + std::to_string(id)}, {"status", status}});
        }
      } else {
        const bool removed = store->remove(id);
        status = removed ? SOUP_STATUS_OK : SOUP_STATUS_NOT_FOUND;
        body = removed ? dump({{"deleted", id}}) : dump({{"error", "no scan " + std::to_string(id)}, {"status", status}});
      }
    } catch (const std::exception& e) {  // the database is down, full, ...: the client may retry
      content_type = "application/json";
      status = SOUP_STATUS_SERVICE_UNAVAILABLE;
      body = dump({{"error", e.what()}, {"status", status}});
      std::fprintf(stderr, "deepfake-serve: %s\n", e.what());
    }
  }
};

void ServeHistory::handle(SoupServerMessage* msg, const char* path, GHashTable* query) {
  const char* method = soup_server_message_get_method(msg);
  const bool get = g_strcmp0(method, SOUP_METHOD_GET) == 0 || g_strcmp0(method, SOUP_METHOD_HEAD) == 0;
  auto call = std::make_unique<Call>();
  if (g_strcmp0(path, kScansPath) == 0 || g_strcmp0(path, "/api/v1/scans/") == 0) {
    if (!get) {
      soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow", "GET, HEAD");
      respond_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "GET only");
      return;
    }
    const std::string bad = parse_query(query, &call->query);
    if (!bad.empty()) {
      respond_error(msg, SOUP_STATUS_BAD_REQUEST, bad);
      return;
    }
  } else {
    const bool remove = g_strcmp0(method, SOUP_METHOD_DELETE) == 0;
    if (!get && !remove) {
      soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow", "GET, HEAD, DELETE");
      respond_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "GET or DELETE only");
      return;
    }
    if (!parse_int(path + std::strlen("/api/v1/scans/"), 1, INT64_MAX, &call->id)) {
      respond_error(msg, SOUP_STATUS_BAD_REQUEST, "a scan id is a positive whole number");
      return;
    }
    call->kind = remove ? Call::Kind::Delete : Call::Kind::Get;
    const char* format = query ? static_cast<const char*>(g_hash_table_lookup(query, "format")) : nullptr;
    if ((format && g_strcmp0(format, "html") != 0 && g_strcmp0(format, "json") != 0) ||
        (query && g_hash_table_size(query) > (format ? 1u : 0u))) {
      respond_error(msg, SOUP_STATUS_BAD_REQUEST, "the only parameter is format=json or format=html");
      return;
    }
    call->html = !remove && g_strcmp0(format, "html") == 0;
  }
  call->store = store_;
  call->msg = SOUP_SERVER_MESSAGE(g_object_ref(msg));
  call->in_flight = in_flight_;
  call->closing = closing_;
  ++*in_flight_;
  soup_server_message_pause(msg);
  call->submitted.store(true, std::memory_order_release);
  GTask* task = g_task_new(nullptr, nullptr, on_done, call.get());
  g_task_set_task_data(task, call.release(), nullptr);
  g_task_run_in_thread(task, [](GTask* t, gpointer, gpointer data, GCancellable*) {
    auto* c = static_cast<Call*>(data);
    if (c->submitted.load(std::memory_order_acquire)) {  // always, by GTask's contract
      c->execute();
      c->executed.store(true, std::memory_order_release);
    }
    g_task_return_boolean(t, TRUE);
  });
  g_object_unref(task);
}

void ServeHistory::on_done(GObject*, GAsyncResult*, gpointer data) {
  std::unique_ptr<Call> call(static_cast<Call*>(data));
  if (!call->executed.load(std::memory_order_acquire)) {  // never, by GTask's contract
    call->status = SOUP_STATUS_INTERNAL_SERVER_ERROR;
    call->body = R"({"error": "the history request did not run"})";
  }
  if (!*call->closing) {
    respond(call->msg, call->status, call->body, call->content_type);
    soup_server_message_unpause(call->msg);
  }
  g_object_unref(call->msg);
  --*call->in_flight;
}

}  // namespace dfd::serve

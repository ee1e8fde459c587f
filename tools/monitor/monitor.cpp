#include "monitor.h"

#include <glib-unix.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace dfd::monitor {

using nlohmann::json;

namespace {

constexpr const char* kSources = "/api/v1/sources";

Monitor::Reply json_reply(int status, const json& j) { return {status, "application/json", j.dump() + "\n"}; }
Monitor::Reply error_reply(int status, const std::string& message) {
  return json_reply(status, {{"error", message}, {"status", status}});
}

}  // namespace

Monitor::Monitor(MonitorConfig config) : config_(std::move(config)) {
  for (const SourceConfig& s : config_.sources) {
    auto runner = std::make_unique<SourceRunner>(s, config_.reconnect);
    order_.push_back(s.id);
    sources_[s.id] = std::move(runner);
  }
  started_us_ = g_get_monotonic_time();
  tick_ = g_timeout_add(500, on_tick, this);
}

Monitor::~Monitor() {
  if (tick_) g_source_remove(tick_);
  if (server_) {
    soup_server_disconnect(server_);
    g_object_unref(server_);
  }
  sources_.clear();  // each stops its pipeline
}

void Monitor::start() {
  for (const std::string& id : order_) {
    try {
      sources_[id]->start();
    } catch (const BuildError& e) {
      throw BuildError("sources '" + id + "': " + e.what());
    }
  }
}

gboolean Monitor::on_tick(gpointer p) {
  auto* self = static_cast<Monitor*>(p);
  for (auto& [id, runner] : self->sources_) runner->tick();
  return G_SOURCE_CONTINUE;
}

std::vector<SourceFigures> Monitor::all_figures() const {
  std::vector<SourceFigures> out;
  for (const std::string& id : order_) out.push_back(sources_.at(id)->figures());
  return out;
}

Monitor::Reply Monitor::add_source(const std::string& body) {
  SourceConfig s;
  try {
    s = parse_source_json(body, config_.detect_defaults, config_.publish_defaults);
  } catch (const ConfigError& e) {
    return error_reply(400, e.what());
  }
  if (sources_.count(s.id)) return error_reply(409, "id: a source '" + s.id + "' exists already");
  auto runner = std::make_unique<SourceRunner>(s, config_.reconnect);
  try {
    runner->start();
  } catch (const BuildError& e) {
    return error_reply(400, e.what());
  }
  const json figures = figures_json(runner->figures());
  order_.push_back(s.id);
  sources_[s.id] = std::move(runner);
  g_printerr("deepfake-monitor: added %s (%s)\n", s.id.c_str(), s.uri.c_str());
  return json_reply(201, figures);
}

Monitor::Reply Monitor::handle(const std::string& method, const std::string& path, const std::string& body) {
  if (path == "/healthz") {
    if (method != "GET" && method != "HEAD") return error_reply(405, "use GET");
    int playing = 0;
    for (const auto& f : all_figures()) playing += f.state == SourceState::Playing;
    return json_reply(200, {{"status", "ok"}, {"sources", sources_.size()}, {"playing", playing}});
  }
  if (path == "/metrics") {
    if (method != "GET" && method != "HEAD") return error_reply(405, "use GET");
    ProcessFigures p;
    p.rss_bytes = process_rss_bytes();
    p.uptime_s = double(g_get_monotonic_time() - started_us_) / 1e6;
    const auto m = config_.detect_defaults.find("model");
    p.model = m == config_.detect_defaults.end() ? "default" : m->second;
    return {200, "text/plain; version=0.0.4; charset=utf-8", render_metrics(all_figures(), p)};
  }
  if (path == kSources || path == std::string(kSources) + "/") {
    if (method == "GET" || method == "HEAD") {
      json list = json::array();
      for (const auto& f : all_figures()) list.push_back(figures_json(f));
      return json_reply(200, {{"sources", list}});
    }
    if (method == "POST") return add_source(body);
    return error_reply(405, "use GET or POST");
  }
  const std::string prefix = std::string(kSources) + "/";
  if (path.compare(0, prefix.size(), prefix) == 0) {
    const std::string id = path.substr(prefix.size());
    const auto it = sources_.find(id);
    if (it == sources_.end()) return error_reply(404, "no source '" + id + "'");
    if (method == "GET" || method == "HEAD") return json_reply(200, figures_json(it->second->figures()));
    if (method == "DELETE") {
      sources_.erase(it);  // stops its pipeline
      order_.erase(std::find(order_.begin(), order_.end(), id));
      g_printerr("deepfake-monitor: removed %s\n", id.c_str());
      return json_reply(200, {{"deleted", id}});
    }
    return error_reply(405, "use GET or DELETE");
  }
  return error_reply(404, "no such endpoint: " + path);
}

void Monitor::on_request(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable*, gpointer p) {
  auto* self = static_cast<Monitor*>(p);
  SoupMessageBody* req = soup_server_message_get_request_body(msg);
  std::string body;
  if (req && req->length > 0) body.assign(req->data, size_t(req->length));
  Reply r = self->handle(soup_server_message_get_method(msg), path, body);
  soup_server_message_set_status(msg, guint(r.status), nullptr);
  soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Cache-Control", "no-store");
  soup_server_message_set_response(msg, r.content_type.c_str(), SOUP_MEMORY_COPY, r.body.data(), r.body.size());
}

int Monitor::listen() {
  server_ = soup_server_new("server-header", "deepfake-monitor ", nullptr);
  soup_server_add_handler(server_, nullptr, on_request, this, nullptr);
  GInetAddress* addr = g_inet_address_new_from_string(config_.bind.c_str());
  if (!addr) throw std::runtime_error("listen.bind: not an IP address: '" + config_.bind + "'");
  GSocketAddress* sa = g_inet_socket_address_new(addr, guint16(config_.port));
  g_object_unref(addr);
  GError* err = nullptr;
  const gboolean ok = soup_server_listen(server_, sa, SoupServerListenOptions(0), &err);
  g_object_unref(sa);
  if (!ok) {
    const std::string m = err ? err->message : "cannot listen";
    g_clear_error(&err);
    throw std::runtime_error("cannot listen on " + config_.bind + ":" + std::to_string(config_.port) + ": " + m);
  }
  GSList* uris = soup_server_get_uris(server_);
  port_ = uris ? g_uri_get_port(static_cast<GUri*>(uris->data)) : config_.port;
  g_slist_free_full(uris, reinterpret_cast<GDestroyNotify>(g_uri_unref));
  return port_;
}

std::string Monitor::url() const {
  const bool v6 = config_.bind.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + config_.bind + "]" : config_.bind) + ":" + std::to_string(port_);
}

gboolean Monitor::on_signal(gpointer loop) {
  g_main_loop_quit(static_cast<GMainLoop*>(loop));
  return G_SOURCE_CONTINUE;
}

void Monitor::run() {
  GMainLoop* loop = g_main_loop_new(nullptr, FALSE);
  const guint sigint = g_unix_signal_add(SIGINT, on_signal, loop);
  const guint sigterm = g_unix_signal_add(SIGTERM, on_signal, loop);
  g_main_loop_run(loop);
  g_source_remove(sigint);
  g_source_remove(sigterm);
  g_main_loop_unref(loop);
}

}  // namespace dfd::monitor

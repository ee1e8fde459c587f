#include "events/mqtt_publisher.h"

#include <mosquitto.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "events/event_queue.h"

namespace dfd::events {
namespace {

constexpr size_t kMaxInflight = 64;
constexpr int kKeepaliveS = 30;

std::string unique_client_id() {
  static std::atomic<unsigned> n{0};
  return "deepfakemetapublish-" + std::to_string(getpid()) + "-" + std::to_string(n++);
}

class MqttPublisher : public Publisher {
 public:
  explicit MqttPublisher(const PublisherConfig& c) : config_(c), queue_(c.max_buffered) {
    static std::once_flag once;
    std::call_once(once, [] { mosquitto_lib_init(); });
    const bool tls = !c.ca_file.empty();
    auto [host, port] = split_address(c.address.empty() ? "localhost" : c.address, tls ? 8883 : 1883);
    where_ = host + ":" + std::to_string(port);
    const std::string id = c.client_id.empty() ? unique_client_id() : c.client_id;
    mosq_ = mosquitto_new(id.c_str(), true, this);
    if (!mosq_) throw std::runtime_error("MQTT: cannot create a client: " + std::string(std::strerror(errno)));
    try {
      configure(c, tls);
    } catch (...) {
      mosquitto_destroy(mosq_);
      throw;
    }
    mosquitto_loop_start(mosq_);
    const int rc = mosquitto_connect_async(mosq_, host.c_str(), port, kKeepaliveS);
    if (rc != MOSQ_ERR_SUCCESS) unreachable(rc == MOSQ_ERR_ERRNO ? std::strerror(errno) : mosquitto_strerror(rc));
    sender_ = std::thread([this] { send_loop(); });
  }

  ~MqttPublisher() override { finish(std::chrono::milliseconds(0)); }

  void publish(std::string event) override {
    if (finished_) {
      queue_.count_dropped(1);
      return;
    }
    queue_.push(std::move(event));
  }

  void end_of_stream(std::chrono::milliseconds) override {}

  void finish(std::chrono::milliseconds timeout) override {
    if (finished_.exchange(true)) return;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait_for(lk, timeout, [&] { return inflight_.empty() && queue_.size() == 0; });
      stopping_ = true;
    }
    cv_.notify_all();
    queue_.close();
    sender_.join();
    mosquitto_disconnect(mosq_);
    mosquitto_loop_stop(mosq_, false);
    std::lock_guard<std::mutex> lk(mu_);
    queue_.count_dropped(queue_.take_all().size() + inflight_.size());
    inflight_.clear();
    mosquitto_destroy(mosq_);
    mosq_ = nullptr;
  }

  PublisherStats stats() const override {
    std::lock_guard<std::mutex> lk(mu_);
    return {published_, queue_.dropped(), queue_.size() + inflight_.size(), connected_};
  }

 private:
  void configure(const PublisherConfig& c, bool tls) {
    mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    if (!c.username.empty() &&
        mosquitto_username_pw_set(mosq_, c.username.c_str(), c.password.empty() ? nullptr : c.password.c_str()))
      throw std::runtime_error("MQTT: bad username or password");
    if (tls) {
      const int rc = mosquitto_tls_set(mosq_, c.ca_file.c_str(), nullptr,
                                       c.cert_file.empty() ? nullptr : c.cert_file.c_str(),
                                       c.key_file.empty() ? nullptr : c.key_file.c_str(), nullptr);
      if (rc != MOSQ_ERR_SUCCESS)
        throw std::runtime_error("MQTT: TLS set-up failed (ca-file '" + c.ca_file + "', cert-file '" + c.cert_file +
                                 "', key-file '" + c.key_file + "'): " + mosquitto_strerror(rc));
    } else if (!c.cert_file.empty() || !c.key_file.empty()) {
      throw std::runtime_error("MQTT: cert-file and key-file need ca-file (TLS)");
    }
    mosquitto_connect_callback_set(mosq_, [](mosquitto*, void* self, int rc) { static_cast<MqttPublisher*>(self)->on_connect(rc); });
    mosquitto_disconnect_callback_set(mosq_, [](mosquitto*, void* self, int rc) { static_cast<MqttPublisher*>(self)->on_disconnect(rc); });
    mosquitto_publish_callback_set(mosq_, [](mosquitto*, void* self, int mid) { static_cast<MqttPublisher*>(self)->on_publish(mid); });
    const int max_delay = std::max(1, c.max_reconnect_interval_s);
    mosquitto_reconnect_delay_set(mosq_, 1, max_delay, true);
  }

  void on_connect(int rc) {
    bool again;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (rc != 0) {
        if (!warned_) config_warn("MQTT broker " + where_ + " refused the connection: " + mosquitto_connack_string(rc));
        warned_ = true;
        return;
      }
      connected_ = true;
      warned_ = false;
      again = ever_connected_;
      ever_connected_ = true;
    }
    cv_.notify_all();
    if (config_.on_info) config_.on_info(std::string(again ? "re" : "") + "connected to MQTT broker " + where_);
  }

  void on_disconnect(int rc) {
    bool was;
    {
      std::lock_guard<std::mutex> lk(mu_);
      was = connected_;
      connected_ = false;
      if (stopping_ || rc == 0) return;
      if (!was && warned_) return;
      warned_ = true;
    }
    if (was)
      config_warn("lost the connection to MQTT broker " + where_ + ": buffering up to " +
                  std::to_string(queue_.capacity()) + " events while reconnecting");
    else
      unreachable(mosquitto_strerror(rc));
  }

  void on_publish(int mid) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (inflight_.erase(mid))
        published_++;
      else
        early_acks_.insert(mid);  // acknowledged before send_loop recorded it
    }
    cv_.notify_all();
  }

  void unreachable(const std::string& why) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      warned_ = true;
    }
    config_warn("MQTT broker " + where_ + " unreachable (" + why + "): retrying every 1 to " +
                std::to_string(std::max(1, config_.max_reconnect_interval_s)) + " s, buffering up to " +
                std::to_string(queue_.capacity()) + " events (the oldest are dropped and counted)");
  }

  void config_warn(const std::string& s) {
    if (config_.on_warning) config_.on_warning(s);
  }

  // Hands queued events to libmosquitto while connected, at most
  // kMaxInflight unacknowledged at a time.
  void send_loop() {
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait_for(lk, std::chrono::milliseconds(100),
                     [&] { return stopping_ || (connected_ && inflight_.size() < kMaxInflight); });
        if (stopping_) return;
        if (!connected_ || inflight_.size() >= kMaxInflight) continue;
      }
      auto e = queue_.pop(std::chrono::milliseconds(100));
      if (!e) continue;
      int mid = 0;
      const int rc = mosquitto_publish(mosq_, &mid, config_.topic.c_str(), static_cast<int>(e->size()), e->data(), 1, false);
      std::lock_guard<std::mutex> lk(mu_);
      if (rc == MOSQ_ERR_SUCCESS) {
        if (early_acks_.erase(mid))
          published_++;
        else
          inflight_.insert(mid);
      } else {
        queue_.push_front(std::move(*e));
      }
    }
  }

  const PublisherConfig config_;
  std::string where_;
  EventQueue queue_;
  mosquitto* mosq_ = nullptr;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<int> inflight_, early_acks_;
  uint64_t published_ = 0;
  bool connected_ = false, ever_connected_ = false, warned_ = false, stopping_ = false;
  std::atomic<bool> finished_{false};
  std::thread sender_;
};

}  // namespace

std::unique_ptr<Publisher> make_mqtt_publisher(const PublisherConfig& config) {
  return std::make_unique<MqttPublisher>(config);
}

}  // namespace dfd::events

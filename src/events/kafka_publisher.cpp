#include "events/kafka_publisher.h"

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace dfd::events {
namespace {

class KafkaPublisher : public Publisher {
 public:
  explicit KafkaPublisher(const PublisherConfig& c) : config_(c) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    try {
      configure(conf, c);
    } catch (...) {
      rd_kafka_conf_destroy(conf);
      throw;
    }
    char err[512];
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);  // owns conf on success
    if (!rk_) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(std::string("Kafka: cannot create a producer: ") + err);
    }
    topic_ = rd_kafka_topic_new(rk_, c.topic.c_str(), nullptr);
    poller_ = std::thread([this] {
      while (!stopping_) rd_kafka_poll(rk_, 100);
    });
  }

  ~KafkaPublisher() override { finish(std::chrono::milliseconds(0)); }

  void publish(std::string event) override {
    if (finished_) {
      dropped_++;
      return;
    }
    const int rc = rd_kafka_produce(topic_, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, event.data(), event.size(),
                                    nullptr, 0, nullptr);
    if (rc != 0) {
      dropped_++;  // RD_KAFKA_RESP_ERR__QUEUE_FULL while the brokers are away
      const auto e = rd_kafka_last_error();
      if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) warn_once(std::string("Kafka: cannot queue an event: ") + rd_kafka_err2str(e));
    }
  }

  void end_of_stream(std::chrono::milliseconds) override {}

  void finish(std::chrono::milliseconds timeout) override {
    if (finished_.exchange(true)) return;
    rd_kafka_flush(rk_, static_cast<int>(timeout.count()));
    // What is left is purged: its delivery reports (error __PURGE_*) count it.
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(rk_, 1000);
    stopping_ = true;
    poller_.join();
    rd_kafka_poll(rk_, 0);
    dropped_ += static_cast<uint64_t>(rd_kafka_outq_len(rk_));  // none expected after purge
    rd_kafka_topic_destroy(topic_);
    rd_kafka_destroy(rk_);
  }

  PublisherStats stats() const override {
    PublisherStats s;
    s.published = published_;
    s.dropped = dropped_;
    s.buffered = finished_ ? 0 : static_cast<uint64_t>(rd_kafka_outq_len(rk_));
    s.connected = up_;
    return s;
  }

 private:
  static void set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
    char err[512];
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
      throw std::runtime_error("Kafka: " + key + "=" + value + ": " + err);
  }

  void configure(rd_kafka_conf_t* conf, const PublisherConfig& c) {
    set(conf, "bootstrap.servers", c.address.empty() ? "localhost:9092" : c.address);
    if (!c.client_id.empty()) set(conf, "client.id", c.client_id);
    set(conf, "queue.buffering.max.messages", std::to_string(std::max<size_t>(1, c.max_buffered)));
    set(conf, "reconnect.backoff.max.ms", std::to_string(std::max(1, c.max_reconnect_interval_s) * 1000));
    set(conf, "linger.ms", "5");
    const bool tls = !c.ca_file.empty();
    if (!c.username.empty()) {
      set(conf, "security.protocol", tls ? "SASL_SSL" : "SASL_PLAINTEXT");
      set(conf, "sasl.mechanisms", "PLAIN");
      set(conf, "sasl.username", c.username);
      set(conf, "sasl.password", c.password);
    } else if (tls) {
      set(conf, "security.protocol", "SSL");
    }
    if (tls) set(conf, "ssl.ca.location", c.ca_file);
    if (!c.cert_file.empty()) set(conf, "ssl.certificate.location", c.cert_file);
    if (!c.key_file.empty()) set(conf, "ssl.key.location", c.key_file);
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void* self) {
      auto* p = static_cast<KafkaPublisher*>(self);
      if (m->err) {
        p->dropped_++;
      } else {
        p->published_++;
        p->up_ = true;
      }
    });
    rd_kafka_conf_set_error_cb(conf, [](rd_kafka_t*, int err, const char* reason, void* self) {
      auto* p = static_cast<KafkaPublisher*>(self);
      if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        p->up_ = false;
        p->warn_once("Kafka brokers " + (p->config_.address.empty() ? std::string("localhost:9092") : p->config_.address) +
                     " unreachable (" + reason + "): retrying, buffering up to " +
                     std::to_string(p->config_.max_buffered) + " events (new ones are dropped and counted when full)");
      }
    });
  }

  void warn_once(const std::string& s) {
    if (warned_.exchange(true)) return;
    if (config_.on_warning) config_.on_warning(s);
  }

  const PublisherConfig config_;
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_topic_t* topic_ = nullptr;
  std::atomic<uint64_t> published_{0}, dropped_{0};
  std::atomic<bool> up_{false}, warned_{false}, finished_{false}, stopping_{false};
  std::thread poller_;
};

}  // namespace

std::unique_ptr<Publisher> make_kafka_publisher(const PublisherConfig& config) {
  return std::make_unique<KafkaPublisher>(config);
}

}  // namespace dfd::events

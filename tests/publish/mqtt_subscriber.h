// A libmosquitto subscriber for tests: persistent session (clean_session
// false, QoS 1), so events published while it reconnects after a broker
// restart wait for it on the broker. Collects every payload.
#pragma once
#include <mosquitto.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace dfd_test {

class MqttSubscriber {
 public:
  MqttSubscriber(const std::string& host, int port, const std::string& topic) : topic_(topic) {
    mosquitto_lib_init();
    mosq_ = mosquitto_new("dfd-test-subscriber", false, this);
    mosquitto_connect_callback_set(mosq_, [](mosquitto* m, void* self, int rc) {
      auto* s = static_cast<MqttSubscriber*>(self);
      if (rc == 0) mosquitto_subscribe(m, nullptr, s->topic_.c_str(), 1);
    });
    mosquitto_subscribe_callback_set(mosq_, [](mosquitto*, void* self, int, int, const int*) {
      auto* s = static_cast<MqttSubscriber*>(self);
      std::lock_guard<std::mutex> lk(s->mu_);
      s->subscribed_ = true;
    });
    mosquitto_message_callback_set(mosq_, [](mosquitto*, void* self, const mosquitto_message* m) {
      auto* s = static_cast<MqttSubscriber*>(self);
      std::lock_guard<std::mutex> lk(s->mu_);
      s->messages_.emplace_back(static_cast<const char*>(m->payload), m->payloadlen);
    });
    mosquitto_reconnect_delay_set(mosq_, 1, 1, false);
    mosquitto_connect(mosq_, host.c_str(), port, 30);
    mosquitto_loop_start(mosq_);
  }
  ~MqttSubscriber() {
    mosquitto_disconnect(mosq_);
    mosquitto_loop_stop(mosq_, false);
    mosquitto_destroy(mosq_);
  }

  // Waits (polling, at most `limit`) until `pred(messages)` holds.
  template <class Pred>
  bool wait_for(Pred pred, std::chrono::seconds limit = std::chrono::seconds(20)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (pred(messages_)) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  bool wait_subscribed() {
    return wait_for([&](const std::vector<std::string>&) { return subscribed_; });
  }
  std::vector<std::string> messages() {
    std::lock_guard<std::mutex> lk(mu_);
    return messages_;
  }

 private:
  std::string topic_;
  mosquitto* mosq_;
  std::mutex mu_;
  bool subscribed_ = false;
  std::vector<std::string> messages_;
};

}  // namespace dfd_test

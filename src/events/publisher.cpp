#include "events/publisher.h"

#include <stdexcept>

#include "events/file_publisher.h"
#include "events/kafka_publisher.h"
#include "events/mqtt_publisher.h"

namespace dfd::events {

std::unique_ptr<Publisher> make_publisher(const PublisherConfig& config) {
  switch (config.method) {
    case Method::File: return make_file_publisher(config);
    case Method::Mqtt: return make_mqtt_publisher(config);
    case Method::Kafka: return make_kafka_publisher(config);
  }
  throw std::runtime_error("unknown publish method");
}

std::pair<std::string, int> split_address(const std::string& address, int default_port) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || address.find(']', colon) != std::string::npos) return {address, default_port};
  const std::string host = address.substr(0, colon), port = address.substr(colon + 1);
  int p = 0;
  try {
    size_t used = 0;
    p = std::stoi(port, &used);
    if (used != port.size()) p = -1;
  } catch (const std::exception&) {
    p = -1;
  }
  if (host.empty() || p <= 0 || p > 65535) throw std::runtime_error("bad address '" + address + "': want HOST:PORT");
  return {host, p};
}

}  // namespace dfd::events

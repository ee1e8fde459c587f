// Where deepfakemetapublish sends its JSON events: a file (or stdout), an
// MQTT broker (libmosquitto) or Kafka (librdkafka). One interface, one
// backend per file, chosen by `method`, like gvametapublish's backends.
//
// publish() is called on the video's streaming thread and never waits for
// the network or the disk: events go into a bounded buffer (ours for file and
// MQTT, librdkafka's own for Kafka) that a thread of the backend empties.
// When the buffer is full, or events are still undelivered when the
// publisher finishes, they are counted as dropped: every event is either
// delivered (acknowledged by the broker, written to the file) or counted.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace dfd::events {

enum class Method { File, Mqtt, Kafka };
enum class FileFormat { Json, JsonLines };

struct PublisherConfig {
  Method method = Method::File;
  std::string file_path = "-";  // "-": stdout
  FileFormat file_format = FileFormat::JsonLines;
  // Append to an existing file instead of emptying it (json-lines only: an
  // array cannot be continued). What a restarted source wants.
  bool file_append = false;
  std::string address;          // host:port (MQTT), bootstrap servers (Kafka); empty: localhost default port
  std::string topic = "deepfakedetect";
  std::string client_id;        // empty: made unique
  std::string username, password;
  std::string ca_file, cert_file, key_file;  // TLS when ca_file is set
  int max_reconnect_interval_s = 30;
  size_t max_buffered = 1000;
  // Called from any thread with one line for the user (unreachable broker,
  // connection lost and back). Must not block.
  std::function<void(const std::string&)> on_warning;
  std::function<void(const std::string&)> on_info;  // connected, reconnected
};

struct PublisherStats {
  uint64_t published = 0;  // delivered: written, or acknowledged by the broker
  uint64_t dropped = 0;    // lost: buffer full, or undelivered at finish()
  uint64_t buffered = 0;   // waiting now
  bool connected = false;  // always true for a file
};

class Publisher {
 public:
  virtual ~Publisher() = default;
  // One serialised event. Never blocks.
  virtual void publish(std::string event) = 0;
  // End of a stream. A file: everything published so far is written (waiting
  // at most `timeout`) and a JSON array is closed, so the file is valid JSON
  // at EOS. Brokers: returns at once (video never waits for the network);
  // delivery goes on in the background until finish().
  virtual void end_of_stream(std::chrono::milliseconds timeout) = 0;
  // Delivers what it can within `timeout`, counts the rest as dropped and
  // stops the backend's threads. publish() after it only counts drops.
  virtual void finish(std::chrono::milliseconds timeout) = 0;
  virtual PublisherStats stats() const = 0;
};

// Throws std::runtime_error with one line for the user when the backend
// cannot be set up (a file that cannot be opened, a bad address). A broker
// that is not reachable yet is no error: it is retried, with a warning.
std::unique_ptr<Publisher> make_publisher(const PublisherConfig& config);

// "host:port" split, with the default port; throws on a bad port.
std::pair<std::string, int> split_address(const std::string& address, int default_port);

}  // namespace dfd::events

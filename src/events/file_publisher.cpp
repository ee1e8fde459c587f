#include "events/file_publisher.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "events/event_queue.h"

namespace dfd::events {
namespace {

class FilePublisher : public Publisher {
 public:
  explicit FilePublisher(const PublisherConfig& c) : format_(c.file_format), queue_(c.max_buffered) {
    if (c.file_path.empty() || c.file_path == "-") {
      out_ = stdout;
    } else {
      if (c.file_append && c.file_format == FileFormat::Json)
        throw std::runtime_error("file-append needs file-format=json-lines (a JSON array cannot be continued)");
      out_ = std::fopen(c.file_path.c_str(), c.file_append ? "a" : "w");
      if (!out_) throw std::runtime_error("cannot open '" + c.file_path + "' for writing: " + std::strerror(errno));
      owned_ = true;
    }
    writer_ = std::thread([this] { run(); });
  }

  ~FilePublisher() override { finish(std::chrono::milliseconds(0)); }

  void publish(std::string event) override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stopped_) {
        queue_.count_dropped(1);
        return;
      }
      pending_++;
    }
    if (!queue_.push(std::move(event))) done(0);  // the oldest went: it will never be written
  }

  void end_of_stream(std::chrono::milliseconds timeout) override {
    wait_drained(timeout);
    std::lock_guard<std::mutex> lk(mu_);
    if (format_ == FileFormat::Json && !stopped_) {
      std::fputs(array_open_ ? "\n]\n" : "[]\n", out_);
      array_open_ = false;
      std::fflush(out_);
    }
    ended_ = true;
  }

  void finish(std::chrono::milliseconds timeout) override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stopped_) return;
    }
    wait_drained(timeout);
    {
      std::lock_guard<std::mutex> lk(mu_);
      stopped_ = true;
    }
    queue_.close();
    writer_.join();
    queue_.count_dropped(queue_.take_all().size());
    if (format_ == FileFormat::Json && (array_open_ || !ended_)) std::fputs(array_open_ ? "\n]\n" : "[]\n", out_);
    std::fflush(out_);
    if (owned_) std::fclose(out_);
  }

  PublisherStats stats() const override {
    std::lock_guard<std::mutex> lk(mu_);
    return {written_, queue_.dropped(), queue_.size(), true};
  }

 private:
  void run() {
    for (;;) {
      auto e = queue_.pop(std::chrono::milliseconds(200));
      if (!e) {
        std::lock_guard<std::mutex> lk(mu_);
        if (stopped_) return;
        continue;
      }
      write(*e);
    }
  }

  void write(const std::string& e) {
    std::lock_guard<std::mutex> lk(mu_);
    if (format_ == FileFormat::Json) {
      // After an EOS, a new stream starts a new array.
      std::fputs(array_open_ ? ",\n" : "[\n", out_);
      array_open_ = true;
      ended_ = false;
    }
    std::fputs(e.c_str(), out_);
    if (format_ == FileFormat::JsonLines) std::fputc('\n', out_);
    // Whole events reach the file as they come: a reader (tail -f) never
    // waits for a buffer to fill.
    std::fflush(out_);
    written_++;
    pending_--;
    drained_.notify_all();
  }

  void done(int) {
    std::lock_guard<std::mutex> lk(mu_);
    pending_--;
    drained_.notify_all();
  }

  void wait_drained(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lk(mu_);
    drained_.wait_for(lk, timeout, [&] { return pending_ == 0; });
  }

  const FileFormat format_;
  EventQueue queue_;
  FILE* out_ = nullptr;
  bool owned_ = false;
  mutable std::mutex mu_;
  std::condition_variable drained_;
  uint64_t pending_ = 0;  // published, not yet written nor dropped
  uint64_t written_ = 0;
  bool array_open_ = false, ended_ = false, stopped_ = false;
  std::thread writer_;
};

}  // namespace

std::unique_ptr<Publisher> make_file_publisher(const PublisherConfig& config) {
  return std::make_unique<FilePublisher>(config);
}

}  // namespace dfd::events

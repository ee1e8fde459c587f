// One model, many streams: an inference scheduler that batches the crops of
// every stream attached to it into shared backbone batches, on one thread.
//
// Each stream attaches and gets an Inference (SchedulerStream) to hand its
// WindowStage. Its features() call queues the crops and waits; the
// scheduler's thread forms a batch of at most batch_size crops and runs the
// model once on it:
//   - as soon as batch_size crops wait, or every attached stream has a
//     request waiting (nobody else could add to the batch: a single stream
//     never waits for company), or the oldest waiting crop has waited
//     max_batch_latency_ms;
//   - taking crops round-robin, one per stream in turn, from a rotating first
//     stream: a stream with many crops queued gets no more of a batch than
//     one with a few, so it cannot starve them.
// The head calls (classify_frames, classify_windows) run on the same thread,
// ahead of the next batch: they are cheap, and so only one model call runs in
// the process at a time, over the one intra-op thread pool (num-threads),
// however many streams there are.
//
// A batch that throws is run again one request at a time, so the exception
// reaches the stream whose crops caused it and the others get their
// features. stop() (or the destructor) fails every queued request with
// SchedulerStopped; a batch already running finishes first.
//
// Results: a crop's feature comes from a batch that may hold other streams'
// crops. The model computes each crop independently, but its kernels may
// sum in a different order for a different batch size, so a feature may
// differ from the one of an unshared run in the last bits (docs/element.md).
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "analysis/stream_analyzer.h"

namespace dfd {

struct SchedulerOptions {
  int batch_size = 32;           // crops per model call, at most (the WindowStage's own batch by default)
  // Longest a crop waits for other streams' crops to join its batch. 0: never
  // wait, batch what queued up while the model was busy (on the 2-core CPU
  // benchmark waiting cost more than batching saved: docs/performance.md).
  int max_batch_latency_ms = 0;
  // Throws std::invalid_argument naming the bad field.
  void validate() const;
};

// Counters of one stream (times in milliseconds).
struct StreamSchedStats {
  uint64_t requests = 0;        // features() calls that got their features
  uint64_t crops = 0;           // crops of those requests
  uint64_t batches = 0;         // batches that held crops of this stream
  uint64_t shared_batches = 0;  // of those, batches that also held another stream's crops
  uint64_t failed = 0;          // requests that got the model's exception
  uint64_t cancelled = 0;       // requests failed by stop()
  double wait_ms_total = 0;     // queue wait: from the call to its first batch
  double wait_ms_max = 0;
  double mean_wait_ms() const { return requests + failed ? wait_ms_total / double(requests + failed) : 0.0; }
};

// Counters of a scheduler, all streams together.
struct SchedulerStats {
  uint64_t batches = 0;
  uint64_t crops = 0;           // crops through the model
  uint64_t mixed_batches = 0;   // batches with crops of two streams or more
  uint64_t full_batches = 0;    // dispatched with batch_size crops
  uint64_t timed_out_batches = 0;  // dispatched by the latency bound, partly full
  uint64_t head_calls = 0;      // classify_frames / classify_windows run
  uint64_t requests = 0, failed = 0, cancelled = 0;
  int largest_batch = 0;
  int streams = 0;              // attached now
  uint64_t queued_crops = 0;    // waiting for a batch now (queue depth)
  double wait_ms_total = 0, wait_ms_max = 0;
  double mean_batch() const { return batches ? double(crops) / double(batches) : 0.0; }
  double mean_wait_ms() const { return requests + failed ? wait_ms_total / double(requests + failed) : 0.0; }
};

// What a request of a stream gets when the scheduler stops with it queued.
class SchedulerStopped : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class SchedulerStream;

class InferenceScheduler : public std::enable_shared_from_this<InferenceScheduler> {
 public:
  // `model`: what every batch runs through (shared by all streams; must be
  // safe to call from the scheduler's thread). `identity`: which model this
  // is (attach() callers compare it: model-instance-id sharing). Throws
  // std::invalid_argument on bad options or a missing model.
  InferenceScheduler(std::shared_ptr<const Inference> model, SchedulerOptions opts, std::string identity = {});
  ~InferenceScheduler();
  InferenceScheduler(const InferenceScheduler&) = delete;
  InferenceScheduler& operator=(const InferenceScheduler&) = delete;

  // A new stream; `name` is for logs. Detached when the returned object goes.
  std::shared_ptr<SchedulerStream> attach(std::string name);
  // Fail every queued request with SchedulerStopped, finish the running
  // batch, join the thread. Later calls throw SchedulerStopped. Idempotent.
  void stop();

  SchedulerStats stats() const;
  const SchedulerOptions& options() const { return opts_; }
  const std::string& identity() const { return identity_; }

 private:
  friend class SchedulerStream;
  using Clock = std::chrono::steady_clock;
  struct Request;
  struct Stream {
    std::string name;
    std::deque<std::shared_ptr<Request>> queue;  // features requests, oldest first
    StreamSchedStats stats;
  };
  struct Item {
    std::shared_ptr<Request> request;
    size_t index;  // crop within the request
  };
  struct HeadCall;

  std::vector<Feature> submit_features(uint64_t stream, const std::vector<cv::Mat>& crops);
  void submit_head(uint64_t stream, HeadCall& call);
  void detach(uint64_t stream);
  StreamSchedStats stream_stats(uint64_t stream) const;

  void run();
  bool batch_due(Clock::time_point now) const;
  std::vector<Item> take_batch();
  void run_batch(std::vector<Item>& batch, std::unique_lock<std::mutex>& lk);
  void finish_items(const std::vector<Item>& items, std::vector<Feature>* features, std::exception_ptr error);
  void run_head_calls(std::unique_lock<std::mutex>& lk);
  size_t pending_crops() const;

  const std::shared_ptr<const Inference> model_;
  const SchedulerOptions opts_;
  const std::string identity_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // the thread waits for work
  std::condition_variable done_cv_;  // callers wait for their results
  std::map<uint64_t, Stream> streams_;
  std::deque<HeadCall*> head_calls_;
  uint64_t next_stream_ = 1;
  uint64_t rr_next_ = 0;  // the stream served first in the next batch (the first id at or after it)
  bool stopping_ = false;
  SchedulerStats stats_;
  std::thread thread_;
};

// One stream's Inference: features go through the shared batches, head calls
// through the scheduler's thread. Same contracts as the model's own.
class SchedulerStream final : public Inference {
 public:
  ~SchedulerStream() override;
  std::vector<Feature> features(const std::vector<cv::Mat>& crops) const override;
  std::vector<Prediction> classify_frames(const std::vector<const Feature*>& frames) const override;
  std::vector<Prediction> classify_windows(const std::vector<std::vector<const Feature*>>& windows,
                                           HeadMode mode) const override;
  StreamSchedStats stats() const;
  const std::shared_ptr<InferenceScheduler>& scheduler() const { return sched_; }

 private:
  friend class InferenceScheduler;
  SchedulerStream(std::shared_ptr<InferenceScheduler> sched, uint64_t id) : sched_(std::move(sched)), id_(id) {}
  std::shared_ptr<InferenceScheduler> sched_;
  uint64_t id_;
};

// Process-wide schedulers by key: the live one for `key`, or a new one made
// with (model(), opts, identity) when none is alive. A scheduler lives while
// a stream of it does. When the live one's identity differs from `identity`,
// throws std::invalid_argument naming both (two models under one key). The
// options of the scheduler that exists win; `created` says whether it was
// made now.
std::shared_ptr<InferenceScheduler> shared_scheduler(const std::string& key, const std::string& identity,
                                                     const std::function<std::shared_ptr<const Inference>()>& model,
                                                     const SchedulerOptions& opts, bool* created = nullptr);

}  // namespace dfd

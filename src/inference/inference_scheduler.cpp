#include "inference/inference_scheduler.h"

#include <algorithm>
#include <set>

namespace dfd {

void SchedulerOptions::validate() const {
  if (batch_size < 1 || batch_size > 1024) throw std::invalid_argument("batch-size must lie in [1, 1024]");
  if (max_batch_latency_ms < 0 || max_batch_latency_ms > 10000)
    throw std::invalid_argument("max-batch-latency must lie in [0, 10000] ms");
}

// One features() call of a stream. The caller's thread waits on it; the
// scheduler's thread fills it, possibly over several batches.
struct InferenceScheduler::Request {
  uint64_t stream = 0;
  std::vector<cv::Mat> crops;  // headers (the pixels are shared, not copied)
  size_t next = 0;             // first crop not yet taken into a batch
  size_t done = 0;             // crops with their feature
  std::vector<Feature> features;
  std::exception_ptr error;
  bool started = false;        // in a batch at least once (queue wait recorded)
  bool finished = false;
  Clock::time_point enqueued;
};

// A head call of a stream, run on the scheduler's thread.
struct InferenceScheduler::HeadCall {
  std::function<void()> run;
  std::exception_ptr error;
  bool finished = false;
};

namespace {
double ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}
}  // namespace

InferenceScheduler::InferenceScheduler(std::shared_ptr<const Inference> model, SchedulerOptions opts,
                                       std::string identity)
    : model_(std::move(model)), opts_(opts), identity_(std::move(identity)) {
  if (!model_) throw std::invalid_argument("an inference scheduler needs a model");
  opts_.validate();
  thread_ = std::thread([this] { run(); });
}

InferenceScheduler::~InferenceScheduler() { stop(); }

std::shared_ptr<SchedulerStream> InferenceScheduler::attach(std::string name) {
  std::lock_guard<std::mutex> lk(mu_);
  if (stopping_) throw SchedulerStopped("the inference scheduler has stopped: no new streams");
  const uint64_t id = next_stream_++;
  streams_[id].name = std::move(name);
  stats_.streams = int(streams_.size());
  return std::shared_ptr<SchedulerStream>(new SchedulerStream(shared_from_this(), id));
}

void InferenceScheduler::detach(uint64_t stream) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = streams_.find(stream);
  if (it == streams_.end()) return;
  for (auto& r : it->second.queue) {  // none in practice: a caller waiting keeps its stream alive
    r->error = std::make_exception_ptr(SchedulerStopped("the stream detached with this request queued"));
    r->finished = true;
  }
  streams_.erase(it);
  stats_.streams = int(streams_.size());
  done_cv_.notify_all();
  work_cv_.notify_all();  // "every stream waiting" may hold now
}

void InferenceScheduler::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!stopping_) {
      stopping_ = true;
      const auto stopped = std::make_exception_ptr(SchedulerStopped("the inference scheduler stopped with this request queued"));
      for (auto& kv : streams_) {
        for (auto& r : kv.second.queue) {
          if (r->finished) continue;
          r->error = stopped;
          r->finished = true;
          ++kv.second.stats.cancelled;
          ++stats_.cancelled;
        }
        kv.second.queue.clear();
      }
      for (HeadCall* c : head_calls_) {
        c->error = stopped;
        c->finished = true;
      }
      head_calls_.clear();
      done_cv_.notify_all();
      work_cv_.notify_all();
    }
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

SchedulerStats InferenceScheduler::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  SchedulerStats s = stats_;
  s.queued_crops = pending_crops();
  return s;
}

StreamSchedStats InferenceScheduler::stream_stats(uint64_t stream) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = streams_.find(stream);
  return it == streams_.end() ? StreamSchedStats{} : it->second.stats;
}

// ------------------------------------------------------------- callers

std::vector<Feature> InferenceScheduler::submit_features(uint64_t stream, const std::vector<cv::Mat>& crops) {
  if (crops.empty()) return {};
  auto req = std::make_shared<Request>();
  req->stream = stream;
  req->crops = crops;
  req->features.resize(crops.size());
  std::unique_lock<std::mutex> lk(mu_);
  if (stopping_) throw SchedulerStopped("the inference scheduler has stopped");
  auto it = streams_.find(stream);
  if (it == streams_.end()) throw std::logic_error("features() on a detached scheduler stream");
  req->enqueued = Clock::now();
  it->second.queue.push_back(req);
  work_cv_.notify_all();
  done_cv_.wait(lk, [&] { return req->finished; });
  if (req->error) std::rethrow_exception(req->error);
  return std::move(req->features);
}

void InferenceScheduler::submit_head(uint64_t stream, HeadCall& call) {
  (void)stream;
  std::unique_lock<std::mutex> lk(mu_);
  if (stopping_) throw SchedulerStopped("the inference scheduler has stopped");
  head_calls_.push_back(&call);
  work_cv_.notify_all();
  done_cv_.wait(lk, [&] { return call.finished; });
  if (call.error) std::rethrow_exception(call.error);
}

// ------------------------------------------------------------- the thread

size_t InferenceScheduler::pending_crops() const {
  size_t n = 0;
  for (const auto& kv : streams_)
    for (const auto& r : kv.second.queue) n += r->crops.size() - r->next;
  return n;
}

bool InferenceScheduler::batch_due(Clock::time_point now) const {
  if (pending_crops() >= size_t(opts_.batch_size)) return true;
  bool all_waiting = !streams_.empty();
  Clock::time_point oldest = Clock::time_point::max();
  for (const auto& kv : streams_) {
    if (kv.second.queue.empty()) {
      all_waiting = false;
    } else {
      oldest = std::min(oldest, kv.second.queue.front()->enqueued);
    }
  }
  if (all_waiting) return true;  // nobody else could join this batch
  return oldest != Clock::time_point::max() && now >= oldest + std::chrono::milliseconds(opts_.max_batch_latency_ms);
}

std::vector<InferenceScheduler::Item> InferenceScheduler::take_batch() {
  // Streams in turn from rr_next_, one crop each per round.
  std::vector<Stream*> order;
  std::vector<uint64_t> ids;
  for (auto it = streams_.lower_bound(rr_next_); it != streams_.end(); ++it) order.push_back(&it->second), ids.push_back(it->first);
  for (auto it = streams_.begin(); it != streams_.end() && it->first < rr_next_; ++it)
    order.push_back(&it->second), ids.push_back(it->first);
  std::vector<Item> batch;
  bool first_served = false;
  for (bool progress = true; progress && batch.size() < size_t(opts_.batch_size);) {
    progress = false;
    for (size_t s = 0; s < order.size() && batch.size() < size_t(opts_.batch_size); ++s) {
      auto& q = order[s]->queue;
      if (q.empty()) continue;
      if (!first_served) {  // the next batch starts with the stream after this one
        rr_next_ = ids[s] + 1;
        first_served = true;
      }
      auto req = q.front();
      batch.push_back({req, req->next++});
      if (req->next == req->crops.size()) q.pop_front();
      progress = true;
    }
  }
  return batch;
}

void InferenceScheduler::finish_items(const std::vector<Item>& items, std::vector<Feature>* features,
                                      std::exception_ptr error) {
  for (size_t i = 0; i < items.size(); ++i) {
    Request& r = *items[i].request;
    if (r.finished) continue;  // failed by an earlier part, or cancelled by stop()
    auto st = streams_.find(r.stream);
    if (error) {
      r.error = error;
      r.finished = true;
      auto& q = st->second.queue;  // its crops not yet taken go too
      q.erase(std::remove(q.begin(), q.end(), items[i].request), q.end());
      ++st->second.stats.failed;
      ++stats_.failed;
      continue;
    }
    r.features[items[i].index] = std::move((*features)[i]);
    if (++r.done == r.crops.size()) {
      r.finished = true;
      ++st->second.stats.requests;
      st->second.stats.crops += r.crops.size();
      ++stats_.requests;
    }
  }
  done_cv_.notify_all();
}

void InferenceScheduler::run_batch(std::vector<Item>& batch, std::unique_lock<std::mutex>& lk) {
  const auto start = Clock::now();
  std::set<uint64_t> streams;
  std::vector<cv::Mat> crops;
  for (const Item& it : batch) {
    Request& r = *it.request;
    streams.insert(r.stream);
    crops.push_back(r.crops[it.index]);
    if (!r.started) {
      r.started = true;
      const double w = ms_between(r.enqueued, start);
      auto& ss = streams_.at(r.stream).stats;
      ss.wait_ms_total += w;
      ss.wait_ms_max = std::max(ss.wait_ms_max, w);
      stats_.wait_ms_total += w;
      stats_.wait_ms_max = std::max(stats_.wait_ms_max, w);
    }
  }
  for (uint64_t s : streams) {
    auto& ss = streams_.at(s).stats;
    ++ss.batches;
    if (streams.size() > 1) ++ss.shared_batches;
  }
  ++stats_.batches;
  stats_.crops += batch.size();
  if (streams.size() > 1) ++stats_.mixed_batches;
  if (batch.size() == size_t(opts_.batch_size)) ++stats_.full_batches;
  stats_.largest_batch = std::max(stats_.largest_batch, int(batch.size()));

  auto call = [this](const std::vector<cv::Mat>& c, std::vector<Feature>& out) -> std::exception_ptr {
    try {
      out = model_->features(c);
      if (out.size() != c.size()) throw std::runtime_error("model returned a wrong number of features");
      return nullptr;
    } catch (...) {
      return std::current_exception();
    }
  };
  lk.unlock();
  std::vector<Feature> feats;
  std::exception_ptr error = call(crops, feats);
  lk.lock();
  if (!error) {
    finish_items(batch, &feats, nullptr);
    return;
  }
  std::set<Request*> requests;
  for (const Item& it : batch) requests.insert(it.request.get());
  if (requests.size() == 1) {
    finish_items(batch, nullptr, error);
    return;
  }
  // Whose crops threw? Each request's part alone: the exception goes to its
  // stream, the others get their features.
  for (Request* r : requests) {
    std::vector<Item> part;
    std::vector<cv::Mat> part_crops;
    for (const Item& it : batch)
      if (it.request.get() == r) part.push_back(it), part_crops.push_back(crops[size_t(&it - batch.data())]);
    lk.unlock();
    std::vector<Feature> part_feats;
    std::exception_ptr part_error = call(part_crops, part_feats);
    lk.lock();
    finish_items(part, &part_feats, part_error);
  }
}

void InferenceScheduler::run_head_calls(std::unique_lock<std::mutex>& lk) {
  while (!head_calls_.empty() && !stopping_) {
    HeadCall* c = head_calls_.front();
    head_calls_.pop_front();
    lk.unlock();
    std::exception_ptr error;
    try {
      c->run();
    } catch (...) {
      error = std::current_exception();
    }
    lk.lock();
    c->error = error;
    c->finished = true;
    ++stats_.head_calls;
    done_cv_.notify_all();
  }
}

void InferenceScheduler::run() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    work_cv_.wait(lk, [&] { return stopping_ || !head_calls_.empty() || pending_crops() > 0; });
    if (stopping_) return;
    run_head_calls(lk);
    if (stopping_) return;
    if (pending_crops() == 0) continue;
    // Wait for the batch to fill, for every stream to be waiting, or for the
    // oldest crop's latency bound; head calls go first meanwhile.
    bool timed_out = false;
    while (!stopping_ && head_calls_.empty() && pending_crops() > 0 && !batch_due(Clock::now())) {
      Clock::time_point oldest = Clock::time_point::max();
      for (const auto& kv : streams_)
        if (!kv.second.queue.empty()) oldest = std::min(oldest, kv.second.queue.front()->enqueued);
      const auto deadline = oldest + std::chrono::milliseconds(opts_.max_batch_latency_ms);
      timed_out = work_cv_.wait_until(lk, deadline) == std::cv_status::timeout;
    }
    if (stopping_) return;
    if (!head_calls_.empty() || pending_crops() == 0) continue;
    std::vector<Item> batch = take_batch();
    if (timed_out && batch.size() < size_t(opts_.batch_size)) ++stats_.timed_out_batches;
    run_batch(batch, lk);
  }
}

// ------------------------------------------------------------- streams

SchedulerStream::~SchedulerStream() { sched_->detach(id_); }

std::vector<Feature> SchedulerStream::features(const std::vector<cv::Mat>& crops) const {
  return sched_->submit_features(id_, crops);
}

std::vector<Prediction> SchedulerStream::classify_frames(const std::vector<const Feature*>& frames) const {
  std::vector<Prediction> out;
  InferenceScheduler::HeadCall call;
  call.run = [&] { out = sched_->model_->classify_frames(frames); };
  sched_->submit_head(id_, call);
  return out;
}

std::vector<Prediction> SchedulerStream::classify_windows(const std::vector<std::vector<const Feature*>>& windows,
                                                          HeadMode mode) const {
  std::vector<Prediction> out;
  InferenceScheduler::HeadCall call;
  call.run = [&] { out = sched_->model_->classify_windows(windows, mode); };
  sched_->submit_head(id_, call);
  return out;
}

StreamSchedStats SchedulerStream::stats() const { return sched_->stream_stats(id_); }

// ------------------------------------------------------------- registry

std::shared_ptr<InferenceScheduler> shared_scheduler(const std::string& key, const std::string& identity,
                                                     const std::function<std::shared_ptr<const Inference>()>& model,
                                                     const SchedulerOptions& opts, bool* created) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<InferenceScheduler>> live;
  std::lock_guard<std::mutex> lk(mu);
  for (auto it = live.begin(); it != live.end();) it = it->second.expired() ? live.erase(it) : std::next(it);
  if (auto existing = live[key].lock()) {
    if (existing->identity() != identity)
      throw std::invalid_argument("the shared inference scheduler '" + key + "' runs the model " +
                                  existing->identity() + ", not " + identity);
    if (created) *created = false;
    return existing;
  }
  auto sched = std::make_shared<InferenceScheduler>(model(), opts, identity);
  live[key] = sched;
  if (created) *created = true;
  return sched;
}

}  // namespace dfd

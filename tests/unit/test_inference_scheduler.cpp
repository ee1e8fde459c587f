// The inference scheduler alone (inference/inference_scheduler.h): batching
// up to the size, the latency bound, fairness against a flooding stream,
// shutdown with work queued, exceptions reaching their own stream, the
// process-wide registry, and the shipped MesoNet giving the same features
// shared as alone.
//
// Most tests run a small Inference of their own (CountingModel): a crop's
// feature is its first pixel, every batch is recorded, a gate can hold a
// batch inside the model (so that work piles up behind it without any
// sleep), and a "poison" pixel value throws.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <future>
#include <set>
#include <thread>

#include "inference/inference_scheduler.h"
#include "model/family.h"

namespace {

using dfd::Feature;
using dfd::InferenceScheduler;
using dfd::SchedulerOptions;

constexpr int kPoison = 13;

cv::Mat crop_of(int value) { return cv::Mat(4, 4, CV_8UC3, cv::Scalar::all(value)); }

std::vector<cv::Mat> crops_of(std::initializer_list<int> values) {
  std::vector<cv::Mat> out;
  for (int v : values) out.push_back(crop_of(v));
  return out;
}

class CountingModel : public dfd::Inference {
 public:
  std::vector<Feature> features(const std::vector<cv::Mat>& crops) const override {
    std::vector<int> values;
    for (const auto& c : crops) values.push_back(c.at<cv::Vec3b>(0, 0)[0]);
    {
      std::unique_lock<std::mutex> lk(mu_);
      batches_.push_back(values);
      entered_cv_.notify_all();
      gate_cv_.wait(lk, [&] { return open_; });
    }
    std::vector<Feature> out;
    for (int v : values) {
      if (v == kPoison) throw std::runtime_error("poisoned crop");
      out.push_back(Feature{float(v)});
    }
    return out;
  }
  std::vector<dfd::Prediction> classify_frames(const std::vector<const Feature*>& frames) const override {
    std::vector<dfd::Prediction> out;
    for (const Feature* f : frames) {
      dfd::Prediction p;
      p.prob_fake = (*f)[0] / 100.f;
      out.push_back(p);
    }
    return out;
  }
  std::vector<dfd::Prediction> classify_windows(const std::vector<std::vector<const Feature*>>& windows,
                                                dfd::HeadMode) const override {
    std::vector<dfd::Prediction> out;
    for (const auto& w : windows) {
      if (w.empty()) throw std::invalid_argument("empty window");
      out.push_back(classify_frames({w.back()}).front());
    }
    return out;
  }

  void close_gate() {
    std::lock_guard<std::mutex> lk(mu_);
    open_ = false;
  }
  void open_gate() {
    std::lock_guard<std::mutex> lk(mu_);
    open_ = true;
    gate_cv_.notify_all();
  }
  // Waits until `n` batches have entered the model.
  void wait_batches(size_t n) const {
    std::unique_lock<std::mutex> lk(mu_);
    entered_cv_.wait(lk, [&] { return batches_.size() >= n; });
  }
  std::vector<std::vector<int>> batches() const {
    std::lock_guard<std::mutex> lk(mu_);
    return batches_;
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable gate_cv_, entered_cv_;
  mutable std::vector<std::vector<int>> batches_;
  bool open_ = true;
};

std::shared_ptr<InferenceScheduler> make(std::shared_ptr<CountingModel> model, int batch, int latency_ms) {
  SchedulerOptions o;
  o.batch_size = batch;
  o.max_batch_latency_ms = latency_ms;
  return std::make_shared<InferenceScheduler>(model, o, "counting");
}

// Polls (no fixed sleep) until the scheduler has `n` crops queued.
void wait_queued(const InferenceScheduler& s, uint64_t n) {
  for (int i = 0; i < 60000 && s.stats().queued_crops != n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(s.stats().queued_crops, n);
}

std::vector<float> values_of(const std::vector<Feature>& f) {
  std::vector<float> out;
  for (const auto& x : f) out.push_back(x.at(0));
  return out;
}

TEST(InferenceScheduler, BadOptionsAndModelAreRefused) {
  auto model = std::make_shared<CountingModel>();
  SchedulerOptions o;
  o.batch_size = 0;
  EXPECT_THROW(InferenceScheduler(model, o), std::invalid_argument);
  o.batch_size = 4;
  o.max_batch_latency_ms = -1;
  EXPECT_THROW(InferenceScheduler(model, o), std::invalid_argument);
  EXPECT_THROW(InferenceScheduler(nullptr, SchedulerOptions{}), std::invalid_argument);
}

TEST(InferenceScheduler, BatchesAreCutAtTheBatchSizeInOrder) {
  auto model = std::make_shared<CountingModel>();
  auto sched = make(model, 4, 1000);
  auto stream = sched->attach("a");
  auto f = stream->features(crops_of({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(values_of(f), (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  const auto b = model->batches();
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0], (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(b[2], (std::vector<int>{9, 10}));
  const auto s = sched->stats();
  EXPECT_EQ(s.batches, 3u);
  EXPECT_EQ(s.crops, 10u);
  EXPECT_EQ(s.full_batches, 2u);
  EXPECT_EQ(s.largest_batch, 4);
  EXPECT_EQ(s.requests, 1u);
  EXPECT_EQ(stream->stats().batches, 3u);
  EXPECT_EQ(stream->stats().crops, 10u);
  EXPECT_TRUE(stream->features({}).empty());  // nothing to do: no batch
  EXPECT_EQ(sched->stats().batches, 3u);
}

TEST(InferenceScheduler, ASingleStreamNeverWaitsForCompany) {
  // Latency bound of 10 s: had the crop waited for other streams, the batch
  // would count as timed out (and the test would take 10 s).
  auto model = std::make_shared<CountingModel>();
  auto sched = make(model, 8, 10000);
  auto stream = sched->attach("alone");
  EXPECT_EQ(values_of(stream->features(crops_of({5}))), std::vector<float>{5});
  EXPECT_EQ(sched->stats().timed_out_batches, 0u);
  EXPECT_EQ(sched->stats().batches, 1u);
}

TEST(InferenceScheduler, TheLatencyBoundFlushesAPartialBatch) {
  // Two streams attached, only one with work: its crop waits for the other
  // at most max_batch_latency, then goes alone in a partial batch.
  auto model = std::make_shared<CountingModel>();
  auto sched = make(model, 8, 30);
  auto busy = sched->attach("busy");
  auto idle = sched->attach("idle");
  EXPECT_EQ(values_of(busy->features(crops_of({7, 8}))), (std::vector<float>{7, 8}));
  const auto s = sched->stats();
  EXPECT_EQ(s.batches, 1u);
  EXPECT_EQ(s.timed_out_batches, 1u);
  EXPECT_EQ(s.largest_batch, 2);
  EXPECT_EQ(s.streams, 2);
  EXPECT_EQ(idle->stats().batches, 0u);
  EXPECT_GE(busy->stats().wait_ms_max, 0.0);
}

TEST(InferenceScheduler, BatchesMixStreamsWhileTheModelIsBusy) {
  auto model = std::make_shared<CountingModel>();
  auto sched = make(model, 8, 1000);
  auto a = sched->attach("a"), b = sched->attach("b"), c = sched->attach("c");
  model->close_gate();
  auto first = std::async(std::launch::async, [&] { return a->features(crops_of({1})); });
  model->wait_batches(1);  // {1} alone, after its latency bound (b and c are idle)
  auto fb = std::async(std::launch::async, [&] { return b->features(crops_of({20, 21})); });
  auto fc = std::async(std::launch::async, [&] { return c->features(crops_of({30})); });
  wait_queued(*sched, 3);
  model->open_gate();
  EXPECT_EQ(values_of(first.get()), std::vector<float>{1});
  EXPECT_EQ(values_of(fb.get()), (std::vector<float>{20, 21}));
  EXPECT_EQ(values_of(fc.get()), std::vector<float>{30});
  const auto batches = model->batches();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[1].size(), 3u);  // b's and c's crops in one batch
  EXPECT_EQ(sched->stats().mixed_batches, 1u);
  EXPECT_EQ(b->stats().shared_batches, 1u);
  EXPECT_EQ(c->stats().shared_batches, 1u);
  EXPECT_EQ(a->stats().shared_batches, 0u);
}

TEST(InferenceScheduler, AFloodingStreamCannotStarveAnother) {
  // Stream A queues 8 requests of 16 crops (124 waiting) behind a held
  // batch, then stream B queues 10 requests of one crop. Round-robin: every
  // following batch of 4 holds 2 of B's crops and 2 of A's until B's are
  // done, 5 batches later; first come, first served would put all of B's
  // behind A's 124 crops (31 batches).
  auto model = std::make_shared<CountingModel>();
  auto sched = make(model, 4, 1000);
  auto a = sched->attach("flood"), b = sched->attach("trickle");
  model->close_gate();
  std::vector<std::future<std::vector<Feature>>> flood, trickle;
  for (int t = 0; t < 8; ++t)
    flood.push_back(std::async(std::launch::async, [&a] {
      std::vector<cv::Mat> crops(16, crop_of(100));
      return a->features(crops);
    }));
  model->wait_batches(1);
  wait_queued(*sched, 128 - 4);
  for (int i = 0; i < 10; ++i)
    trickle.push_back(std::async(std::launch::async, [&b, i] { return b->features(crops_of({200 + i})); }));
  wait_queued(*sched, 128 - 4 + 10);
  model->open_gate();
  std::set<float> b_values;
  for (auto& f : trickle) {
    const auto v = values_of(f.get());
    ASSERT_EQ(v.size(), 1u);
    b_values.insert(v[0]);
  }
  EXPECT_EQ(b_values.size(), 10u);
  for (auto& f : flood) EXPECT_EQ(f.get().size(), 16u);
  const auto batches = model->batches();
  ASSERT_EQ(batches.size(), size_t(1 + (124 + 10 + 3) / 4));
  for (size_t i = 1; i <= 5; ++i) {
    const auto n_b = std::count_if(batches[i].begin(), batches[i].end(), [](int v) { return v >= 200; });
    EXPECT_EQ(n_b, 2) << "batch " << i;
    EXPECT_EQ(batches[i].size(), 4u) << "batch " << i;
  }
  for (size_t i = 6; i < batches.size(); ++i)
    for (int v : batches[i]) EXPECT_EQ(v, 100) << "batch " << i;
  EXPECT_EQ(b->stats().requests, 10u);
  EXPECT_EQ(b->stats().batches, 5u);
  EXPECT_EQ(b->stats().shared_batches, 5u);
  EXPECT_EQ(a->stats().crops, 128u);
  EXPECT_EQ(sched->stats().mixed_batches, 5u);
}

TEST(InferenceScheduler, StopFailsQueuedWorkAndFinishesTheRunningBatch) {
  auto model = std::make_shared<CountingModel>();
  auto sched = make(model, 4, 1000);
  auto a = sched->attach("a"), b = sched->attach("b");
  model->close_gate();
  auto running = std::async(std::launch::async, [&] { return a->features(crops_of({1, 2, 3, 4})); });
  model->wait_batches(1);
  auto queued = std::async(std::launch::async, [&] { return b->features(crops_of({5, 6})); });
  wait_queued(*sched, 2);
  auto stopper = std::async(std::launch::async, [&] { sched->stop(); });
  EXPECT_THROW(queued.get(), dfd::SchedulerStopped);  // failed at once, while the batch still runs
  model->open_gate();
  stopper.get();
  EXPECT_EQ(values_of(running.get()), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(sched->stats().cancelled, 1u);
  EXPECT_EQ(b->stats().cancelled, 1u);
  EXPECT_THROW(a->features(crops_of({1})), dfd::SchedulerStopped);
  EXPECT_THROW(sched->attach("late"), dfd::SchedulerStopped);
  sched->stop();  // again: nothing
}

TEST(InferenceScheduler, DestroyingWithAStreamIdleJoinsCleanly) {
  auto model = std::make_shared<CountingModel>();
  std::weak_ptr<InferenceScheduler> weak;
  {
    auto sched = make(model, 4, 5);
    weak = sched;
    auto s = sched->attach("a");
    s->features(crops_of({1}));
  }
  EXPECT_TRUE(weak.expired());
}

TEST(InferenceScheduler, AnExceptionReachesOnlyTheStreamWhoseCropCausedIt) {
  auto model = std::make_shared<CountingModel>();
  auto sched = make(model, 8, 300);
  auto good = sched->attach("good"), bad = sched->attach("bad");
  model->close_gate();
  auto warmup = std::async(std::launch::async, [&] { return good->features(crops_of({1})); });
  model->wait_batches(1);
  auto fg = std::async(std::launch::async, [&] { return good->features(crops_of({40, 41})); });
  auto fb = std::async(std::launch::async, [&] { return bad->features(crops_of({50, kPoison})); });
  wait_queued(*sched, 4);
  model->open_gate();
  warmup.get();
  EXPECT_EQ(values_of(fg.get()), (std::vector<float>{40, 41}));
  try {
    fb.get();
    ADD_FAILURE() << "the poisoned request returned";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "poisoned crop");
  }
  EXPECT_EQ(bad->stats().failed, 1u);
  EXPECT_EQ(good->stats().failed, 0u);
  EXPECT_EQ(good->stats().requests, 2u);
  // The mixed batch failed, then each request ran alone.
  const auto b = model->batches();
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(b[1].size(), 4u);
  // The scheduler goes on for the stream that failed.
  EXPECT_EQ(values_of(bad->features(crops_of({51}))), std::vector<float>{51});
}

TEST(InferenceScheduler, HeadCallsRunThroughTheSchedulerAndKeepTheirErrors) {
  auto model = std::make_shared<CountingModel>();
  auto sched = make(model, 8, 5);
  auto s = sched->attach("a");
  Feature f1{30}, f2{70};
  auto frames = s->classify_frames({&f1, &f2});
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_FLOAT_EQ(frames[1].prob_fake, 0.7f);
  auto windows = s->classify_windows({{&f1, &f2}, {&f1}}, dfd::HeadMode::Reference);
  ASSERT_EQ(windows.size(), 2u);
  EXPECT_FLOAT_EQ(windows[0].prob_fake, 0.7f);
  EXPECT_FLOAT_EQ(windows[1].prob_fake, 0.3f);
  EXPECT_THROW(s->classify_windows({{}}, dfd::HeadMode::Reference), std::invalid_argument);
  EXPECT_EQ(sched->stats().head_calls, 3u);
}

TEST(InferenceScheduler, TheRegistrySharesByKeyAndRefusesAnotherModelUnderIt) {
  auto model = std::make_shared<CountingModel>();
  auto factory = [&] { return std::shared_ptr<const dfd::Inference>(model); };
  bool created = false;
  auto s1 = dfd::shared_scheduler("test-key", "model-a", factory, SchedulerOptions{}, &created);
  EXPECT_TRUE(created);
  SchedulerOptions other;
  other.batch_size = 3;
  auto s2 = dfd::shared_scheduler("test-key", "model-a", factory, other, &created);
  EXPECT_FALSE(created);
  EXPECT_EQ(s1, s2);
  EXPECT_EQ(s2->options().batch_size, SchedulerOptions{}.batch_size);  // the first one's options win
  try {
    dfd::shared_scheduler("test-key", "model-b", factory, SchedulerOptions{});
    ADD_FAILURE() << "another model under the same key was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("model-a"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("model-b"), std::string::npos) << e.what();
  }
  auto s3 = dfd::shared_scheduler("other-key", "model-b", factory, SchedulerOptions{}, &created);
  EXPECT_TRUE(created);
  EXPECT_NE(s3, s1);
  std::weak_ptr<InferenceScheduler> weak = s1;
  s1.reset();
  s2.reset();
  EXPECT_TRUE(weak.expired());  // the registry holds none alive
  auto s4 = dfd::shared_scheduler("test-key", "model-b", factory, SchedulerOptions{}, &created);
  EXPECT_TRUE(created);  // a new one, for the new model
}

// The shipped MesoNet through a shared scheduler: crops of two streams in
// one batch get the features they get alone. Each crop goes through the net
// on its own (convolutions per image), but a different batch size may change
// how a kernel splits its sums, hence the 1e-6 bound; the test prints
// whether they were bit-equal.
TEST(InferenceScheduler, MesoNetFeaturesSharedEqualAlone) {
  const char* dir = std::getenv("DFD_MESONET_MODELS");
  if (!dir) GTEST_SKIP() << "DFD_MESONET_MODELS not set";
  auto detector = dfd::load_detector_shared(std::string(dir) + "/Meso4_DF.h5");
  auto alone = dfd::detector_inference(detector);
  std::vector<cv::Mat> a_crops, b_crops;
  cv::RNG rng(3);
  for (int i = 0; i < 3; ++i) {
    cv::Mat m(256, 256, CV_8UC3);
    rng.fill(m, cv::RNG::UNIFORM, 0, 255);
    (i < 2 ? a_crops : b_crops).push_back(m);
  }
  const auto a_alone = alone->features(a_crops), b_alone = alone->features(b_crops);

  SchedulerOptions o;
  o.batch_size = 8;
  o.max_batch_latency_ms = 10000;  // the first to come waits for the other: one mixed batch
  auto sched = std::make_shared<InferenceScheduler>(alone, o, "meso");
  auto a = sched->attach("a"), b = sched->attach("b");
  auto fa = std::async(std::launch::async, [&] { return a->features(a_crops); });
  auto fb = std::async(std::launch::async, [&] { return b->features(b_crops); });
  const auto a_shared = fa.get(), b_shared = fb.get();
  bool bit_equal = true;
  auto compare = [&](const std::vector<Feature>& x, const std::vector<Feature>& y) {
    ASSERT_EQ(x.size(), y.size());
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(x[i].size(), y[i].size());
      for (size_t k = 0; k < x[i].size(); ++k) {
        EXPECT_NEAR(x[i][k], y[i][k], 1e-6);
        bit_equal = bit_equal && x[i][k] == y[i][k];
      }
    }
  };
  compare(a_shared, a_alone);
  compare(b_shared, b_alone);
  EXPECT_EQ(sched->stats().mixed_batches, 1u);
  std::printf("MesoNet shared vs alone: %s (%llu batches, %llu mixed)\n", bit_equal ? "bit-equal" : "within 1e-6",
              (unsigned long long)sched->stats().batches, (unsigned long long)sched->stats().mixed_batches);
}

}  // namespace

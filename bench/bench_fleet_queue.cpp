// The fleet queue's own cost per job (docs/fleet.md), without any scanning:
// N jobs submitted, then claimed and completed one by one by one consumer,
// against the Redis server given (use a scratch one: the keys go under the
// prefix "bench").
//   deepfake-bench-fleet-queue redis://127.0.0.1:6379 [N]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fleet/job_queue.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: deepfake-bench-fleet-queue REDIS_URL [N]\n");
    return 2;
  }
  const int n = argc > 2 ? std::atoi(argv[2]) : 2000;
  using clock = std::chrono::steady_clock;
  auto ms = [](clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  };
  try {
    dfd::fleet::RedisClient redis(argv[1]);
    dfd::fleet::QueueConfig cfg;
    cfg.prefix = "bench";
    dfd::fleet::JobQueue q(redis, cfg);
    q.ensure_group();
    const auto t0 = clock::now();
    for (int i = 0; i < n; ++i) q.submit_uri("file:///bench/" + std::to_string(i) + ".png");
    const auto t1 = clock::now();
    int done = 0;
    while (auto c = q.claim("bench", 10)) {
      q.complete(*c, "bench", "{\"verdict\":\"REAL\"}", "REAL", 0.1);
      ++done;
    }
    const auto t2 = clock::now();
    std::printf("%d jobs: submit %.3f ms a job, claim + complete %.3f ms a job\n", done, ms(t0, t1) / n,
                ms(t1, t2) / (done ? done : 1));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deepfake-bench-fleet-queue: %s\n", e.what());
    return 1;
  }
  return 0;
}

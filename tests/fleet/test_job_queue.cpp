// The fleet's job queue (src/fleet/) against a real redis-server started here.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "fleet/job_queue.h"
#include "fleet/redis_client.h"
#include "redis_server.h"

using namespace dfd::fleet;
using dfd::test::RedisServer;

namespace {

#define NEED_REDIS(server)                                                                  \
  if (!(server).available()) GTEST_SKIP() << "redis-server is not installed (Debian: redis-server)"

QueueConfig fast_config() {
  QueueConfig c;
  c.prefix = "t";
  c.max_attempts = 3;
  c.claim_timeout_ms = 300;
  return c;
}

long long xlen(RedisClient& r, const std::string& key) { return r.command({"XLEN", key}).integer(); }
long long pending(RedisClient& r, const JobQueue& q) {
  return Reply::at(r.command({"XPENDING", q.stream(), q.group()}).raw(), 0)->integer;
}

}  // namespace

TEST(RedisUrl, Parses) {
  auto a = parse_redis_url("redis://example.org:7000/3");
  EXPECT_EQ(a.host, "example.org");
  EXPECT_EQ(a.port, 7000);
  EXPECT_EQ(a.db, 3);
  a = parse_redis_url("redis://:s3cret@10.0.0.2");
  EXPECT_EQ(a.host, "10.0.0.2");
  EXPECT_EQ(a.port, 6379);
  EXPECT_EQ(a.password, "s3cret");
  EXPECT_EQ(a.text().find("s3cret"), std::string::npos);  // never printed
  a = parse_redis_url("redis://[::1]:6380");
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 6380);
  EXPECT_EQ(parse_redis_url("unix:/run/redis.sock").unix_path, "/run/redis.sock");
}

TEST(RedisUrl, RefusesBadOnes) {
  for (const char* bad : {"", "localhost:6379", "http://x", "redis://", "redis://h:0", "redis://h:70000",
                          "redis://h:12ab", "redis://h/x", "rediss://h", "unix:"})
    EXPECT_THROW(parse_redis_url(bad), RedisUrlError) << bad;
}

TEST(MediaUri, ChecksScheme) {
  EXPECT_NO_THROW(check_media_uri("file:///data/a.mp4"));
  EXPECT_NO_THROW(check_media_uri("https://example.org/a.mp4"));
  EXPECT_THROW(check_media_uri("file://relative.mp4"), std::invalid_argument);
  EXPECT_THROW(check_media_uri("/data/a.mp4"), std::invalid_argument);
  EXPECT_THROW(check_media_uri("ftp://h/a.mp4"), std::invalid_argument);
  EXPECT_THROW(check_media_uri("http://"), std::invalid_argument);
}

TEST(RedisClientTest, UnreachableIsUnavailableWithAddress) {
  RedisClient c("redis://127.0.0.1:" + std::to_string(dfd::test::free_port()), 1, 1);
  try {
    c.command({"PING"});
    FAIL() << "no exception";
  } catch (const RedisUnavailable& e) {
    EXPECT_NE(std::string(e.what()).find("cannot reach Redis at redis://127.0.0.1:"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(c.connected());
}

TEST(RedisClientTest, ErrorReplyIsRedisErrorAndConnectionStays) {
  RedisServer server;
  NEED_REDIS(server);
  RedisClient c(server.url());
  EXPECT_THROW(c.command({"NOSUCHCOMMAND"}), RedisError);
  EXPECT_TRUE(c.connected());
  EXPECT_EQ(c.command({"PING"}).str(), "PONG");
  // Binary-safe arguments and replies.
  const std::string bytes("a\0b\r\nc", 6);
  c.command({"SET", "k", bytes});
  EXPECT_EQ(c.command({"GET", "k"}).str(), bytes);
}

TEST(RedisClientTest, ReconnectsAfterRestart) {
  RedisServer server;
  NEED_REDIS(server);
  RedisClient c(server.url());
  c.command({"SET", "kept", "1"});
  EXPECT_EQ(c.eval("return 41 + 1", {}, {}).integer(), 42);
  server.restart();
  // The old connection is dead: one call fails (or reconnects), the next works.
  try {
    c.command({"PING"});
  } catch (const RedisUnavailable&) {
  }
  EXPECT_EQ(c.command({"GET", "kept"}).str(), "1");  // appendonly: the data survived
  EXPECT_EQ(c.eval("return 41 + 1", {}, {}).integer(), 42);  // the script is loaded again
}

TEST(JobQueueTest, SubmitClaimComplete) {
  RedisServer server;
  NEED_REDIS(server);
  RedisClient r(server.url());
  JobQueue q(r, fast_config());
  q.ensure_group();
  q.ensure_group();  // idempotent
  const std::string id = q.submit_uri("file:///data/clip.mp4", "clip.mp4");
  EXPECT_TRUE(is_job_id(id));
  EXPECT_EQ(q.status(id)->state, "queued");
  auto c = q.claim("w1", 100);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->job_id, id);
  EXPECT_EQ(c->uri, "file:///data/clip.mp4");
  EXPECT_EQ(c->source, "clip.mp4");
  EXPECT_EQ(c->attempt, 1);
  auto s = q.status(id);
  EXPECT_EQ(s->state, "running");
  EXPECT_EQ(s->worker, "w1");
  EXPECT_EQ(pending(r, q), 1);
  EXPECT_EQ(q.complete(*c, "w1", R"({"verdict":"REAL"})", "REAL", 0.25), CompleteOutcome::Won);
  s = q.status(id);
  EXPECT_EQ(s->state, "done");
  EXPECT_EQ(s->verdict, "REAL");
  EXPECT_DOUBLE_EQ(s->probability, 0.25);
  EXPECT_EQ(s->report_json, R"({"verdict":"REAL"})");
  EXPECT_GT(s->finished_ms, 0);
  EXPECT_EQ(pending(r, q), 0);
  EXPECT_EQ(xlen(r, q.done_stream()), 1);
  EXPECT_FALSE(q.claim("w1", 50));  // nothing left
  EXPECT_TRUE(q.leave("w1"));
  EXPECT_EQ(r.command({"XINFO", "CONSUMERS", q.stream(), q.group()}).size(), 0u);
}

TEST(JobQueueTest, UploadTravelsWithTtlAndIsDroppedWhenDone) {
  RedisServer server;
  NEED_REDIS(server);
  RedisClient r(server.url());
  QueueConfig cfg = fast_config();
  cfg.upload_ttl_s = 120;
  JobQueue q(r, cfg);
  q.ensure_group();
  const std::string bytes("\x89PNG\r\n\x1a\n\0\0rest", 14);
  const std::string id = q.submit_upload(bytes, "face.png");
  const long long ttl = r.command({"TTL", q.upload_key(id)}).integer();
  EXPECT_GT(ttl, 100);
  EXPECT_LE(ttl, 120);
  auto c = q.claim("w1", 100);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->uri, "");
  EXPECT_EQ(c->upload_key, q.upload_key(id));
  EXPECT_EQ(q.fetch_upload(*c), bytes);
  q.complete(*c, "w1", "{}", "REAL", 0.1);
  EXPECT_EQ(r.command({"EXISTS", q.upload_key(id)}).integer(), 0);
  EXPECT_THROW(q.fetch_upload(*c), std::runtime_error);
  EXPECT_THROW(q.submit_upload("", "empty.png"), std::invalid_argument);
  EXPECT_THROW(q.submit_uri("relative/path.mp4"), std::invalid_argument);
}

TEST(JobQueueTest, DeadWorkersJobIsReclaimedAndResultIsKeptOnce) {
  RedisServer server;
  NEED_REDIS(server);
  RedisClient r(server.url());
  JobQueue q(r, fast_config());
  q.ensure_group();
  const std::string id = q.submit_uri("file:///a.png");
  auto first = q.claim("w1", 100);
  ASSERT_TRUE(first);
  // w1 goes silent (no heartbeat): after claim_timeout_ms, w2 takes it over.
  EXPECT_FALSE(q.claim("w2", 50)) << "taken over before the timeout";
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  auto second = q.claim("w2", 100);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->job_id, id);
  EXPECT_EQ(second->attempt, 2);
  EXPECT_FALSE(q.heartbeat(*first, "w1"));  // no longer w1's
  EXPECT_TRUE(q.heartbeat(*second, "w2"));
  EXPECT_FALSE(q.leave("w2"));  // it holds the job: stays in the group
  EXPECT_TRUE(q.leave("w1"));   // holds nothing any more
  // Both finish: the first result stored wins, the other is dropped.
  EXPECT_EQ(q.complete(*second, "w2", R"({"by":"w2"})", "FAKE", 0.9), CompleteOutcome::Won);
  EXPECT_EQ(q.complete(*first, "w1", R"({"by":"w1"})", "REAL", 0.1), CompleteOutcome::Duplicate);
  auto s = q.status(id);
  EXPECT_EQ(s->report_json, R"({"by":"w2"})");
  EXPECT_EQ(s->verdict, "FAKE");
  EXPECT_EQ(s->worker, "w2");
  EXPECT_EQ(xlen(r, q.done_stream()), 1);
  EXPECT_EQ(pending(r, q), 0);
}

TEST(JobQueueTest, HeartbeatKeepsALongJob) {
  RedisServer server;
  NEED_REDIS(server);
  RedisClient r(server.url());
  JobQueue q(r, fast_config());
  q.ensure_group();
  q.submit_uri("file:///long.mp4");
  auto c = q.claim("w1", 100);
  ASSERT_TRUE(c);
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    EXPECT_TRUE(q.heartbeat(*c, "w1"));
    EXPECT_FALSE(q.claim("w2", 10)) << "taken over from a live worker at beat " << i;
  }
}

TEST(JobQueueTest, FailingJobIsRetriedThenDeadLettered) {
  RedisServer server;
  NEED_REDIS(server);
  RedisClient r(server.url());
  JobQueue q(r, fast_config());
  q.ensure_group();
  const std::string id = q.submit_uri("file:///corrupt.mp4");
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto c = q.claim("w1", 100);
    ASSERT_TRUE(c) << attempt;
    EXPECT_EQ(c->attempt, attempt);
    const std::string state = q.fail(*c, "w1", "decode: corrupt data " + std::to_string(attempt));
    EXPECT_EQ(state, attempt < 3 ? "failed" : "dead");
    auto s = q.status(id);
    EXPECT_EQ(s->state, state);
    EXPECT_EQ(s->error, "decode: corrupt data " + std::to_string(attempt));
    EXPECT_EQ(s->attempts, attempt);
  }
  EXPECT_FALSE(q.claim("w1", 50));
  EXPECT_EQ(pending(r, q), 0);
  Reply dead = r.command({"XRANGE", q.dead_stream(), "-", "+"});
  ASSERT_EQ(dead.size(), 1u);
  const redisReply* fields = Reply::at(Reply::at(dead.raw(), 0), 1);
  EXPECT_EQ(Reply::str_of(Reply::at(fields, 1)), id);
  EXPECT_EQ(Reply::str_of(Reply::at(fields, 3)), "decode: corrupt data 3");
  EXPECT_EQ(Reply::str_of(Reply::at(fields, 5)), "3");
  EXPECT_EQ(xlen(r, q.done_stream()), 0);
}

TEST(JobQueueTest, JobThatKillsItsWorkersIsDeadLettered) {
  RedisServer server;
  NEED_REDIS(server);
  RedisClient r(server.url());
  QueueConfig cfg = fast_config();
  cfg.max_attempts = 2;
  cfg.claim_timeout_ms = 100;
  JobQueue q(r, cfg);
  q.ensure_group();
  const std::string id = q.submit_uri("file:///crashes.mp4");
  ASSERT_TRUE(q.claim("w1", 100));  // w1 dies
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_TRUE(q.claim("w2", 100));  // w2 dies too
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(q.claim("w3", 50));  // a third claim buries it instead
  auto s = q.status(id);
  EXPECT_EQ(s->state, "dead");
  EXPECT_EQ(s->attempts, 2);
  EXPECT_NE(s->error.find("no result after 2 attempts"), std::string::npos) << s->error;
  EXPECT_EQ(xlen(r, q.dead_stream()), 1);
  EXPECT_EQ(pending(r, q), 0);
}

TEST(JobQueueTest, UnknownAndMalformedIdsAreNotFound) {
  RedisServer server;
  NEED_REDIS(server);
  RedisClient r(server.url());
  JobQueue q(r, fast_config());
  EXPECT_FALSE(q.status("0123456789abcdef0123456789abcdef"));
  EXPECT_FALSE(q.status("../../etc"));
  EXPECT_FALSE(q.status("t:jobs"));
}

TEST(JobQueueTest, RestartWithDataLosesNothing) {
  RedisServer server(true);
  NEED_REDIS(server);
  RedisClient r(server.url());
  JobQueue q(r, fast_config());
  q.ensure_group();
  std::set<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.insert(q.submit_uri("file:///f" + std::to_string(i)));
  auto held = q.claim("w1", 100);
  ASSERT_TRUE(held);
  server.restart();
  // w1 reconnects and delivers its result; the others are still queued.
  CompleteOutcome out{};
  for (int i = 0; i < 3; ++i) {
    try {
      out = q.complete(*held, "w1", "{}", "REAL", 0);
      break;
    } catch (const RedisUnavailable&) {
    }
  }
  EXPECT_EQ(out, CompleteOutcome::Won);
  std::set<std::string> seen = {held->job_id};
  while (auto c = q.claim("w1", 50)) {
    EXPECT_EQ(q.complete(*c, "w1", "{}", "REAL", 0), CompleteOutcome::Won);
    seen.insert(c->job_id);
  }
  EXPECT_EQ(seen, ids);
  EXPECT_EQ(xlen(r, q.done_stream()), 4);
}

TEST(JobQueueTest, RestartWithoutDataForgetsJobsAndQueueWorksAgain) {
  RedisServer server(false);
  NEED_REDIS(server);
  RedisClient r(server.url());
  JobQueue q(r, fast_config());
  q.ensure_group();
  const std::string lost = q.submit_uri("file:///lost");
  auto held = q.claim("w1", 100);
  ASSERT_TRUE(held);
  server.restart();
  // Defined outcome: the job is gone (status unknown); the result is dropped
  // as "gone"; the stream and group are made again and new jobs run.
  CompleteOutcome out{};
  for (int i = 0; i < 3; ++i) {
    try {
      out = q.complete(*held, "w1", "{}", "REAL", 0);
      break;
    } catch (const RedisUnavailable&) {
    }
  }
  EXPECT_EQ(out, CompleteOutcome::Gone);
  EXPECT_FALSE(q.status(lost));
  EXPECT_FALSE(q.claim("w1", 50));  // NOGROUP: made again, nothing to do
  const std::string fresh = q.submit_uri("file:///fresh");
  auto c = q.claim("w1", 100);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->job_id, fresh);
}

TEST(JobQueueTest, RedisAwayThrowsUnavailable) {
  RedisServer server;
  NEED_REDIS(server);
  RedisClient r(server.url(), 1, 2);
  JobQueue q(r, fast_config());
  q.ensure_group();
  server.stop();
  EXPECT_THROW(q.submit_uri("file:///x"), RedisUnavailable);
  EXPECT_THROW(q.claim("w1", 50), RedisUnavailable);
  EXPECT_THROW(q.status("0123456789abcdef0123456789abcdef"), RedisUnavailable);
  server.start();
  EXPECT_TRUE(is_job_id(q.submit_uri("file:///x")));
}

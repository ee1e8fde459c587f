// The fleet end to end (docs/fleet.md): deepfake-worker processes, deepfake-scan
// --redis --submit and deepfake-serve --redis against a real redis-server
// started here. Media are made by make_clip from tests/data/astronaut.png.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <set>

#include "fleet/job_queue.h"
#include "fleet/redis_client.h"
#include "fleet_test_util.h"
#include "history/history_store.h"
#include "redis_server.h"

using namespace dfd::fleet;
using namespace dfd::test;
using nlohmann::json;

namespace {

std::string bin(const char* var) { return env_or(var); }

class Fleet : public ::testing::Test {
 protected:
  void SetUp() override {
    if (find_program("redis-server").empty()) GTEST_SKIP() << "redis-server is not installed (Debian: redis-server)";
    char tmpl[] = "/tmp/dfd-fleet-XXXXXX";
    ASSERT_TRUE(mkdtemp(tmpl));
    dir_ = tmpl;
    setenv("XDG_DATA_HOME", dir_.c_str(), 1);  // the service's data directory (its history) stays in here
  }
  void TearDown() override {
    workers_.clear();
    if (!dir_.empty() && !HasFailure()) remove_tree(dir_);
    else if (!dir_.empty()) std::fprintf(stderr, "kept %s for inspection\n", dir_.c_str());
  }

  // make_clip OUT [ARGS]: a picture (.png) or an MJPG clip (.avi) of the portrait.
  std::string media(const std::string& name, const std::string& args = "") {
    const std::string path = dir_ + "/" + name;
    int code = 0;
    run(bin("DFD_MAKE_CLIP") + " " + path + " " + args + " >/dev/null 2>&1", &code);
    EXPECT_EQ(code, 0) << "make_clip " << name;
    return path;
  }
  std::string corrupt(const std::string& name) {
    const std::string path = dir_ + "/" + name;
    std::ofstream f(path, std::ios::binary);
    for (int i = 0; i < 4096; ++i) f.put(char((i * 7919) & 0xff));
    return path;
  }

  Child& worker(const std::string& url, const std::string& name, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {bin("DFD_WORKER_BIN"), "--redis", url, "--name", name, "--num-threads", "1",
                                     "--claim-timeout", "3"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    workers_.push_back(std::make_unique<Child>(argv, dir_ + "/" + name + ".log"));
    return *workers_.back();
  }

  static std::string uri(const std::string& path) { return "file://" + path; }

  std::string dir_;
  std::vector<std::unique_ptr<Child>> workers_;
};

// Every entry of a stream as job -> count.
std::map<std::string, int> jobs_in(RedisClient& r, const std::string& stream) {
  std::map<std::string, int> n;
  Reply all = r.command({"XRANGE", stream, "-", "+"});
  for (size_t i = 0; i < all.size(); ++i) ++n[Reply::str_of(Reply::at(Reply::at(Reply::at(all.raw(), i), 1), 1))];
  return n;
}

bool all_terminal(JobQueue& q, const std::vector<std::string>& ids) {
  try {
    for (const auto& id : ids) {
      auto s = q.status(id);
      if (!s || !s->terminal()) return false;
    }
    return true;
  } catch (const RedisUnavailable&) {
    return false;
  }
}

}  // namespace

// Three workers; the one scanning the long clip is killed (SIGKILL) and
// another finishes it after the claim timeout; Redis (append-only file) is
// restarted on its port while jobs run. Defined outcome: every job done,
// each reported exactly once (one entry in the done stream), the killed
// worker's job with two attempts and another worker's result.
TEST_F(Fleet, KilledWorkerAndRedisRestartLoseNothing) {
  RedisServer redis(true);
  const std::string clip = media("long.avi", "--frames 600 --width 640 --height 480");
  std::vector<std::string> pictures;
  for (int i = 0; i < 6; ++i) pictures.push_back(media("p" + std::to_string(i) + ".png"));
  std::map<std::string, Child*> by_name;
  for (const char* n : {"w0", "w1", "w2"}) by_name[n] = &worker(redis.url(), n);

  RedisClient r(redis.url());
  JobQueue q(r);
  q.ensure_group();
  std::vector<std::string> ids = {q.submit_uri(uri(clip), "long.avi")};
  const std::string long_id = ids.front();
  for (const auto& p : pictures) ids.push_back(q.submit_uri(uri(p)));

  std::string victim;
  ASSERT_TRUE(eventually(60, [&] {
    auto s = q.status(long_id);
    if (s && s->state == "running") victim = s->worker;
    return !victim.empty();
  })) << "the long clip never started";
  by_name.at(victim)->signal(SIGKILL);
  EXPECT_EQ(by_name.at(victim)->wait_exit(10), 128 + SIGKILL);

  // Redis goes away for a moment while the others work (or wait to take over).
  redis.restart();
  ASSERT_TRUE(eventually(80, [&] { return all_terminal(q, ids); })) << "not all jobs finished";

  for (const auto& id : ids) {
    auto s = q.status(id);
    EXPECT_EQ(s->state, "done") << id << ": " << s->error;
    EXPECT_FALSE(s->report_json.empty());
  }
  const auto s = q.status(long_id);
  EXPECT_NE(s->worker, victim);
  EXPECT_EQ(s->attempts, 2);
  EXPECT_EQ(json::parse(s->report_json)["source"], "long.avi");
  const auto done = jobs_in(r, q.done_stream());
  EXPECT_EQ(done.size(), ids.size());
  for (const auto& id : ids) EXPECT_EQ(done.count(id) ? done.at(id) : 0, 1) << id;
  EXPECT_EQ(Reply::at(r.command({"XPENDING", q.stream(), q.group()}).raw(), 0)->integer, 0);

  // SIGTERM: the survivors stop cleanly.
  for (auto& [name, child] : by_name)
    if (name != victim) {
      child->signal(SIGTERM);
      EXPECT_EQ(child->wait_exit(30), 0) << child->log();
    }
}

// A worker told to stop while it scans finishes the job, delivers it, and exits 0.
TEST_F(Fleet, SigtermFinishesTheCurrentJob) {
  RedisServer redis(false);
  const std::string clip = media("clip.avi", "--frames 200 --width 640 --height 480");
  Child& w = worker(redis.url(), "solo");
  RedisClient r(redis.url());
  JobQueue q(r);
  q.ensure_group();
  const std::string id = q.submit_uri(uri(clip));
  ASSERT_TRUE(eventually(60, [&] { return q.status(id)->state == "running"; }));
  w.signal(SIGTERM);
  EXPECT_EQ(w.wait_exit(60), 0) << w.log();
  const auto s = q.status(id);
  EXPECT_EQ(s->state, "done");
  EXPECT_EQ(s->worker, "solo");
  EXPECT_EQ(s->attempts, 1);
}

// A file that never scans: N attempts, then the dead-letter stream with the
// reason; deepfake-scan --wait reports it as a failed input (exit 1).
TEST_F(Fleet, CorruptFileEndsInDeadLetterStream) {
  RedisServer redis(false);
  const std::string bad = corrupt("corrupt.mp4");
  const std::string good = media("good.png");
  worker(redis.url(), "wa", {"--max-attempts", "2"});
  worker(redis.url(), "wb", {"--max-attempts", "2"});
  int code = 0;
  const std::string out = run(bin("DFD_SCAN_BIN") + " --redis " + redis.url() + " --submit " + bad + " " + good +
                                  " --wait 2>" + dir_ + "/scan.err",
                              &code);
  // The good picture is FAKE with the shipped model (12: FAKE and failed), or REAL/NO_FACE (1: failed).
  EXPECT_TRUE(code == 12 || code == 1) << code << out;
  EXPECT_NE(out.find("FAILED"), std::string::npos) << out;
  EXPECT_NE(out.find("dead-lettered after 2 attempts: not-media: "), std::string::npos) << out;
  RedisClient r(redis.url());
  JobQueue q(r);
  Reply dead = r.command({"XRANGE", q.dead_stream(), "-", "+"});
  ASSERT_EQ(dead.size(), 1u);
  const redisReply* f = Reply::at(Reply::at(dead.raw(), 0), 1);
  const std::string id = Reply::str_of(Reply::at(f, 1));
  EXPECT_NE(Reply::str_of(Reply::at(f, 3)).find("corrupt.mp4"), std::string::npos) << Reply::str_of(Reply::at(f, 3));
  EXPECT_EQ(Reply::str_of(Reply::at(f, 5)), "2");
  const auto s = q.status(id);
  EXPECT_EQ(s->state, "dead");
  EXPECT_EQ(s->attempts, 2);
  EXPECT_EQ(s->uri, uri(bad));
  EXPECT_EQ(jobs_in(r, q.done_stream()).size(), 1u);  // the good picture only
}

// deepfake-scan --submit without --wait prints the job ids; a missing file is refused.
TEST_F(Fleet, SubmitPrintsJobIds) {
  RedisServer redis(false);
  const std::string a = media("a.png");
  int code = 0;
  std::string out = run(bin("DFD_SCAN_BIN") + " --redis " + redis.url() + " --submit " + a + " 2>/dev/null", &code);
  EXPECT_EQ(code, 0);
  ASSERT_GE(out.size(), 33u);
  const std::string id = out.substr(0, 32);
  EXPECT_TRUE(is_job_id(id)) << out;
  RedisClient r(redis.url());
  JobQueue q(r);
  EXPECT_EQ(q.status(id)->uri, uri(a));
  EXPECT_EQ(q.status(id)->state, "queued");
  out = run(bin("DFD_SCAN_BIN") + " --redis " + redis.url() + " --submit " + dir_ + "/none.png 2>&1", &code);
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("none.png"), std::string::npos) << out;
  // Redis away: a clear error, exit 1.
  out = run(bin("DFD_SCAN_BIN") + " --redis redis://127.0.0.1:" + std::to_string(free_port()) + " --submit " + a +
                " 2>&1",
            &code);
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("cannot reach Redis"), std::string::npos) << out;
  out = run(bin("DFD_SCAN_BIN") + " --submit " + a + " 2>&1", &code);
  EXPECT_EQ(code, 2) << out;
  // No worker: --wait-timeout ends the wait; the job is a failed row and stays queued.
  out = run(bin("DFD_SCAN_BIN") + " --redis " + redis.url() + " --submit " + a + " --wait --wait-timeout 1 2>/dev/null",
            &code);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("not finished within --wait-timeout"), std::string::npos) << out;
  out = run(bin("DFD_SCAN_BIN") + " --redis " + redis.url() + " --submit " + a + " --wait-timeout x 2>&1", &code);
  EXPECT_EQ(code, 2) << out;
}

// The fault "Redis away": a worker started without Redis waits and says so,
// then works once Redis is there; the front end answers 503 with the cause
// and keeps serving the rest.
TEST_F(Fleet, RedisAwayWorkerRetriesFrontEndAnswers503) {
  const int port = free_port();
  const std::string url = "redis://127.0.0.1:" + std::to_string(port);
  Child& w = worker(url, "patient");
  Child serve({bin("DFD_SERVE_BIN"), "--port", "0", "--redis", url, "--num-threads", "1"}, dir_ + "/serve.log");
  std::string base;
  ASSERT_TRUE(eventually(60, [&] {
    const std::string log = serve.log();
    const auto at = log.find("listening on ");
    if (at != std::string::npos) base = log.substr(at + 13, log.find('\n', at) - at - 13);
    return !base.empty();
  })) << serve.log();
  const std::string pic = media("face.png");
  Http h = curl("-F file=@" + pic + " " + base + "/api/v1/jobs");
  EXPECT_EQ(h.status, 503) << h.body;
  EXPECT_NE(h.body.find("the job queue is unavailable: cannot reach Redis at " + url), std::string::npos) << h.body;
  h = curl(base + "/api/v1/jobs/0123456789abcdef0123456789abcdef");
  EXPECT_EQ(h.status, 503) << h.body;
  EXPECT_EQ(curl(base + "/healthz").status, 200);
  ASSERT_TRUE(eventually(30, [&] { return w.log().find("cannot reach Redis") != std::string::npos; })) << w.log();
  EXPECT_TRUE(w.running());

  // Redis comes up on that port (started here, stopped by its pid below): both carry on.
  char tmpl[] = "/tmp/dfd-redis-XXXXXX";
  ASSERT_TRUE(mkdtemp(tmpl));
  Child server({find_program("redis-server"), "--port", std::to_string(port), "--bind", "127.0.0.1", "--dir", tmpl,
                "--save", "", "--appendonly", "no"},
               dir_ + "/redis.log");
  RedisClient r(url);
  ASSERT_TRUE(eventually(30, [&] {
    try {
      return r.command({"PING"}).str() == "PONG";
    } catch (const std::exception&) {
      return false;
    }
  }));
  h = curl("-F file=@" + pic + " " + base + "/api/v1/jobs");
  ASSERT_EQ(h.status, 202) << h.body;
  const std::string id = json::parse(h.body)["job_id"];
  JobQueue q(r);
  ASSERT_TRUE(eventually(60, [&] { return all_terminal(q, {id}); })) << w.log();
  EXPECT_EQ(q.status(id)->state, "done");
  EXPECT_NE(w.log().find("Redis is back"), std::string::npos) << w.log();
  serve.signal(SIGTERM);
  EXPECT_EQ(serve.wait_exit(30), 0);
  server.signal(SIGTERM);
  server.wait_exit(30);
  remove_tree(tmpl);
}

// deepfake-serve --redis: 202 and a job id, then the state and the report;
// bad requests are refused with the reason. The worker records each result
// once in the result history (--history).
TEST_F(Fleet, ServeJobApiAndHistory) {
  RedisServer redis(false);
  const std::string history = dir_ + "/history.db";
  Child& w = worker(redis.url(), "hw", {"--history", "sqlite:" + history});
  Child serve({bin("DFD_SERVE_BIN"), "--port", "0", "--redis", redis.url(), "--num-threads", "1"}, dir_ + "/serve.log");
  std::string base;
  ASSERT_TRUE(eventually(60, [&] {
    const std::string log = serve.log();
    const auto at = log.find("listening on ");
    if (at != std::string::npos) base = log.substr(at + 13, log.find('\n', at) - at - 13);
    return !base.empty();
  })) << serve.log();
  const std::string pic = media("face.png");
  const std::string clip = media("clip.avi", "--frames 12");

  Http up = curl("-F 'file=@" + pic + ";filename=portrait.png' " + base + "/api/v1/jobs");
  ASSERT_EQ(up.status, 202) << up.body;
  const std::string up_id = json::parse(up.body)["job_id"];
  EXPECT_EQ(json::parse(up.body)["status_url"], "/api/v1/jobs/" + up_id);
  Http byuri = curl("-H 'Content-Type: application/json' -d '{\"uri\":\"" + uri(clip) + "\"}' " + base +
                    "/api/v1/jobs");
  ASSERT_EQ(byuri.status, 202) << byuri.body;
  const std::string uri_id = json::parse(byuri.body)["job_id"];

  json got;
  ASSERT_TRUE(eventually(60, [&] {
    Http h = curl(base + "/api/v1/jobs/" + up_id);
    if (h.status != 200) return false;
    got = json::parse(h.body);
    return got["state"] == "done" || got["state"] == "dead";
  })) << w.log();
  EXPECT_EQ(got["state"], "done") << got.dump();
  EXPECT_EQ(got["source"], "portrait.png");
  EXPECT_EQ(got["report"]["source"], "portrait.png");
  EXPECT_EQ(got["report"]["verdict"], got["verdict"]);
  EXPECT_EQ(got["worker"], "hw");
  ASSERT_TRUE(eventually(60, [&] {
    got = json::parse(curl(base + "/api/v1/jobs/" + uri_id).body);
    return got["state"] == "done";
  })) << got.dump();
  EXPECT_EQ(got["uri"], uri(clip));
  EXPECT_GT(got["report"]["stats"]["frames"].get<int>(), 0);

  // An upload that is no media: dead after its attempts, the reason naming the upload, not the worker's copy.
  const std::string bad = corrupt("broken.mp4");
  Http broken = curl("-F file=@" + bad + " " + base + "/api/v1/jobs");
  ASSERT_EQ(broken.status, 202) << broken.body;
  const std::string bad_id = json::parse(broken.body)["job_id"];
  ASSERT_TRUE(eventually(60, [&] {
    got = json::parse(curl(base + "/api/v1/jobs/" + bad_id).body);
    return got["state"] == "dead";
  })) << got.dump();
  EXPECT_EQ(got["attempts"], 3);
  EXPECT_NE(got["error"].get<std::string>().find("broken.mp4"), std::string::npos) << got.dump();
  EXPECT_EQ(got["error"].get<std::string>().find("dfd-worker-"), std::string::npos) << got.dump();
  EXPECT_FALSE(got.contains("report"));

  // Refusals, each with its reason.
  Http h = curl("-H 'Content-Type: application/json' -d '{\"uri\":\"ftp://x/y\"}' " + base + "/api/v1/jobs");
  EXPECT_EQ(h.status, 400);
  EXPECT_NE(h.body.find("must be file:///PATH"), std::string::npos) << h.body;
  h = curl("-H 'Content-Type: application/json' -d '{\"url\":1}' " + base + "/api/v1/jobs");
  EXPECT_EQ(h.status, 400);
  h = curl("-H 'Content-Type: application/json' -d 'not json' " + base + "/api/v1/jobs");
  EXPECT_EQ(h.status, 400);
  h = curl("-F other=@" + pic + " " + base + "/api/v1/jobs");
  EXPECT_EQ(h.status, 400);
  EXPECT_NE(h.body.find("no field named 'file'"), std::string::npos) << h.body;
  h = curl("-d x=1 " + base + "/api/v1/jobs");
  EXPECT_EQ(h.status, 400);
  EXPECT_EQ(curl(base + "/api/v1/jobs").status, 405);
  EXPECT_EQ(curl(base + "/api/v1/jobs/0123456789abcdef0123456789abcdef").status, 404);
  h = curl(base + "/api/v1/jobs/..%2f..%2fetc");  // refused (404 by us or 400 by libsoup), never looked up
  EXPECT_TRUE(h.status == 404 || h.status == 400) << h.status;
  EXPECT_EQ(curl(base + "/api/v1/jobs/t:jobs").status, 404);
  EXPECT_EQ(curl("-X DELETE " + base + "/api/v1/jobs/" + up_id).status, 405);
  // /predict_media still scans locally, unchanged.
  h = curl("-F file=@" + pic + " " + base + "/predict_media");
  EXPECT_EQ(h.status, 200) << h.body;
  EXPECT_TRUE(json::parse(h.body).contains("label")) << h.body;

  // The history: one entry per job, with the media's checksum.
  w.signal(SIGTERM);
  EXPECT_EQ(w.wait_exit(30), 0);
  auto store = dfd::history::open_history_store("sqlite:" + history);
  int64_t total = 0;
  const auto entries = store->list({}, &total);
  EXPECT_EQ(total, 2);
  std::set<std::string> sources;
  for (const auto& e : entries) {
    sources.insert(e.source);
    EXPECT_EQ(e.media_sha256.size(), 64u);
    EXPECT_FALSE(e.model_key.empty());
  }
  EXPECT_EQ(sources, (std::set<std::string>{"portrait.png", uri(clip)}));
  serve.signal(SIGTERM);
  EXPECT_EQ(serve.wait_exit(30), 0);
}

// Media by HTTP (python3's http.server here): fetched and scanned; a 404 is a
// failed attempt with the status in the reason.
TEST_F(Fleet, HttpMediaIsFetched) {
  const std::string python = find_program("python3");
  if (python.empty()) GTEST_SKIP() << "python3 is not installed";
  RedisServer redis(false);
  media("face.png");
  const int port = free_port();
  Child http({python, "-m", "http.server", std::to_string(port), "--bind", "127.0.0.1", "--directory", dir_},
             dir_ + "/http.log");
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(eventually(30, [&] { return curl(base + "/face.png -o /dev/null").status == 200; })) << http.log();
  worker(redis.url(), "web", {"--max-attempts", "1"});
  RedisClient r(redis.url());
  JobQueue q(r);
  q.ensure_group();
  const std::string ok = q.submit_uri(base + "/face.png");
  const std::string missing = q.submit_uri(base + "/missing.png");
  ASSERT_TRUE(eventually(60, [&] { return all_terminal(q, {ok, missing}); }));
  auto s = q.status(ok);
  EXPECT_EQ(s->state, "done") << s->error;
  EXPECT_EQ(json::parse(s->report_json)["source"], base + "/face.png");
  s = q.status(missing);
  EXPECT_EQ(s->state, "dead");
  EXPECT_NE(s->error.find("HTTP 404"), std::string::npos) << s->error;
}

// Bad command lines: exit 2 with the reason.
TEST_F(Fleet, WorkerCommandLine) {
  int code = 0;
  std::string out = run(bin("DFD_WORKER_BIN") + " 2>&1", &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("--redis URL is required"), std::string::npos) << out;
  out = run(bin("DFD_WORKER_BIN") + " --redis localhost:6379 2>&1", &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("must start with redis://"), std::string::npos) << out;
  out = run(bin("DFD_WORKER_BIN") + " --redis redis://h --max-attempts 0 2>&1", &code);
  EXPECT_EQ(code, 2) << out;
  out = run(bin("DFD_WORKER_BIN") + " --redis redis://h --bogus 2>&1", &code);
  EXPECT_EQ(code, 2) << out;
}

// Redis restarted without its data under a running worker: the defined
// outcome is that earlier jobs are gone, and the worker makes the stream and
// group again and runs the jobs queued afterwards.
TEST_F(Fleet, WorkerCarriesOnAfterRedisLosesItsData) {
  RedisServer redis(false);
  const std::string pic = media("face.png");
  Child& w = worker(redis.url(), "amnesia");
  RedisClient r(redis.url());
  JobQueue q(r);
  q.ensure_group();
  const std::string before = q.submit_uri(uri(pic));
  ASSERT_TRUE(eventually(60, [&] { return all_terminal(q, {before}); })) << w.log();
  redis.restart();
  std::optional<JobStatus> gone;
  ASSERT_TRUE(eventually(10, [&] {
    try {
      gone = q.status(before);
      return true;
    } catch (const RedisUnavailable&) {
      return false;
    }
  }));
  EXPECT_FALSE(gone);  // Redis forgot it; the worker makes the group again (NOGROUP)
  const std::string after = q.submit_uri(uri(pic));
  ASSERT_TRUE(eventually(60, [&] { return all_terminal(q, {after}); })) << w.log();
  EXPECT_EQ(q.status(after)->state, "done");
  EXPECT_TRUE(w.running());
}

// What every HistoryStore backend must do, run by test_sqlite_store.cpp and
// test_postgres_store.cpp against a fresh, empty store.
#pragma once
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "history/history_store.h"

namespace dfd_test {

using dfd::history::HistoryStore;
using dfd::history::ScanEntry;
using dfd::history::ScanQuery;

inline ScanEntry make_entry(int64_t time_ms, const std::string& verdict, const std::string& sha = "aa",
                            const std::string& key = "model-1") {
  ScanEntry entry;
  entry.time_ms = time_ms;
  entry.source = "clip-" + std::to_string(time_ms) + ".mp4";
  entry.media_sha256 = sha;
  entry.model = "MesoNet";
  entry.model_key = key;
  entry.verdict = verdict;
  entry.probability = verdict == "FAKE" ? 0.875 : 0.125;
  entry.report_json = "{\"verdict\":\"" + verdict + "\"}";
  return entry;
}

// Every field comes back as stored, including text that would break SQL
// pasted together by hand, non-ASCII names and a large report.
inline void check_round_trip(HistoryStore& store) {
  ScanEntry entry = make_entry(1700000000123, "FAKE", std::string(64, 'f'), "sha256:0123");
  entry.source = "Robert'); DROP TABLE scans; -- \"ü\xE2\x82\xAC\".mp4";
  entry.model = "model with 'quotes' and $1 ?1";
  entry.probability = 0.123456789012345;
  entry.report_json = "{\"frames\":\"" + std::string(300000, 'x') + "\"}";
  entry.id = 999999;  // ignored
  const int64_t id = store.record(entry);
  EXPECT_GT(id, 0);
  EXPECT_NE(id, 999999);
  const auto got = store.get(id);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->id, id);
  EXPECT_EQ(got->time_ms, 1700000000123);
  EXPECT_EQ(got->source, entry.source);
  EXPECT_EQ(got->media_sha256, entry.media_sha256);
  EXPECT_EQ(got->model, entry.model);
  EXPECT_EQ(got->model_key, "sha256:0123");
  EXPECT_EQ(got->verdict, "FAKE");
  EXPECT_DOUBLE_EQ(got->probability, 0.123456789012345);
  EXPECT_EQ(got->report_json, entry.report_json);
  EXPECT_FALSE(store.get(id + 1000).has_value());
  int64_t total = -1;
  EXPECT_EQ(store.list({}, &total).size(), 1u);  // the table survived the source name
  EXPECT_EQ(total, 1);
}

// A checksum matches only the same model; the newest scan wins.
inline void check_find_media(HistoryStore& store) {
  store.record(make_entry(10, "REAL", "abc", "model-1"));
  const int64_t newer = store.record(make_entry(20, "FAKE", "abc", "model-1"));
  const int64_t other_model = store.record(make_entry(30, "REAL", "abc", "model-2"));
  store.record(make_entry(40, "REAL", "def", "model-1"));
  const auto hit = store.find_media("abc", "model-1");
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->id, newer);
  EXPECT_EQ(hit->verdict, "FAKE");
  ASSERT_TRUE(store.find_media("abc", "model-2").has_value());
  EXPECT_EQ(store.find_media("abc", "model-2")->id, other_model);
  EXPECT_FALSE(store.find_media("abc", "model-3").has_value());
  EXPECT_FALSE(store.find_media("xyz", "model-1").has_value());
  EXPECT_FALSE(store.find_media("", "").has_value());
}

// Newest first, paged, filtered by verdict and time, with the filtered total.
inline void check_list(HistoryStore& store) {
  for (int i = 1; i <= 7; ++i) store.record(make_entry(i * 1000, i % 2 ? "FAKE" : "REAL"));
  int64_t total = -1;
  ScanQuery query;
  query.limit = 3;
  auto page = store.list(query, &total);
  EXPECT_EQ(total, 7);
  ASSERT_EQ(page.size(), 3u);
  EXPECT_EQ(page[0].time_ms, 7000);
  EXPECT_EQ(page[2].time_ms, 5000);
  query.offset = 6;
  page = store.list(query, &total);
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].time_ms, 1000);
  EXPECT_EQ(total, 7);
  query = {};
  query.verdict = "REAL";
  page = store.list(query, &total);
  EXPECT_EQ(total, 3);
  ASSERT_EQ(page.size(), 3u);
  for (const auto& entry : page) EXPECT_EQ(entry.verdict, "REAL");
  query = {};
  query.since_ms = 3000;
  query.until_ms = 5000;
  page = store.list(query, &total);
  EXPECT_EQ(total, 3);
  ASSERT_EQ(page.size(), 3u);
  EXPECT_EQ(page[0].time_ms, 5000);
  EXPECT_EQ(page[2].time_ms, 3000);
  query.verdict = "FAKE";
  page = store.list(query, &total);
  EXPECT_EQ(total, 2);  // 3000 and 5000
  query = {};
  query.verdict = "NO_SUCH";
  EXPECT_TRUE(store.list(query, &total).empty());
  EXPECT_EQ(total, 0);
  query = {};
  query.limit = 0;
  EXPECT_TRUE(store.list(query, nullptr).empty());
  query.limit = -5;  // treated as 0, not "no limit" or an error
  query.offset = -3;
  EXPECT_TRUE(store.list(query, &total).empty());
  EXPECT_EQ(total, 7);
}

inline void check_remove(HistoryStore& store) {
  const int64_t keep = store.record(make_entry(1, "REAL"));
  const int64_t gone = store.record(make_entry(2, "FAKE"));
  EXPECT_TRUE(store.remove(gone));
  EXPECT_FALSE(store.get(gone).has_value());
  EXPECT_FALSE(store.remove(gone));
  EXPECT_FALSE(store.remove(-1));
  EXPECT_TRUE(store.get(keep).has_value());
  int64_t total = -1;
  store.list({}, &total);
  EXPECT_EQ(total, 1);
}

// Several threads recording and reading at once: every entry lands once.
inline void check_threads(HistoryStore& store) {
  constexpr int kThreads = 4, kEach = 25;
  std::vector<std::thread> threads;
  std::vector<std::vector<int64_t>> ids(kThreads);
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      try {
        for (int i = 0; i < kEach; ++i) {
          ids[t].push_back(store.record(make_entry(t * 1000 + i, "REAL", "sha" + std::to_string(t))));
          if (!store.get(ids[t].back()).has_value()) ++errors;
          store.list({}, nullptr);
        }
      } catch (const std::exception&) {
        ++errors;
      }
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(errors.load(), 0);
  std::set<int64_t> unique;
  for (const auto& list : ids) unique.insert(list.begin(), list.end());
  EXPECT_EQ(unique.size(), static_cast<size_t>(kThreads * kEach));
  int64_t total = -1;
  store.list({}, &total);
  EXPECT_EQ(total, kThreads * kEach);
}

}  // namespace dfd_test

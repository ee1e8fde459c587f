// The SQLite history: the backend contract (store_checks.h), the URL forms,
// and bad input: unsupported URLs, a missing directory, a corrupt file, a
// database from a newer program, a full disk while recording.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "store_checks.h"

namespace fs = std::filesystem;
using dfd::history::open_history_store;

namespace {

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dfd-history-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name = "history.db") const { return dir_ + "/" + name; }

  std::string dir_;
};

std::string error_of(const std::string& url) {
  try {
    open_history_store(url);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_F(SqliteStoreTest, RoundTrip) { dfd_test::check_round_trip(*open_history_store(path())); }
TEST_F(SqliteStoreTest, FindMedia) { dfd_test::check_find_media(*open_history_store(path())); }
TEST_F(SqliteStoreTest, List) { dfd_test::check_list(*open_history_store(path())); }
TEST_F(SqliteStoreTest, Remove) { dfd_test::check_remove(*open_history_store(path())); }
TEST_F(SqliteStoreTest, Threads) { dfd_test::check_threads(*open_history_store(path())); }

TEST_F(SqliteStoreTest, UrlFormsNameTheSameFileAndEntriesPersist) {
  int64_t id = 0;
  {
    auto store = open_history_store(path());
    id = store->record(dfd_test::make_entry(5, "FAKE"));
  }
  for (const std::string& url : {"sqlite:" + path(), "sqlite://" + path()}) {
    auto store = open_history_store(url);
    const auto entry = store->get(id);
    ASSERT_TRUE(entry.has_value()) << url;
    EXPECT_EQ(entry->verdict, "FAKE");
  }
}

// Two stores on one file (two services, or a service and a worker): each sees
// the other's entries (WAL; the busy timeout makes writers wait, not fail).
TEST_F(SqliteStoreTest, TwoConnectionsShareOneFile) {
  auto first = open_history_store(path());
  auto second = open_history_store(path());
  std::thread writer([&] {
    for (int i = 0; i < 30; ++i) first->record(dfd_test::make_entry(i, "REAL"));
  });
  for (int i = 0; i < 30; ++i) second->record(dfd_test::make_entry(100 + i, "FAKE"));
  writer.join();
  int64_t total = -1;
  first->list({}, &total);
  EXPECT_EQ(total, 60);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path().c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST_F(SqliteStoreTest, BadUrlsAreRefusedClearly) {
  EXPECT_NE(error_of("").find("empty URL"), std::string::npos) << error_of("");
  EXPECT_NE(error_of("sqlite:").find("names no file"), std::string::npos) << error_of("sqlite:");
  EXPECT_NE(error_of("mysql://db/x").find("unsupported URL scheme 'mysql'"), std::string::npos)
      << error_of("mysql://db/x");
  const std::string missing = error_of(dir_ + "/no/such/dir/history.db");
  EXPECT_NE(missing.find("cannot open"), std::string::npos) << missing;
  EXPECT_NE(missing.find(dir_ + "/no/such/dir/history.db"), std::string::npos) << missing;
  EXPECT_FALSE(fs::exists(dir_ + "/no"));
}

// A file that is not a database: refused, naming the file, and left as it was.
TEST_F(SqliteStoreTest, CorruptFileIsRefusedAndKept) {
  std::string garbage(8192, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 7919) % 251);
  std::ofstream(path(), std::ios::binary) << garbage;
  const std::string error = error_of(path());
  EXPECT_NE(error.find("not a database"), std::string::npos) << error;
  EXPECT_NE(error.find(path()), std::string::npos) << error;
  EXPECT_EQ(read_bytes(path()), garbage);
}

// A database whose header is right but whose pages are damaged: an error on
// use, not a crash.
TEST_F(SqliteStoreTest, DamagedPagesGiveAnError) {
  {
    auto store = open_history_store(path());
    for (int i = 0; i < 200; ++i) store->record(dfd_test::make_entry(i, "REAL"));
  }
  {
    sqlite3* db = nullptr;  // fold the WAL into the main file
    sqlite3_open(path().c_str(), &db);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  std::string bytes = read_bytes(path());
  ASSERT_GT(bytes.size(), 16384u);
  for (size_t i = 4096; i < bytes.size(); ++i) bytes[i] = static_cast<char>(0xA5);  // every page after the first
  std::ofstream(path(), std::ios::binary | std::ios::trunc) << bytes;
  try {
    auto store = open_history_store(path());
    int64_t total = 0;
    store->list({}, &total);
    store->record(dfd_test::make_entry(1, "REAL"));
    ADD_FAILURE() << "a damaged database gave no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("history:"), std::string::npos) << e.what();
  }
}

TEST_F(SqliteStoreTest, NewerSchemaIsRefused) {
  open_history_store(path());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE schema_version SET version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  const std::string error = error_of(path());
  EXPECT_NE(error.find("schema version 99"), std::string::npos) << error;
}

// The disk fills up while an entry is written: record() throws saying so,
// nothing half-written is left, and once there is room recording works again.
// Needs a small tmpfs (mount, as root); skipped with a message elsewhere.
TEST_F(SqliteStoreTest, FullDiskWhileRecording) {
  const std::string small = dir_ + "/small";
  fs::create_directory(small);
  if (mount("tmpfs", small.c_str(), "tmpfs", 0, "size=512k") != 0)
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root): " << strerror(errno);
  struct Unmount {
    std::string where;
    ~Unmount() { umount2(where.c_str(), MNT_DETACH); }
  } unmount{small};
  {
    auto store = open_history_store(small + "/history.db");
    const int64_t first = store->record(dfd_test::make_entry(1, "REAL"));
    {  // fill the disk to the last byte
      std::ofstream filler(small + "/filler", std::ios::binary);
      const std::string block(4096, 'z');
      while (filler.write(block.data(), block.size())) {
      }
    }
    dfd_test::ScanEntry big = dfd_test::make_entry(2, "FAKE");
    big.report_json = std::string(256 * 1024, 'r');
    try {
      store->record(big);
      ADD_FAILURE() << "recording on a full disk gave no error";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("full"), std::string::npos) << e.what();
    }
    fs::remove(small + "/filler");
    int64_t total = -1;
    const auto entries = store->list({}, &total);
    EXPECT_EQ(total, 1);  // nothing half-written
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0].id, first);
    const int64_t next = store->record(big);  // room again
    EXPECT_EQ(store->get(next)->report_json.size(), big.report_json.size());
  }
  // Reopened: the file is whole.
  auto store = open_history_store(small + "/history.db");
  int64_t total = -1;
  store->list({}, &total);
  EXPECT_EQ(total, 2);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((small + "/history.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nullptr);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "ok");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

// SQLite backend: one connection behind a mutex (SQLite serialises writers
// anyway), WAL so readers of other processes are not blocked, a busy timeout
// so a second process waits instead of failing, statements prepared once.
#include "history/sqlite_store.h"

#include <sqlite3.h>

#include <mutex>

#include "history/schema.h"

namespace dfd::history {

namespace {

constexpr int kBusyTimeoutMs = 10000;

class Statement {
 public:
  Statement() = default;
  Statement(sqlite3* db, const std::string& sql) {
    if (sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK)
      throw std::runtime_error(std::string("history: cannot prepare a statement: ") + sqlite3_errmsg(db));
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&& other) noexcept {
    std::swap(stmt_, other.stmt_);
    return *this;
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// Resets and clears a statement's bindings when the call using it ends,
// however it ends.
class Use {
 public:
  explicit Use(const Statement& s) : stmt_(s.get()) {}
  ~Use() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  sqlite3_stmt* operator*() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_;
};

std::string column_text(sqlite3_stmt* stmt, int column) {
  const auto* text = sqlite3_column_text(stmt, column);
  return text ? std::string(reinterpret_cast<const char*>(text), sqlite3_column_bytes(stmt, column)) : std::string();
}

ScanEntry read_entry(sqlite3_stmt* stmt) {
  ScanEntry entry;
  entry.id = sqlite3_column_int64(stmt, 0);
  entry.time_ms = sqlite3_column_int64(stmt, 1);
  entry.source = column_text(stmt, 2);
  entry.media_sha256 = column_text(stmt, 3);
  entry.model = column_text(stmt, 4);
  entry.model_key = column_text(stmt, 5);
  entry.verdict = column_text(stmt, 6);
  entry.probability = sqlite3_column_double(stmt, 7);
  entry.report_json = column_text(stmt, 8);
  return entry;
}

void bind_text(sqlite3_stmt* stmt, int index, const std::string& text) {
  sqlite3_bind_text(stmt, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

class SqliteStore : public HistoryStore {
 public:
  explicit SqliteStore(const std::string& path) : path_(path) {
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
      const std::string reason = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw std::runtime_error("history: cannot open '" + path + "': " + reason);
    }
    try {
      sqlite3_busy_timeout(db_, kBusyTimeoutMs);
      sqlite3_extended_result_codes(db_, 1);
      create_schema();
      prepare();
    } catch (...) {
      close();
      throw;
    }
  }
  ~SqliteStore() override { close(); }

  int64_t record(const ScanEntry& entry) override {
    std::lock_guard<std::mutex> lock(mutex_);
    Use use(insert_);
    sqlite3_bind_int64(*use, 1, entry.time_ms);
    bind_text(*use, 2, entry.source);
    bind_text(*use, 3, entry.media_sha256);
    bind_text(*use, 4, entry.model);
    bind_text(*use, 5, entry.model_key);
    bind_text(*use, 6, entry.verdict);
    sqlite3_bind_double(*use, 7, entry.probability);
    bind_text(*use, 8, entry.report_json);
    // One statement in autocommit: SQLite writes it whole or rolls it back.
    step_done(*use, "record a scan");
    return sqlite3_last_insert_rowid(db_);
  }

  std::optional<ScanEntry> get(int64_t id) override {
    std::lock_guard<std::mutex> lock(mutex_);
    Use use(get_);
    sqlite3_bind_int64(*use, 1, id);
    return step_entry(*use, "read a scan");
  }

  std::optional<ScanEntry> find_media(const std::string& media_sha256, const std::string& model_key) override {
    std::lock_guard<std::mutex> lock(mutex_);
    Use use(find_);
    bind_text(*use, 1, media_sha256);
    bind_text(*use, 2, model_key);
    return step_entry(*use, "look up a scan");
  }

  std::vector<ScanEntry> list(const ScanQuery& query, int64_t* total) override {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<ScanEntry> entries;
    {
      Use use(list_);
      bind_filter(*use, query);
      sqlite3_bind_int(*use, 4, query.limit < 0 ? 0 : query.limit);
      sqlite3_bind_int(*use, 5, query.offset < 0 ? 0 : query.offset);
      while (auto entry = step_entry(*use, "list scans")) entries.push_back(std::move(*entry));
    }
    if (total) {
      Use use(count_);
      bind_filter(*use, query);
      if (sqlite3_step(*use) != SQLITE_ROW) fail("count scans");
      *total = sqlite3_column_int64(*use, 0);
    }
    return entries;
  }

  bool remove(int64_t id) override {
    std::lock_guard<std::mutex> lock(mutex_);
    Use use(remove_);
    sqlite3_bind_int64(*use, 1, id);
    step_done(*use, "delete a scan");
    return sqlite3_changes(db_) > 0;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("history: cannot " + what + " in '" + path_ + "': " + sqlite3_errmsg(db_));
  }

  void exec(const std::string& sql, const std::string& what) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      const std::string reason = error ? error : sqlite3_errmsg(db_);
      sqlite3_free(error);
      throw std::runtime_error("history: cannot " + what + " in '" + path_ + "': " + reason);
    }
  }

  void create_schema() {
    // The first statement that reads the file: a file that is not a database
    // fails here ("file is not a database"), before anything is written.
    exec("PRAGMA journal_mode=WAL", "open the database");
    exec("BEGIN IMMEDIATE", "open the database");
    try {
      exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)", "create the schema");
      exec("CREATE TABLE IF NOT EXISTS scans ("
           " id INTEGER PRIMARY KEY AUTOINCREMENT,"
           " time_ms INTEGER NOT NULL,"
           " source TEXT NOT NULL,"
           " media_sha256 TEXT NOT NULL,"
           " model TEXT NOT NULL,"
           " model_key TEXT NOT NULL,"
           " verdict TEXT NOT NULL,"
           " probability REAL NOT NULL,"
           " report_json TEXT NOT NULL)",
           "create the schema");
      exec("CREATE INDEX IF NOT EXISTS scans_by_media ON scans (media_sha256, model_key, id)", "create the schema");
      exec("CREATE INDEX IF NOT EXISTS scans_by_time ON scans (time_ms, id)", "create the schema");
      check_version();
      exec("COMMIT", "create the schema");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  void check_version() {
    Statement read(db_, "SELECT max(version) FROM schema_version");
    if (sqlite3_step(read.get()) != SQLITE_ROW) fail("read the schema version");
    if (sqlite3_column_type(read.get(), 0) == SQLITE_NULL) {
      exec("INSERT INTO schema_version (version) VALUES (" + std::to_string(kSchemaVersion) + ")",
           "write the schema version");
      return;
    }
    const int version = sqlite3_column_int(read.get(), 0);
    if (version > kSchemaVersion)
      throw std::runtime_error("history: '" + path_ + "' has schema version " + std::to_string(version) +
                               ", newer than this program's " + std::to_string(kSchemaVersion));
  }

  void prepare() {
    const std::string columns = kColumns;
    insert_ = Statement(db_,
                        "INSERT INTO scans (time_ms, source, media_sha256, model, model_key, verdict, probability,"
                        " report_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    get_ = Statement(db_, "SELECT " + columns + " FROM scans WHERE id = ?1");
    find_ = Statement(db_, "SELECT " + columns +
                               " FROM scans WHERE media_sha256 = ?1 AND model_key = ?2 ORDER BY id DESC LIMIT 1");
    list_ = Statement(db_, "SELECT " + columns + " FROM scans" + kSqliteFilter +
                               " ORDER BY time_ms DESC, id DESC LIMIT ?4 OFFSET ?5");
    count_ = Statement(db_, std::string("SELECT count(*) FROM scans") + kSqliteFilter);
    remove_ = Statement(db_, "DELETE FROM scans WHERE id = ?1");
  }

  void bind_filter(sqlite3_stmt* stmt, const ScanQuery& query) {
    bind_text(stmt, 1, query.verdict);
    sqlite3_bind_int64(stmt, 2, query.since_ms);
    sqlite3_bind_int64(stmt, 3, query.until_ms);
  }

  void step_done(sqlite3_stmt* stmt, const std::string& what) {
    if (sqlite3_step(stmt) != SQLITE_DONE) fail(what);
  }

  std::optional<ScanEntry> step_entry(sqlite3_stmt* stmt, const std::string& what) {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) return read_entry(stmt);
    if (rc != SQLITE_DONE) fail(what);
    return std::nullopt;
  }

  void close() {
    insert_ = Statement();
    get_ = Statement();
    find_ = Statement();
    list_ = Statement();
    count_ = Statement();
    remove_ = Statement();
    sqlite3_close(db_);
    db_ = nullptr;
  }

  std::string path_;
  sqlite3* db_ = nullptr;
  std::mutex mutex_;
  Statement insert_, get_, find_, list_, count_, remove_;
};

}  // namespace

std::unique_ptr<HistoryStore> open_sqlite_store(const std::string& path) {
  return std::make_unique<SqliteStore>(path);
}

}  // namespace dfd::history

// PostgreSQL backend: libpq, every value passed as a parameter (never pasted
// into SQL), one connection behind a mutex, re-established once when the
// server dropped it.
#include "history/postgres_store.h"

#include <libpq-fe.h>

#include <charconv>
#include <mutex>

#include "history/schema.h"

namespace dfd::history {

namespace {

// Any fixed number: serialises schema creation between services starting
// together against one database.
constexpr int64_t kSchemaLockKey = 0x64666468697374;  // "dfdhist"

struct ResultFree {
  void operator()(PGresult* result) const { PQclear(result); }
};
using Result = std::unique_ptr<PGresult, ResultFree>;

std::string trim_newline(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

std::string to_text(int64_t value) { return std::to_string(value); }

std::string to_text(double value) {
  char buffer[64];
  const auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;  // locale-independent
  return std::string(buffer, end);
}

int64_t int_at(PGresult* result, int row, int column) {
  const char* text = PQgetvalue(result, row, column);
  int64_t value = 0;
  std::from_chars(text, text + PQgetlength(result, row, column), value);
  return value;
}

double double_at(PGresult* result, int row, int column) {
  const char* text = PQgetvalue(result, row, column);
  double value = 0;
  std::from_chars(text, text + PQgetlength(result, row, column), value);
  return value;
}

std::string text_at(PGresult* result, int row, int column) {
  return std::string(PQgetvalue(result, row, column), PQgetlength(result, row, column));
}

ScanEntry entry_at(PGresult* result, int row) {
  ScanEntry entry;
  entry.id = int_at(result, row, 0);
  entry.time_ms = int_at(result, row, 1);
  entry.source = text_at(result, row, 2);
  entry.media_sha256 = text_at(result, row, 3);
  entry.model = text_at(result, row, 4);
  entry.model_key = text_at(result, row, 5);
  entry.verdict = text_at(result, row, 6);
  entry.probability = double_at(result, row, 7);
  entry.report_json = text_at(result, row, 8);
  return entry;
}

class PostgresStore : public HistoryStore {
 public:
  explicit PostgresStore(const std::string& url) {
    // connect_timeout first so that one given in the URL wins (libpq keeps
    // the last value of a repeated key word).
    const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
    const char* values[] = {"10", "deepfake-serve", url.c_str(), nullptr};
    conn_ = PQconnectdbParams(keys, values, 1);
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
      const std::string reason = conn_ ? trim_newline(PQerrorMessage(conn_)) : "out of memory";
      PQfinish(conn_);
      throw std::runtime_error("history: cannot connect to PostgreSQL: " + reason);
    }
    // Notices ("relation already exists, skipping") are not errors: not printed.
    PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);
    try {
      create_schema();
    } catch (...) {
      PQfinish(conn_);
      throw;
    }
  }
  ~PostgresStore() override { PQfinish(conn_); }

  int64_t record(const ScanEntry& entry) override {
    const std::vector<std::string> params = {to_text(entry.time_ms), entry.source, entry.media_sha256, entry.model,
                                             entry.model_key, entry.verdict, to_text(entry.probability),
                                             entry.report_json};
    std::lock_guard<std::mutex> lock(mutex_);
    Result result = run(
        "INSERT INTO scans (time_ms, source, media_sha256, model, model_key, verdict, probability, report_json)"
        " VALUES ($1::bigint, $2, $3, $4, $5, $6, $7::double precision, $8) RETURNING id",
        params, "record a scan");
    return int_at(result.get(), 0, 0);
  }

  std::optional<ScanEntry> get(int64_t id) override {
    std::lock_guard<std::mutex> lock(mutex_);
    return first(run(std::string("SELECT ") + kColumns + " FROM scans WHERE id = $1::bigint", {to_text(id)},
                     "read a scan"));
  }

  std::optional<ScanEntry> find_media(const std::string& media_sha256, const std::string& model_key) override {
    std::lock_guard<std::mutex> lock(mutex_);
    return first(run(std::string("SELECT ") + kColumns +
                         " FROM scans WHERE media_sha256 = $1 AND model_key = $2 ORDER BY id DESC LIMIT 1",
                     {media_sha256, model_key}, "look up a scan"));
  }

  std::vector<ScanEntry> list(const ScanQuery& query, int64_t* total) override {
    const std::vector<std::string> filter = {query.verdict, to_text(query.since_ms), to_text(query.until_ms)};
    std::vector<std::string> paged = filter;
    paged.push_back(to_text(int64_t{query.limit < 0 ? 0 : query.limit}));
    paged.push_back(to_text(int64_t{query.offset < 0 ? 0 : query.offset}));
    std::lock_guard<std::mutex> lock(mutex_);
    Result rows = run(std::string("SELECT ") + kColumns + " FROM scans" + kPostgresFilter +
                          " ORDER BY time_ms DESC, id DESC LIMIT $4::bigint OFFSET $5::bigint",
                      paged, "list scans");
    std::vector<ScanEntry> entries;
    for (int row = 0; row < PQntuples(rows.get()); ++row) entries.push_back(entry_at(rows.get(), row));
    if (total) {
      Result count = run(std::string("SELECT count(*) FROM scans") + kPostgresFilter, filter, "count scans");
      *total = int_at(count.get(), 0, 0);
    }
    return entries;
  }

  bool remove(int64_t id) override {
    std::lock_guard<std::mutex> lock(mutex_);
    Result result = run("DELETE FROM scans WHERE id = $1::bigint", {to_text(id)}, "delete a scan");
    return std::string(PQcmdTuples(result.get())) != "0";
  }

 private:
  static std::optional<ScanEntry> first(Result result) {
    if (PQntuples(result.get()) == 0) return std::nullopt;
    return entry_at(result.get(), 0);
  }

  // Runs one parameterised statement; when the connection had been lost it
  // reconnects and tries once more (each statement is its own transaction, so
  // a failed one left nothing behind).
  Result run(const std::string& sql, const std::vector<std::string>& params, const std::string& what) {
    Result result = execute(sql, params);
    if (!ok(result.get()) && PQstatus(conn_) == CONNECTION_BAD) {
      PQreset(conn_);
      if (PQstatus(conn_) == CONNECTION_OK) result = execute(sql, params);
    }
    if (!ok(result.get()))
      throw std::runtime_error("history: cannot " + what + " in PostgreSQL: " + trim_newline(PQerrorMessage(conn_)));
    return result;
  }

  Result execute(const std::string& sql, const std::vector<std::string>& params) {
    std::vector<const char*> values;
    std::vector<int> lengths;
    for (const auto& param : params) {
      values.push_back(param.c_str());
      lengths.push_back(static_cast<int>(param.size()));
    }
    return Result(PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr, values.data(),
                               lengths.data(), nullptr, 0));
  }

  static bool ok(PGresult* result) {
    const auto status = PQresultStatus(result);
    return result && (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK);
  }

  void create_schema() {
    run("BEGIN", {}, "create the schema");
    try {
      run("SELECT pg_advisory_xact_lock($1::bigint)", {to_text(kSchemaLockKey)}, "create the schema");
      run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)", {}, "create the schema");
      run("CREATE TABLE IF NOT EXISTS scans ("
          " id BIGSERIAL PRIMARY KEY,"
          " time_ms BIGINT NOT NULL,"
          " source TEXT NOT NULL,"
          " media_sha256 TEXT NOT NULL,"
          " model TEXT NOT NULL,"
          " model_key TEXT NOT NULL,"
          " verdict TEXT NOT NULL,"
          " probability DOUBLE PRECISION NOT NULL,"
          " report_json TEXT NOT NULL)",
          {}, "create the schema");
      run("CREATE INDEX IF NOT EXISTS scans_by_media ON scans (media_sha256, model_key, id)", {},
          "create the schema");
      run("CREATE INDEX IF NOT EXISTS scans_by_time ON scans (time_ms, id)", {}, "create the schema");
      check_version();
      run("COMMIT", {}, "create the schema");
    } catch (...) {
      PQclear(PQexec(conn_, "ROLLBACK"));
      throw;
    }
  }

  void check_version() {
    Result result = run("SELECT max(version) FROM schema_version", {}, "read the schema version");
    if (PQgetisnull(result.get(), 0, 0)) {
      run("INSERT INTO schema_version (version) VALUES ($1::integer)", {to_text(int64_t{kSchemaVersion})},
          "write the schema version");
      return;
    }
    const int64_t version = int_at(result.get(), 0, 0);
    if (version > kSchemaVersion)
      throw std::runtime_error("history: the PostgreSQL database has schema version " + std::to_string(version) +
                               ", newer than this program's " + std::to_string(kSchemaVersion));
  }

  PGconn* conn_ = nullptr;
  std::mutex mutex_;
};

}  // namespace

std::unique_ptr<HistoryStore> open_postgres_store(const std::string& url) {
  return std::make_unique<PostgresStore>(url);
}

}  // namespace dfd::history

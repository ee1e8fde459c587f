// The PostgreSQL history against a real server started here (initdb in a
// temp dir, unix socket only): the backend contract (store_checks.h), several
// services sharing one database, and bad input: an unreachable server, a
// missing database, the server going away and coming back.
#include <gtest/gtest.h>

#include "postgres_server.h"
#include "store_checks.h"

using dfd::history::open_history_store;

namespace {

// One server for the whole program (initdb takes seconds); each test gets
// its own database.
dfd_test::PostgresServer* server = nullptr;
std::string skip_reason;
int database_count = 0;

class PostgresStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (server) return;
    server = new dfd_test::PostgresServer();
    skip_reason = server->unavailable();
    if (skip_reason.empty() && !server->start()) skip_reason = "";  // a failure, reported in SetUp
  }
  void SetUp() override {
    if (!skip_reason.empty()) GTEST_SKIP() << skip_reason;
    ASSERT_TRUE(server->error().empty()) << server->error();
    database_ = "history_" + std::to_string(++database_count);
    PGconn* conn = PQconnectdb(server->url().c_str());
    ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
    PGresult* result = PQexec(conn, ("CREATE DATABASE " + database_).c_str());
    EXPECT_EQ(PQresultStatus(result), PGRES_COMMAND_OK) << PQerrorMessage(conn);
    PQclear(result);
    PQfinish(conn);
  }
  std::string url() const { return server->url(database_); }

  std::string database_;
};

std::string error_of(const std::string& url) {
  try {
    open_history_store(url);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_F(PostgresStoreTest, RoundTrip) { dfd_test::check_round_trip(*open_history_store(url())); }
TEST_F(PostgresStoreTest, FindMedia) { dfd_test::check_find_media(*open_history_store(url())); }
TEST_F(PostgresStoreTest, List) { dfd_test::check_list(*open_history_store(url())); }
TEST_F(PostgresStoreTest, Remove) { dfd_test::check_remove(*open_history_store(url())); }
TEST_F(PostgresStoreTest, Threads) { dfd_test::check_threads(*open_history_store(url())); }

// postgres:// is accepted as well; two services on one database see each
// other's entries, and schema creation by the second is harmless.
TEST_F(PostgresStoreTest, TwoServicesShareOneDatabase) {
  auto first = open_history_store(url());
  std::string other = url();
  other.replace(0, std::string("postgresql").size(), "postgres");
  auto second = open_history_store(other);
  const int64_t id = first->record(dfd_test::make_entry(1, "FAKE", "cafe", "m"));
  const auto seen = second->find_media("cafe", "m");
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->id, id);
  EXPECT_TRUE(second->remove(id));
  EXPECT_FALSE(first->get(id).has_value());
}

TEST_F(PostgresStoreTest, UnreachableServerIsAClearError) {
  const int port = dfd_test::free_port();
  const std::string error = error_of("postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/x");
  EXPECT_NE(error.find("cannot connect to PostgreSQL"), std::string::npos) << error;
  EXPECT_NE(error.find(std::to_string(port)), std::string::npos) << error;
}

TEST_F(PostgresStoreTest, MissingDatabaseIsAClearError) {
  const std::string error = error_of(server->url("no_such_database"));
  EXPECT_NE(error.find("no_such_database"), std::string::npos) << error;
  EXPECT_NE(error.find("does not exist"), std::string::npos) << error;
}

TEST_F(PostgresStoreTest, SecretsAreNotEchoed) {
  const std::string error = error_of("postgresql://someone:s3cr3t-pw@127.0.0.1:" +
                                     std::to_string(dfd_test::free_port()) + "/x");
  EXPECT_NE(error.find("cannot connect"), std::string::npos) << error;
  EXPECT_EQ(error.find("s3cr3t-pw"), std::string::npos) << error;
}

// The server goes away: calls throw (no crash, no hang); once it is back the
// same store reconnects and nothing recorded before was lost.
TEST_F(PostgresStoreTest, ServerRestartIsSurvived) {
  auto store = open_history_store(url());
  const int64_t before = store->record(dfd_test::make_entry(1, "REAL"));
  server->stop();
  EXPECT_THROW(store->record(dfd_test::make_entry(2, "FAKE")), std::runtime_error);
  EXPECT_THROW(store->get(before), std::runtime_error);
  ASSERT_TRUE(server->start()) << server->error();
  const int64_t after = store->record(dfd_test::make_entry(3, "FAKE"));
  EXPECT_GT(after, before);
  int64_t total = -1;
  store->list({}, &total);
  EXPECT_EQ(total, 2);
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  delete server;  // stops it and removes its directory
  return rc;
}

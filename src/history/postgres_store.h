// The PostgreSQL backend of the result history (several services, one history).
#pragma once

#include "history/history_store.h"

namespace dfd::history {

// Connects with a libpq URL (postgresql://user@host:port/db?host=/socket/dir)
// and creates the tables when absent. Throws std::runtime_error with libpq's
// reason (the password is never echoed).
std::unique_ptr<HistoryStore> open_postgres_store(const std::string& url);

}  // namespace dfd::history

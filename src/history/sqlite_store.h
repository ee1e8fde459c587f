// The SQLite backend of the result history (one service, one file).
#pragma once

#include "history/history_store.h"

namespace dfd::history {

// Opens (creating when absent) the database file at path. Throws
// std::runtime_error naming the file when it cannot be opened or is not a
// history database.
std::unique_ptr<HistoryStore> open_sqlite_store(const std::string& path);

}  // namespace dfd::history

// open_history_store: picks the backend from the URL's scheme.
#include "history/history_store.h"

#include "history/postgres_store.h"
#include "history/sqlite_store.h"

namespace dfd::history {

namespace {

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

std::unique_ptr<HistoryStore> open_history_store(const std::string& url) {
  if (url.empty()) throw std::runtime_error("history: empty URL (want a path, sqlite:PATH or postgresql://...)");
  if (starts_with(url, "postgresql://") || starts_with(url, "postgres://")) return open_postgres_store(url);
  if (starts_with(url, "sqlite:")) {
    std::string path = url.substr(7);
    // sqlite:///abs/path and sqlite://rel are accepted as well as sqlite:PATH.
    if (starts_with(path, "//")) path = path.substr(2);
    if (path.empty()) throw std::runtime_error("history: '" + url + "' names no file (want sqlite:PATH)");
    return open_sqlite_store(path);
  }
  // Anything else with a scheme is a mistake, not a file name.
  const auto colon = url.find("://");
  if (colon != std::string::npos)
    throw std::runtime_error("history: unsupported URL scheme '" + url.substr(0, colon) +
                             "' (want a path, sqlite:PATH, postgresql://... or postgres://...)");
  return open_sqlite_store(url);
}

}  // namespace dfd::history

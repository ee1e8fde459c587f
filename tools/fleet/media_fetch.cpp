#include "media_fetch.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>

#include <utility>

namespace dfd::fleet {

namespace {

std::string make_temp_dir() {
  GError* err = nullptr;
  gchar* dir = g_dir_make_tmp("dfd-worker-XXXXXX", &err);
  if (!dir) {
    const std::string why = err ? err->message : "unknown error";
    g_clear_error(&err);
    throw FetchError("cannot make a temporary directory: " + why);
  }
  std::string d = dir;
  g_free(dir);
  return d;
}

// A safe file name for the temporary copy: the hint's extension only
// (content decides the type; the name never reaches a path unfiltered).
std::string temp_name(const std::string& hint) {
  std::string ext;
  const auto dot = hint.rfind('.');
  if (dot != std::string::npos && hint.size() - dot <= 6) {
    for (size_t i = dot + 1; i < hint.size(); ++i)
      if (!g_ascii_isalnum(hint[i])) return "media";
    ext = hint.substr(dot);
  }
  return "media" + ext;
}

void write_all(const std::string& path, const char* data, size_t size) {
  GError* err = nullptr;
  if (!g_file_set_contents(path.c_str(), data, gssize(size), &err)) {
    const std::string why = err ? err->message : "unknown error";
    g_clear_error(&err);
    throw FetchError("cannot write " + path + ": " + why);
  }
}

}  // namespace

FetchedMedia::~FetchedMedia() { release(); }

FetchedMedia::FetchedMedia(FetchedMedia&& o) noexcept
    : path_(std::exchange(o.path_, "")), temp_dir_(std::exchange(o.temp_dir_, "")) {}

FetchedMedia& FetchedMedia::operator=(FetchedMedia&& o) noexcept {
  if (this != &o) {
    release();
    path_ = std::exchange(o.path_, "");
    temp_dir_ = std::exchange(o.temp_dir_, "");
  }
  return *this;
}

void FetchedMedia::release() {
  if (!temp_dir_.empty()) {
    g_unlink(path_.c_str());
    g_rmdir(temp_dir_.c_str());
  }
  temp_dir_.clear();
  path_.clear();
}

FetchedMedia FetchedMedia::from_file_uri(const std::string& uri) {
  gchar* p = g_filename_from_uri(uri.c_str(), nullptr, nullptr);
  if (!p) throw FetchError("bad file URI '" + uri + "'");
  FetchedMedia m;
  m.path_ = p;
  g_free(p);
  if (!g_file_test(m.path_.c_str(), G_FILE_TEST_IS_REGULAR))
    throw FetchError(m.path_ + ": no such file on this worker (is the shared storage mounted here?)");
  return m;
}

FetchedMedia FetchedMedia::from_bytes(const std::string& bytes, const std::string& name_hint) {
  FetchedMedia m;
  m.temp_dir_ = make_temp_dir();
  m.path_ = m.temp_dir_ + "/" + temp_name(name_hint);
  write_all(m.path_, bytes.data(), bytes.size());
  return m;
}

FetchedMedia FetchedMedia::from_http(const std::string& uri, size_t max_bytes, double timeout_s) {
  SoupSession* session = soup_session_new_with_options("timeout", guint(timeout_s > 0 ? timeout_s : 0),
                                                       "user-agent", "deepfake-worker", nullptr);
  SoupMessage* msg = soup_message_new(SOUP_METHOD_GET, uri.c_str());
  if (!msg) {
    g_object_unref(session);
    throw FetchError("bad URL '" + uri + "'");
  }
  GError* err = nullptr;
  GInputStream* in = soup_session_send(session, msg, nullptr, &err);
  std::string failure;
  std::string body;
  if (!in) {
    failure = uri + ": " + (err ? err->message : "request failed");
  } else if (!SOUP_STATUS_IS_SUCCESSFUL(soup_message_get_status(msg))) {
    failure = uri + ": HTTP " + std::to_string(soup_message_get_status(msg)) + " " +
              (soup_message_get_reason_phrase(msg) ? soup_message_get_reason_phrase(msg) : "");
  } else {
    // Read in chunks, stopping at the cap (a Content-Length is not trusted).
    char buf[64 * 1024];
    for (;;) {
      const gssize n = g_input_stream_read(in, buf, sizeof buf, nullptr, &err);
      if (n < 0) {
        failure = uri + ": " + (err ? err->message : "read failed");
        break;
      }
      if (n == 0) break;
      body.append(buf, size_t(n));
      if (body.size() > max_bytes) {
        failure = uri + ": larger than " + std::to_string(max_bytes >> 20) + " MiB";
        break;
      }
    }
  }
  g_clear_error(&err);
  if (in) g_object_unref(in);
  g_object_unref(msg);
  g_object_unref(session);
  if (!failure.empty()) throw FetchError(failure);
  if (body.empty()) throw FetchError(uri + ": empty response");
  return from_bytes(body, uri.substr(uri.rfind('/') + 1));
}

}  // namespace dfd::fleet

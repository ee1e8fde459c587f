#include "batch_inputs.h"

#include <glib.h>
#include <glob.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>
#include <system_error>
#include <unordered_set>

namespace fs = std::filesystem;

namespace dfd {

namespace {

// What GStreamer here decodes (see is_analysable_media_type): containers,
// elementary video streams and raster pictures.
const std::set<std::string>& media_extensions() {
  static const std::set<std::string> ext = {
      "mp4", "m4v", "mov", "avi", "mkv", "webm", "flv", "wmv", "asf", "mpg", "mpeg", "ts", "mts", "m2ts",
      "3gp", "3g2", "ogv", "ogg", "y4m", "mxf", "h264", "264", "h265", "hevc", "mjpeg", "mjpg", "dv",
      "png", "jpg", "jpeg", "jpe", "bmp", "gif", "tif", "tiff", "webp", "ppm", "pgm", "pnm"};
  return ext;
}

bool has_glob_chars(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

// A URI scheme ("file", "https") when `s` starts with one, else "".
std::string uri_scheme(const std::string& s) {
  const size_t colon = s.find("://");
  if (colon == std::string::npos || colon == 0) return "";
  for (size_t i = 0; i < colon; ++i)
    if (!(std::isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')) return "";
  return s.substr(0, colon);
}

class Expander {
 public:
  explicit Expander(std::vector<std::string>* notes) : notes_(notes) {}

  void argument(const std::string& arg) {
    const std::string scheme = uri_scheme(arg);
    if (!scheme.empty()) return uri(arg, scheme);
    std::error_code ec;
    const auto st = fs::status(arg, ec);
    if (!ec && fs::is_directory(st)) return directory(arg);
    if (!ec && fs::exists(st)) {
      file(arg);
      return;
    }
    if (has_glob_chars(arg)) return pattern(arg);
    failed(arg, "no such file or directory");
  }

  std::vector<BatchInput> take() { return std::move(out_); }

 private:
  void uri(const std::string& arg, const std::string& scheme) {
    if (g_ascii_strcasecmp(scheme.c_str(), "file") != 0)
      return failed(arg, "only local files can be scanned (paths or file:// URIs), not " + scheme + "://");
    gchar* p = g_filename_from_uri(arg.c_str(), nullptr, nullptr);
    const std::string path = p ? p : "";
    g_free(p);
    if (path.empty()) return failed(arg, "not a valid file:// URI");
    std::error_code ec;
    if (fs::is_directory(path, ec)) return directory(path);
    if (!fs::exists(path, ec)) return failed(arg, "no such file or directory");
    file(path, arg);
  }

  void pattern(const std::string& arg) {
    glob_t g{};
    const int rc = glob(arg.c_str(), GLOB_ERR, nullptr, &g);
    std::vector<std::string> matches(g.gl_pathv, g.gl_pathv + g.gl_pathc);
    globfree(&g);
    if (rc != 0 || matches.empty()) return failed(arg, "no file matches this pattern");
    for (const auto& m : matches) {  // glob sorts them
      std::error_code ec;
      if (fs::is_directory(m, ec))
        directory(m);
      else
        file(m);
    }
  }

  void directory(const std::string& dir) {
    std::vector<std::string> found;
    walk(dir, &found);
    std::sort(found.begin(), found.end());
    for (const auto& f : found) file(f);
    if (found.empty()) notes_->push_back(dir + ": no media files (by extension) in this directory");
  }

  // Files with a media extension under `dir`; unreadable subdirectories
  // become failed inputs (they may hold media we cannot see).
  void walk(const std::string& dir, std::vector<std::string>* found) {
    std::error_code ec;
    fs::directory_iterator it(dir, ec), end;
    if (ec) return failed(dir, "cannot read this directory: " + ec.message());
    for (; it != end; it.increment(ec)) {
      if (ec) return failed(dir, "cannot read this directory: " + ec.message());
      const fs::path p = it->path();
      if (p.filename().string().rfind('.', 0) == 0) continue;  // hidden: ._clip.mp4 forks, .git, .cache
      std::error_code sec;
      if (it->is_symlink(sec) && fs::is_directory(p, sec)) continue;  // no loops
      if (it->is_directory(sec))
        walk(p.string(), found);
      else if (it->is_regular_file(sec) && has_media_extension(p.string()))
        found->push_back(p.string());
    }
  }

  // Adds a file once; false when it was already listed.
  bool file(const std::string& source, const std::string& as_given = "") {
    std::error_code ec;
    const fs::path canon = fs::canonical(source, ec);
    BatchInput in;
    in.source = as_given.empty() ? source : as_given;
    if (ec) {
      in.error = "cannot resolve the path: " + ec.message();
      out_.push_back(in);
      return true;
    }
    in.path = canon.string();
    if (!seen_.insert(in.path).second) return false;
    in.report_stem = report_stem_for(in.path);
    if (!stems_.insert(in.report_stem).second) in.report_stem += "-" + std::to_string(out_.size());  // a 48-bit clash
    out_.push_back(in);
    return true;
  }

  void failed(const std::string& source, const std::string& error) {
    BatchInput in;
    in.source = source;
    in.error = error;
    out_.push_back(in);
  }

  std::vector<std::string>* notes_;
  std::vector<BatchInput> out_;
  std::unordered_set<std::string> seen_, stems_;
};

}  // namespace

bool has_media_extension(const std::string& path) {
  const std::string name = fs::path(path).filename().string();
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos || dot == 0) return false;
  std::string ext = name.substr(dot + 1);
  for (char& c : ext) c = char(std::tolower((unsigned char)c));
  return media_extensions().count(ext) > 0;
}

std::string report_stem_for(const std::string& absolute_path) {
  std::string base = fs::path(absolute_path).filename().string();
  // Room for the hash and ".json.<pid>.partial" under the usual 255-byte name limit.
  if (base.size() > 180) {
    size_t cut = 180;
    while (cut > 0 && (static_cast<unsigned char>(base[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 characters
    base.resize(cut);
  }
  gchar* sum = g_compute_checksum_for_string(G_CHECKSUM_SHA256, absolute_path.c_str(), gssize(absolute_path.size()));
  std::string hex = sum;
  g_free(sum);
  return base + "-" + hex.substr(0, 12);
}

std::vector<BatchInput> expand_inputs(const std::vector<std::string>& args, std::vector<std::string>* notes) {
  std::vector<std::string> ignored;
  Expander e(notes ? notes : &ignored);
  for (const auto& a : args) e.argument(a);
  return e.take();
}

}  // namespace dfd

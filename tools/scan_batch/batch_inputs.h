// What deepfake-scan's many-file mode scans: its command-line inputs (files,
// directories, glob patterns, file:// URIs) expanded into a list of files,
// each with a report name that no other input of the run can share.
#pragma once
#include <string>
#include <vector>

namespace dfd {

struct BatchInput {
  std::string source;       // the file as listed (the argument, or DIR/sub/file for a walked directory)
  std::string path;         // its canonical absolute path (empty when it could not be resolved)
  std::string report_stem;  // "clip.avi-1a2b3c4d5e6f": the base name and a hash of `path`
  std::string error;        // set when this input cannot be scanned at all (no such file, no match, ...)
};

// Extensions (lower case, no dot) a directory walk picks up: videos and pictures.
bool has_media_extension(const std::string& path);

// Each argument in order:
// - a file: taken whatever its name (its content decides later);
// - a directory: walked recursively (symbolic links to directories are not
//   followed, hidden files and folders are skipped), files with a media
//   extension, sorted by path; an unreadable directory is an input with an error;
// - a pattern with * ? or [ that names no existing file: glob(3), matches
//   sorted (a matched directory is walked); no match is an input with an error;
// - a file:// URI: its local path, as above; any other URI is an input with an error;
// - anything else that does not exist: an input with an error.
// The same file reached twice (two arguments, a symbolic link) is listed once.
// A directory without media adds nothing and a line to `notes`.
std::vector<BatchInput> expand_inputs(const std::vector<std::string>& args, std::vector<std::string>* notes);

// "clip.avi-1a2b3c4d5e6f": base name, '-', the first 12 hex digits of the
// SHA-256 of the absolute path. Equal base names in different folders differ;
// the same file gets the same name in every run (what --resume looks up).
std::string report_stem_for(const std::string& absolute_path);

}  // namespace dfd

// Command-line options that set deepfakedetect properties, shared by the
// tools that run the element through the scan runner (deepfake-scan,
// deepfake-eval): one table of flags, and one validation against the
// element's own property specs (types, enum nicks, ranges).
#pragma once
#include <map>
#include <stdexcept>
#include <string>

#include "scan_runner.h"

namespace dfd {

// "--face-detector" -> "face-detector", ... for every element option a tool accepts.
const std::map<std::string, std::string>& element_option_flags();

// The help lines for those flags.
const char* element_options_usage();

// "--flag=value": leaves "--flag" in arg and "value" in value, and returns
// true; any other argument is left as it is (false).
bool split_flag_value(std::string& arg, std::string& value);

// A bad value for an option (the tool's usage error).
struct ElementOptionError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Checks each property=value against the element (gst must be initialised
// and the plugin found: scan_init) and stores it into `so`. Throws
// ElementOptionError for a bad value, std::runtime_error when the element
// is missing.
void apply_element_options(const std::map<std::string, std::string>& props, ScanOptions& so);

}  // namespace dfd

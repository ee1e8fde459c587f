// Small helpers the trainers share for their progress lines and metrics
// files: elapsed time, fixed-point numbers ("n/a" when not finite) and JSON
// numbers (null when not finite).
#pragma once
#include <chrono>
#include <cmath>
#include <iomanip>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace dfd::train {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

inline std::string fmt(double v, int prec = 4) {
  if (!std::isfinite(v)) return "n/a";
  std::ostringstream o;
  o << std::fixed << std::setprecision(prec) << v;
  return o.str();
}

inline nlohmann::json num(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

}  // namespace dfd::train

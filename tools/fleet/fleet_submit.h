// deepfake-scan --redis URL --submit INPUT... [--wait]: queues the inputs on
// the fleet's Redis stream (docs/fleet.md) as file:// URIs of their absolute
// paths (the workers must see the same paths: shared storage), and with
// --wait polls the jobs until each is done or dead, then prints the same
// table and exits with the same status as a local many-file scan.
#pragma once
#include <cstdio>
#include <string>
#include <vector>

namespace dfd::fleet {

struct SubmitOptions {
  std::string redis_url;
  std::string prefix = "dfd";
  bool wait = false;
  double wait_timeout_s = 0;  // 0: wait as long as it takes
  bool quiet = false;
};

// Without wait: one line "JOB_ID<TAB>INPUT" per queued input on `out`; exit
// 0, or 1 when an input could not be queued (missing file, ...).
// With wait: the results table on `out`; exit 0 / 10 / 1 / 12 as
// batch_exit_code (a dead-lettered job is a failed input). Redis unreachable
// at submission: exit 1 with one line on `err`; while waiting, it is waited
// for (up to wait_timeout_s).
int submit_inputs(const std::vector<std::string>& args, const SubmitOptions& options, FILE* out, FILE* err);

}  // namespace dfd::fleet

// Scratch state for the unit tests that change the environment: a variable
// set for one scope, and a temporary directory removed with its files.
#pragma once
#include <stdlib.h>

#include <cstdlib>
#include <string>

namespace unit_test {

// Restores what was there before (CI may set the variable itself).
struct ScopedEnv {
  std::string key, before;
  bool was_set = false;
  ScopedEnv(const std::string& k, const std::string& v) : key(k) {
    if (const char* old = std::getenv(k.c_str())) {
      was_set = true;
      before = old;
    }
    setenv(k.c_str(), v.c_str(), 1);
  }
  ~ScopedEnv() {
    if (was_set) setenv(key.c_str(), before.c_str(), 1);
    else unsetenv(key.c_str());
  }
};

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/dfd-unit-XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

}  // namespace unit_test

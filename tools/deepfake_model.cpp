// deepfake-model: create, import and describe models.
//   deepfake-model init   --out PATH [--seed N] [--window-size N] [--head reference|temporal]
//   deepfake-model import CHECKPOINT --out PATH [--name S] [--window-size N]
//                         [--untrained] [--training-data TEXT] [--licence SPDX]
//   deepfake-model info   PATH [--json]
// CHECKPOINT/PATH: our .safetensors, a PyTorch .pt (ResNeXt50+LSTM) or a
// Keras .h5 (MesoNet: Meso4, MesoInception4), recognised by content.
// Errors: exit status 1 and one line on stderr.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/architecture.h"
#include "dfd_config.h"
#include "model/family.h"
#include "model/model.h"
#include "checkpoint/state_dict.h"

using namespace dfd;

namespace {

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> opts;
  bool has(const std::string& k) const { return opts.count(k) != 0; }
  std::string get(const std::string& k, const std::string& def = "") const {
    auto it = opts.find(k);
    return it == opts.end() ? def : it->second;
  }
};

const char* kUsage =
    "usage: deepfake-model init --out PATH [--seed N] [--window-size N] [--head reference|temporal]\n"
    "       deepfake-model import CHECKPOINT.pt|.h5 --out PATH [--name S] [--window-size N] [--untrained]\n"
    "                             [--training-data TEXT] [--licence SPDX]\n"
    "       deepfake-model info PATH [--json]\n";

Args parse(int argc, char** argv, int from) {
  static const char* flags[] = {"--untrained", "--json"};
  Args a;
  for (int i = from; i < argc; ++i) {
    std::string s = argv[i];
    if (s.rfind("--", 0) == 0) {
      auto eq = s.find('=');
      if (eq != std::string::npos) {
        a.opts[s.substr(0, eq)] = s.substr(eq + 1);
        continue;
      }
      bool is_flag = false;
      for (auto* f : flags) is_flag |= s == f;
      if (is_flag) {
        a.opts[s] = "1";
      } else {
        if (i + 1 >= argc) throw std::invalid_argument("option " + s + " needs a value");
        a.opts[s] = argv[++i];
      }
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

int to_int(const std::string& s, const char* what) {
  try {
    size_t pos = 0;
    long v = std::stol(s, &pos);
    if (pos != s.size()) throw std::invalid_argument(s);
    return int(v);
  } catch (const std::exception&) {
    throw std::invalid_argument(std::string(what) + " must be an integer, got '" + s + "'");
  }
}

void check_known(const Args& a, std::initializer_list<const char*> known) {
  for (auto& [k, v] : a.opts) {
    bool ok = false;
    for (auto* n : known) ok |= k == n;
    if (!ok) throw std::invalid_argument("unknown option " + k);
  }
}

int cmd_init(const Args& a) {
  check_known(a, {"--out", "--seed", "--window-size", "--head"});
  if (!a.has("--out")) throw std::invalid_argument("init needs --out PATH");
  const int seed = to_int(a.get("--seed", "0"), "--seed");
  if (seed < 0) throw std::invalid_argument("--seed must be >= 0");
  ModelCard card = Model::untrained_card(uint64_t(seed));
  if (a.has("--window-size")) card.window_size = to_int(a.get("--window-size"), "--window-size");
  if (card.window_size < 1) throw std::invalid_argument("--window-size must be >= 1");
  if (a.has("--head")) card.head = head_mode_from_string(a.get("--head"));
  write_safetensors(a.get("--out"), untrained_state_dict(uint64_t(seed)), card);
  std::cout << "wrote " << a.get("--out") << ": UNTRAINED reference-architecture model, seed " << seed
            << " (outputs are meaningless; for demos and tests)\n";
  return 0;
}

int cmd_import(const Args& a) {
  check_known(a, {"--out", "--name", "--window-size", "--untrained", "--training-data", "--licence"});
  if (a.positional.size() != 1) throw std::invalid_argument("import needs exactly one checkpoint path");
  if (!a.has("--out")) throw std::invalid_argument("import needs --out PATH");
  const std::string in = a.positional[0];
  // Our tensor names, validated, with the card the loader would use (a .pt's
  // or .h5's made up from what is known), then the user's overrides.
  ResolvedCheckpoint r = resolve_checkpoint(read_checkpoint(in), in);
  ModelCard card = r.card;
  const std::string imported = "imported by deepfake-model from " + in + " (" + r.format + ")";
  if (card.architecture == kResNeXtArchitecture || card.provenance.empty())
    card.provenance = imported;
  else
    card.provenance += "; " + imported;
  if (a.has("--name")) card.name = a.get("--name");
  if (a.has("--window-size")) card.window_size = to_int(a.get("--window-size"), "--window-size");
  if (card.window_size < 1) throw std::invalid_argument("--window-size must be >= 1");
  if (a.has("--untrained")) {
    card.trained = false;
    card.training_data = "none: declared untrained at import";
  }
  if (a.has("--training-data")) card.training_data = a.get("--training-data");
  if (a.has("--licence")) card.licence = a.get("--licence");
  detector_from_state_dict(r.tensors, card, {}, in);  // the network builds from these tensors
  write_safetensors(a.get("--out"), r.tensors, card);
  std::cout << "wrote " << a.get("--out") << " (" << card.architecture << ", " << r.tensors.size()
            << " tensors, checksum " << weights_checksum(r.tensors) << ")\n";
  return 0;
}

int cmd_info(const Args& a) {
  check_known(a, {"--json"});
  if (a.positional.size() != 1) throw std::invalid_argument("info needs exactly one model path");
  const ResolvedCheckpoint r = resolve_checkpoint(read_checkpoint(a.positional[0]), a.positional[0]);
  const ModelCard& card = r.card;
  int64_t params = 0;
  for (auto& [k, t] : r.tensors)
    if (k.find("running_") == std::string::npos && k.find("num_batches") == std::string::npos) params += t.numel();
  const std::string sum = weights_checksum(r.tensors);
  if (a.has("--json")) {
    nlohmann::json j;
    j["path"] = a.positional[0];
    j["format"] = r.format;
    j["architecture"] = card.architecture;
    j["tensors"] = r.tensors.size();
    j["parameters"] = params;
    j["checksum"] = sum;
    j["card"] = nlohmann::json::parse(card.to_json());
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "path:         " << a.positional[0] << "\n"
            << "format:       " << r.format << "\n"
            << "architecture: " << card.architecture << "\n"
            << "tensors:      " << r.tensors.size() << "\n"
            << "parameters:   " << params << "\n"
            << "checksum:     " << sum << " (FNV-1a 64 over names, shapes, bytes)\n";
  if (!card.trust_notice().empty()) std::cout << "WARNING:      " << card.trust_notice() << "\n";
  std::cout << "card:\n" << card.to_json() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::cout << kUsage;
    return argc < 2 ? 1 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::cout << "deepfake-model " DFD_VERSION "\n";
    return 0;
  }
  const std::string cmd = argv[1];
  try {
    Args a = parse(argc, argv, 2);
    if (cmd == "init") return cmd_init(a);
    if (cmd == "import") return cmd_import(a);
    if (cmd == "info") return cmd_info(a);
    throw std::invalid_argument("unknown command '" + cmd + "' (init, import, info)");
  } catch (const std::exception& e) {
    std::string msg = e.what();
    for (auto& c : msg)
      if (c == '\n') c = ' ';
    std::cerr << "deepfake-model: error: " << msg << "\n";
    return 1;
  }
}

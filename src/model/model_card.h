// The model card travels with the weights (safetensors __metadata__) and says
// what the model is, how to feed it and whether it was trained at all.
#pragma once
#include <array>
#include <string>
#include <vector>

namespace dfd {

enum class HeadMode { Reference, Temporal };
const char* to_string(HeadMode m);
HeadMode head_mode_from_string(const std::string& s);  // throws std::invalid_argument

struct ModelCard {
  int format_version = 1;
  std::string name = "untitled";
  std::string architecture = "resnext50_32x4d+lstm2048";
  HeadMode head = HeadMode::Reference;
  int input_size = 112;
  std::string channel_order = "BGR";
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
  std::vector<std::string> class_names{"FAKE", "REAL"};
  int window_size = 20;
  float threshold = 0.5f;  // FAKE when P(FAKE) > threshold
  bool trained = false;
  std::string training_data;  // what it was trained on, or why it was not
  std::string provenance;     // where the weights came from
  std::string licence;        // of the weights, SPDX id ("Apache-2.0"); empty: not recorded
  std::string metrics_json = "{}";  // evaluation figures, JSON object text
  uint64_t seed = 0;

  std::string to_json() const;                            // pretty JSON object
  static ModelCard from_json(const std::string& text);    // throws std::runtime_error
  // One line for messages and overlays, e.g. "UNTRAINED model: outputs are meaningless".
  std::string trust_notice() const;
};

// Architectures a card may name: the ResNeXt50+LSTM reference
// ("resnext50_32x4d+lstm2048", input 112) and MesoNet ("meso4",
// "mesoinception4", input 256).
constexpr const char* kResNeXtArchitecture = "resnext50_32x4d+lstm2048";
bool is_known_architecture(const std::string& architecture);
int expected_input_size(const std::string& architecture);  // 0 for an unknown architecture

// The card made up for a PyTorch state_dict of the reference architecture,
// which carries none: head reference, window size from a "_N_frames" file
// name, training data "not recorded in the checkpoint".
ModelCard pytorch_checkpoint_card(const std::string& path);

}  // namespace dfd

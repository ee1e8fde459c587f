// deepfake-train as a library call: dataset -> face-crop sequences (cached)
// -> backbone features (cached) -> head training with checkpoints -> held-out
// evaluation -> an exported model in the project's format. No LibTorch in
// this header or in train_pipeline.cpp; the tensors live in train_head.cpp.
#pragma once
#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <string>

#include "train/train_data.h"
#include "train/train_head.h"
#include "analysis/verdict.h"

namespace dfd::train {

struct TrainOptions {
  std::string data;            // dataset directory (real/, fake/) or CSV file,label
  std::string out;             // exported model (.safetensors); required unless preprocess_only / evaluate
  std::string out_dir;         // checkpoints, state, metrics; default: <out without extension>.train
  std::string cache_dir;       // crop and feature cache; default: <out_dir>/cache
  std::string metrics_path;    // also write the metrics JSON here
  std::string init_model;      // starting model (.pt or .safetensors); empty = untrained from init_seed
  uint64_t init_seed = 0;
  std::string init_backbone;   // torchvision resnext50_32x4d state dict (.pt) as the untrained model's backbone
  std::string name;            // card name; default from the output file name
  std::string evaluate_model;  // evaluate this model on the whole dataset, no training
  bool preprocess_only = false;
  bool resume = false;

  TrainerConfig trainer;       // head, lr, weight decay, dropout, freeze/fine-tune, seed, threads
  int epochs = 20;
  std::string select = "best";  // export the epoch with the lowest validation loss, or the last
  int batch_size = 4;
  int window = 20;
  int train_stride = 0;        // 0 = window (non-overlapping training windows)
  double val_fraction = 0.2;
  double test_fraction = 0;
  uint64_t seed = 0;           // split, shuffling, dropout, self-blend draws
  bool class_weights = true;
  bool self_blend = false;
  std::string threshold_rule = "eer";    // eer | accuracy | a number in [0, 1]
  std::string threshold_level = "window";  // frame | window | video
  Aggregation aggregation = Aggregation::Mean;  // windows -> video, as the element's `aggregation`
  PreprocessConfig prep = [] {  // faces as the element; min_frames 0 = the window
    PreprocessConfig p;
    p.min_frames = 0;
    return p;
  }();
  int feature_batch = 32;
};

struct TrainIO {
  std::ostream* out = nullptr;    // results: epoch lines, the table (stdout)
  std::ostream* log = nullptr;    // notes, warnings, skipped videos (stderr)
  bool progress = false;          // progress bars on stderr
  const std::atomic<bool>* stop = nullptr;  // set by SIGINT: save a resumable checkpoint and return
};

// Exit status: 0 done, 130 interrupted (checkpoint saved where training had
// started). Throws DatasetError for dataset problems and std::exception for
// everything else (the caller prints one line and exits 1).
int run(const TrainOptions& options, const TrainIO& io);

}  // namespace dfd::train

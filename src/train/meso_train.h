// deepfake-train --arch meso4|mesoinception4: MesoNet trained per crop on a
// CPU, from scratch or from a MesoNet file (the shipped Keras weights or one
// of ours), with optional self-blended fakes, exported as a safetensors model
// with its card that the element and deepfake-scan load. No LibTorch in this
// header or in meso_train.cpp; the tensors live in mesonet_module.cpp.
#pragma once
#include <cstdint>
#include <string>

#include "train/mesonet_module.h"
#include "train/train_data.h"
#include "train/train_pipeline.h"

namespace dfd::train {

struct MesoTrainOptions {
  std::string data;          // real/ and fake/ (videos and face images) or a CSV
  std::string out;           // exported model (.safetensors)
  std::string arch = "meso4";  // meso4 | mesoinception4
  std::string init;          // starting weights (.h5, .safetensors, .pt of MesoNet); empty: from scratch
  uint64_t init_seed = 0;    // weights from scratch
  std::string name;          // card name; default: the output file name
  std::string out_dir;       // metrics; default: <out without extension>.train
  std::string cache_dir;     // crop cache; default: <out_dir>/cache
  std::string metrics_path;  // also write the metrics JSON here
  MesoTrainerConfig trainer;
  int epochs = 10;
  int batch_size = 16;
  std::string select = "best";  // export the epoch with the lowest validation loss, or the last
  double val_fraction = 0.2;
  uint64_t seed = 0;         // split, shuffling, self-blend draws (and the trainer's)
  bool class_weights = true;
  bool self_blend = false;
  int max_crops = 32;        // face crops per video, spread evenly over its longest track
  PreprocessConfig prep = [] {  // the element's MesoNet crops: 256 px, box + 20 %
    PreprocessConfig p;
    p.faces.crop_size = kMesoInputSize;
    p.faces.crop_margin = kMesoCropMargin;
    p.min_frames = 1;
    return p;
  }();
};

// Exit status 0, or 130 when io.stop was set (nothing exported). Throws
// DatasetError for dataset problems and std::exception for anything else.
int run_mesonet(const MesoTrainOptions& options, const TrainIO& io);

}  // namespace dfd::train

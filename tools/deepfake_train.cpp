// deepfake-train: train, evaluate and export a deepfake detector on your own
// videos. See docs/training.md. Errors: exit status 1 and one line on
// stderr; Ctrl-C: a resumable checkpoint, exit status 130.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

#include "dfd_config.h"
#include "model/family.h"
#include "train/meso_train.h"
#include "train/train_pipeline.h"

using namespace dfd;
using namespace dfd::train;

namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_signal(int sig) {
  if (g_stop.exchange(true)) {  // a second Ctrl-C: stop now
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  static const char msg[] = "\ndeepfake-train: stopping: saving a resumable checkpoint (Ctrl-C again to abort)\n";
  ssize_t r = ::write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)r;
}

const char* kUsage =
    "usage: deepfake-train --data DIR|CSV --out MODEL.safetensors [options]\n"
    "       deepfake-train --data DIR|CSV --evaluate MODEL [--metrics PATH] [face options]\n"
    "       deepfake-train --data DIR|CSV --preprocess-only [--init-model PATH] [face options]\n"
    "       deepfake-train --arch meso4|mesoinception4 --data DIR|CSV --out MODEL.safetensors [--init FILE] [--self-blend]\n"
    "\n"
    "dataset: a directory with real/ and fake/ subdirectories of videos, or a CSV of file,label rows (REAL/FAKE)\n"
    "output:\n"
    "  --out PATH             exported model (safetensors with its model card)\n"
    "  --out-dir DIR          checkpoints, state and metrics (default: <out>.train next to --out)\n"
    "  --cache-dir DIR        face-crop and feature cache (default: <out-dir>/cache)\n"
    "  --metrics PATH         also write the metrics JSON here\n"
    "  --name NAME            model card name (default: the output file name)\n"
    "  --resume               continue the checkpoint in --out-dir\n"
    "architecture:\n"
    "  --arch resnext|meso4|mesoinception4   the detector to train (resnext: the ResNeXt50+LSTM, the default)\n"
    "MesoNet (--arch meso4|mesoinception4; per face crop, 256 px, box + 20 %):\n"
    "  --init FILE            starting weights: a MesoNet .h5 (e.g. models/mesonet/Meso4_DF.h5), .safetensors or .pt;\n"
    "                         default: from scratch (--init-seed)\n"
    "  --max-crops N (32)     face crops per video, spread over its longest track (images: the image is the crop)\n"
    "  --no-flip              no random horizontal flips\n"
    "  defaults here: --epochs 10 --batch-size 16 --lr 1e-3 --weight-decay 0 --dropout 0.5\n"
    "ResNeXt50+LSTM model:\n"
    "  --init-backbone PT     torchvision's resnext50_32x4d state dict (torch.save, fc.* dropped) as the backbone\n"
    "  --init-model PATH      starting weights (.pt or .safetensors); default: untrained, --init-seed\n"
    "  --init-seed N          seed of the untrained starting model (0)\n"
    "  --head temporal|reference   head to train (temporal)\n"
    "  --freeze-lstm          train linear1 only\n"
    "  --finetune-backbone    also train the ResNeXt50 (slow on a CPU)\n"
    "  --backbone-lr X        learning rate of the backbone (default: --lr)\n"
    "training (the original's settings by default):\n"
    "  --epochs N (20)  --batch-size N (4)  --lr X (1e-5)  --weight-decay X (1e-5)  --dropout X (0.4)\n"
    "  --clip-grad X          clip the gradients' global norm (default: off, as the original)\n"
    "  --window N (20)        frames per window; the exported card's window_size\n"
    "  --select best|last (best)   export the epoch with the lowest validation loss, or the last\n"
    "  --train-stride N       step between training windows (default: --window)\n"
    "  --val-fraction X (0.2) --test-fraction X (0)   held-out videos per class\n"
    "  --seed N (0)           split, shuffling, dropout, self-blend draws\n"
    "  --no-class-weights     plain cross-entropy (default: weights against class imbalance)\n"
    "  --self-blend           add self-blended fakes made from the real videos\n"
    "  --threshold eer|accuracy|X (eer)   --threshold-level frame|window|video (window)\n"
    "  --aggregation mean|max|last|ema (mean)   windows -> video, as the element\n"
    "  --threads N            LibTorch threads\n"
    "faces (as the element):\n"
    "  --detector haar|yunet|none (haar)  --detector-model PATH  --detect-max-side N (480)\n"
    "  --min-face-size N (40)  --max-faces N (8)  --interval N (1)  --detect-interval N (1)\n"
    "  --crop-margin X (0)  --max-frames N (0 = whole video)  --min-frames N (default: the window)\n"
    "  --tracks longest|all (longest)\n"
    "  --progress / --no-progress   progress bars on stderr (default: when stderr is a terminal)\n";

struct Args {
  std::map<std::string, std::string> opts;
  bool has(const std::string& k) const { return opts.count(k) != 0; }
  std::string get(const std::string& k, const std::string& def = "") const {
    auto it = opts.find(k);
    return it == opts.end() ? def : it->second;
  }
};

const char* kFlags[] = {"--no-flip", "--resume", "--preprocess-only", "--freeze-lstm", "--finetune-backbone", "--no-class-weights",
                        "--self-blend", "--progress", "--no-progress"};
const char* kValued[] = {"--arch", "--init", "--init-backbone", "--max-crops", "--data", "--out", "--out-dir", "--cache-dir", "--metrics", "--name", "--init-model",
                         "--init-seed", "--evaluate", "--head", "--backbone-lr", "--epochs", "--batch-size", "--lr",
                         "--weight-decay", "--dropout", "--window", "--train-stride", "--val-fraction",
                         "--test-fraction", "--seed", "--select", "--clip-grad", "--threshold", "--threshold-level", "--aggregation", "--threads",
                         "--detector", "--detector-model", "--detect-max-side", "--min-face-size", "--max-faces",
                         "--interval", "--detect-interval", "--crop-margin", "--max-frames", "--min-frames", "--tracks"};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s.rfind("--", 0) != 0) throw std::invalid_argument("unexpected argument '" + s + "' (options start with --)");
    std::string val;
    bool has_val = false;
    if (auto eq = s.find('='); eq != std::string::npos) {
      val = s.substr(eq + 1);
      s = s.substr(0, eq);
      has_val = true;
    }
    bool flag = false, valued = false;
    for (auto* f : kFlags) flag |= s == f;
    for (auto* v : kValued) valued |= s == v;
    if (!flag && !valued) throw std::invalid_argument("unknown option " + s + " (see --help)");
    if (flag) {
      if (has_val) throw std::invalid_argument("option " + s + " takes no value");
      a.opts[s] = "1";
    } else {
      if (!has_val) {
        if (i + 1 >= argc) throw std::invalid_argument("option " + s + " needs a value");
        val = argv[++i];
      }
      a.opts[s] = val;
    }
  }
  return a;
}

long long to_int(const std::string& s, const char* what, long long lo) {
  long long v = 0;
  try {
    size_t pos = 0;
    v = std::stoll(s, &pos);
    if (pos != s.size()) throw std::invalid_argument(s);
  } catch (const std::exception&) {
    throw std::invalid_argument(std::string(what) + " must be an integer, got '" + s + "'");
  }
  if (v < lo) throw std::invalid_argument(std::string(what) + " must be >= " + std::to_string(lo));
  return v;
}

double to_double(const std::string& s, const char* what) {
  try {
    size_t pos = 0;
    double v = std::stod(s, &pos);
    if (pos != s.size()) throw std::invalid_argument(s);
    return v;
  } catch (const std::exception&) {
    throw std::invalid_argument(std::string(what) + " must be a number, got '" + s + "'");
  }
}

void faces_from(const Args& a, PreprocessConfig& p);

// MesoNet training: its own defaults; options of the ResNeXt trainer are refused.
MesoTrainOptions meso_options_from(const Args& a) {
  for (const char* k : {"--init-model", "--init-backbone", "--evaluate", "--preprocess-only", "--resume", "--head",
                        "--freeze-lstm", "--finetune-backbone", "--backbone-lr", "--window", "--train-stride",
                        "--test-fraction", "--clip-grad", "--threshold", "--threshold-level", "--aggregation",
                        "--min-frames", "--tracks", "--crop-margin"})
    if (a.has(k))
      throw std::invalid_argument(std::string(k) + " does not apply to --arch " + a.get("--arch") +
                                  (std::string(k) == "--init-model" ? " (use --init FILE)" : "") +
                                  (std::string(k) == "--crop-margin" ? " (MesoNet crops are the face box + 20 %, as the element makes them)" : ""));
  MesoTrainOptions o;
  o.arch = a.get("--arch");
  o.data = a.get("--data");
  o.out = a.get("--out");
  o.out_dir = a.get("--out-dir");
  o.cache_dir = a.get("--cache-dir");
  o.metrics_path = a.get("--metrics");
  o.name = a.get("--name");
  o.init = a.get("--init");
  if (a.has("--init-seed")) o.init_seed = uint64_t(to_int(a.get("--init-seed"), "--init-seed", 0));
  auto& t = o.trainer;
  if (a.has("--lr")) t.lr = to_double(a.get("--lr"), "--lr");
  if (a.has("--weight-decay")) t.weight_decay = to_double(a.get("--weight-decay"), "--weight-decay");
  if (a.has("--dropout")) t.dropout = to_double(a.get("--dropout"), "--dropout");
  if (a.has("--threads")) t.threads = int(to_int(a.get("--threads"), "--threads", 0));
  t.flip = !a.has("--no-flip");
  if (!(t.lr > 0)) throw std::invalid_argument("--lr must be > 0");
  if (!(t.weight_decay >= 0)) throw std::invalid_argument("--weight-decay must be >= 0");
  if (!(t.dropout >= 0 && t.dropout < 1)) throw std::invalid_argument("--dropout must lie in [0, 1)");
  if (a.has("--epochs")) o.epochs = int(to_int(a.get("--epochs"), "--epochs", 0));
  if (a.has("--batch-size")) o.batch_size = int(to_int(a.get("--batch-size"), "--batch-size", 1));
  if (a.has("--select")) o.select = a.get("--select");
  if (a.has("--val-fraction")) o.val_fraction = to_double(a.get("--val-fraction"), "--val-fraction");
  if (a.has("--seed")) o.seed = uint64_t(to_int(a.get("--seed"), "--seed", 0));
  if (a.has("--max-crops")) o.max_crops = int(to_int(a.get("--max-crops"), "--max-crops", 1));
  o.class_weights = !a.has("--no-class-weights");
  o.self_blend = a.has("--self-blend");
  faces_from(a, o.prep);
  return o;
}

// "resnext" (the default), "meso4" or "mesoinception4".
std::string arch_of(const Args& a) {
  const std::string arch = a.get("--arch", "resnext");
  if (arch == "resnext" || arch == kResNeXtArchitecture) return "resnext";
  if (arch == "meso4" || arch == "mesoinception4") return arch;
  throw std::invalid_argument("unknown --arch '" + arch + "' (resnext, meso4 or mesoinception4)");
}

TrainOptions options_from(const Args& a) {
  TrainOptions o;
  o.data = a.get("--data");
  o.out = a.get("--out");
  o.out_dir = a.get("--out-dir");
  o.cache_dir = a.get("--cache-dir");
  o.metrics_path = a.get("--metrics");
  o.name = a.get("--name");
  o.init_model = a.get("--init-model");
  o.init_backbone = a.get("--init-backbone");
  for (const char* k : {"--init", "--max-crops", "--no-flip"})
    if (a.has(k)) throw std::invalid_argument(std::string(k) + " is for MesoNet (--arch meso4|mesoinception4)");
  if (a.has("--init-seed")) o.init_seed = uint64_t(to_int(a.get("--init-seed"), "--init-seed", 0));
  o.evaluate_model = a.get("--evaluate");
  o.preprocess_only = a.has("--preprocess-only");
  o.resume = a.has("--resume");
  if (a.has("--head")) o.trainer.head = head_mode_from_string(a.get("--head"));
  o.trainer.freeze_lstm = a.has("--freeze-lstm");
  o.trainer.finetune_backbone = a.has("--finetune-backbone");
  if (a.has("--backbone-lr")) o.trainer.backbone_lr = to_double(a.get("--backbone-lr"), "--backbone-lr");
  if (a.has("--lr")) o.trainer.lr = to_double(a.get("--lr"), "--lr");
  if (a.has("--weight-decay")) o.trainer.weight_decay = to_double(a.get("--weight-decay"), "--weight-decay");
  if (a.has("--dropout")) o.trainer.dropout = to_double(a.get("--dropout"), "--dropout");
  if (a.has("--clip-grad")) o.trainer.clip_grad_norm = to_double(a.get("--clip-grad"), "--clip-grad");
  if (!(o.trainer.clip_grad_norm >= 0)) throw std::invalid_argument("--clip-grad must be >= 0");
  if (a.has("--threads")) o.trainer.threads = int(to_int(a.get("--threads"), "--threads", 0));
  if (!(o.trainer.lr > 0)) throw std::invalid_argument("--lr must be > 0");
  if (!(o.trainer.weight_decay >= 0)) throw std::invalid_argument("--weight-decay must be >= 0");
  if (!(o.trainer.dropout >= 0 && o.trainer.dropout < 1)) throw std::invalid_argument("--dropout must lie in [0, 1)");
  if (a.has("--epochs")) o.epochs = int(to_int(a.get("--epochs"), "--epochs", 0));
  if (a.has("--select")) o.select = a.get("--select");
  if (a.has("--batch-size")) o.batch_size = int(to_int(a.get("--batch-size"), "--batch-size", 1));
  if (a.has("--window")) o.window = int(to_int(a.get("--window"), "--window", 1));
  if (a.has("--train-stride")) o.train_stride = int(to_int(a.get("--train-stride"), "--train-stride", 1));
  if (a.has("--val-fraction")) o.val_fraction = to_double(a.get("--val-fraction"), "--val-fraction");
  if (a.has("--test-fraction")) o.test_fraction = to_double(a.get("--test-fraction"), "--test-fraction");
  if (!(o.val_fraction >= 0 && o.test_fraction >= 0 && o.val_fraction + o.test_fraction < 1))
    throw std::invalid_argument("--val-fraction and --test-fraction must be >= 0 and sum to less than 1");
  if (a.has("--seed")) o.seed = uint64_t(to_int(a.get("--seed"), "--seed", 0));
  o.class_weights = !a.has("--no-class-weights");
  o.self_blend = a.has("--self-blend");
  if (a.has("--threshold")) o.threshold_rule = a.get("--threshold");
  if (a.has("--threshold-level")) o.threshold_level = a.get("--threshold-level");
  if (a.has("--aggregation")) o.aggregation = aggregation_from_string(a.get("--aggregation"));
  faces_from(a, o.prep);
  if (a.has("--min-frames") || a.has("--tracks")) {
    o.prep.min_frames = a.has("--min-frames") ? int(to_int(a.get("--min-frames"), "--min-frames", 1)) : 0;  // 0: the window
    if (a.has("--tracks")) {
      const std::string t = a.get("--tracks");
      if (t != "longest" && t != "all") throw std::invalid_argument("--tracks must be longest or all");
      o.prep.all_tracks = t == "all";
    }
  }
  if (!o.evaluate_model.empty() && (o.resume || o.preprocess_only || !o.init_model.empty()))
    throw std::invalid_argument("--evaluate does not combine with --resume, --preprocess-only or --init-model");
  return o;
}

// Face detection options, as the element's properties.
void faces_from(const Args& a, PreprocessConfig& p) {
  auto& f = p.faces;
  if (a.has("--detector")) f.detector.kind = detector_kind_from_string(a.get("--detector"));
  f.detector.model_path = a.get("--detector-model");
  if (a.has("--detect-max-side")) f.detector.detect_max_side = int(to_int(a.get("--detect-max-side"), "--detect-max-side", 0));
  if (a.has("--min-face-size")) f.detector.min_face_size = int(to_int(a.get("--min-face-size"), "--min-face-size", 1));
  if (a.has("--max-faces")) f.detector.max_faces = int(to_int(a.get("--max-faces"), "--max-faces", 1));
  if (a.has("--interval")) f.interval = int(to_int(a.get("--interval"), "--interval", 1));
  if (a.has("--detect-interval")) f.detect_interval = int(to_int(a.get("--detect-interval"), "--detect-interval", 1));
  if (a.has("--crop-margin")) f.crop_margin = float(to_double(a.get("--crop-margin"), "--crop-margin"));
  if (a.has("--max-frames")) p.max_frames = to_int(a.get("--max-frames"), "--max-frames", 0);
  f.validate();
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::cout << kUsage;
      return 0;
    }
    if (!std::strcmp(argv[i], "--version")) {
      std::cout << "deepfake-train " DFD_VERSION "\n";
      return 0;
    }
  }
  if (argc < 2) {
    std::cerr << kUsage;
    return 1;
  }
  // Line-buffered stdout, so that progress lines reach a log or a pipe as they happen.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    Args a = parse(argc, argv);
    const bool meso = arch_of(a) != "resnext";
    MesoTrainOptions mo;
    TrainOptions o;
    if (meso) mo = meso_options_from(a);
    else o = options_from(a);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    TrainIO io;
    io.out = &std::cout;
    io.log = &std::cerr;
    io.progress = a.has("--progress") || (!a.has("--no-progress") && ::isatty(STDERR_FILENO));
    io.stop = &g_stop;
    if (!meso) return run(o, io);
    keep_freed_memory_for_reuse();  // MesoNet's activations: reused, not page-faulted in on every step
    return run_mesonet(mo, io);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    for (auto& c : msg)
      if (c == '\n') c = ' ';
    std::cout.flush();
    std::cerr << "deepfake-train: error: " << msg << "\n";
    return 1;
  }
}

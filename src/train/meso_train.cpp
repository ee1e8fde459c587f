#include "train/meso_train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <set>
#include <sstream>

#include "dfd_config.h"
#include "model/family.h"
#include "train/log_format.h"
#include "train/metrics.h"
#include "train/self_blend.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace dfd::train {

namespace {

// One labelled face crop (BGR CV_8UC3).
struct Sample {
  size_t item = 0;  // index into the dataset
  bool fake = false;
  bool self_blended = false;
  Split split = Split::Train;
  cv::Mat crop;
};

// `n` indices spread evenly over [0, len).
std::vector<size_t> spread(size_t len, size_t n) {
  std::vector<size_t> out;
  if (len == 0) return out;
  if (n == 0 || n >= len) {
    for (size_t i = 0; i < len; ++i) out.push_back(i);
    return out;
  }
  for (size_t k = 0; k < n; ++k) out.push_back(size_t((double(k) + 0.5) * double(len) / double(n)));
  return out;
}

// The face crops of one dataset item: an image is a face crop as it is (the
// authors' training sets are such crops); a video goes through the element's
// face code (cached), its longest track thinned to max_crops.
std::vector<cv::Mat> crops_of(const VideoItem& item, const MesoTrainOptions& o, CropCache& cache, std::string& why,
                              bool& from_cache) {
  if (has_image_extension(item.path)) {
    cv::Mat img = cv::imread(item.path, cv::IMREAD_COLOR);
    if (img.empty()) {
      why = "unreadable: not an image OpenCV can decode";
      return {};
    }
    return {img};
  }
  const std::string key = cache.key(item.path, o.prep);
  PreprocessResult r;
  from_cache = !key.empty() && cache.load(key, r);
  if (!from_cache) {
    r = preprocess_video(item.path, o.prep);
    cache.store(key, r);
  }
  select_tracks(r, o.prep);
  if (r.status != VideoStatus::Ok || r.tracks.empty()) {
    why = std::string(to_string(r.status)) + (r.message.empty() ? "" : ": " + r.message);
    return {};
  }
  const auto& t = r.tracks.front();
  std::vector<cv::Mat> out;
  for (size_t i : spread(t.crops.size(), size_t(std::max(0, o.max_crops)))) out.push_back(t.crops[i]);
  return out;
}

std::vector<float> p_fake(const std::vector<float>& logits) {  // the net's sigmoid is P(REAL)
  std::vector<float> p;
  for (float z : logits) p.push_back(float(1.0 / (1.0 + std::exp(double(z)))));
  return p;
}

std::string split_counts(const std::vector<Sample>& s, Split sp) {
  std::set<size_t> real, fake, sbi;
  int64_t crops = 0;
  for (const auto& x : s) {
    if (x.split != sp) continue;
    ++crops;
    (x.self_blended ? sbi : (x.fake ? fake : real)).insert(x.item);
  }
  std::ostringstream o;
  o << real.size() << " real, " << fake.size() << " fake";
  if (!sbi.empty()) o << " + " << sbi.size() << " self-blended";
  o << " (" << crops << " crops)";
  return o.str();
}

// The split by item, stratified, as the ResNeXt trainer's.
void assign_split(std::vector<Sample>& samples, const Dataset& ds, const std::set<size_t>& usable,
                  const MesoTrainOptions& o) {
  std::vector<VideoItem> items;
  std::vector<size_t> back;
  for (size_t i : usable) {
    items.push_back(ds.items[i]);
    back.push_back(i);
  }
  const auto sp = split_videos(items, o.val_fraction, 0, o.seed);
  std::map<size_t, Split> split_of;
  for (size_t k = 0; k < items.size(); ++k) split_of[back[k]] = sp[k];
  for (auto& s : samples) s.split = split_of[s.item];
}

// Self-blended fakes: each real item of the training split gets a twin (one
// draw per item, so its crops share a mask and colour); the validation
// split too when it has no fakes of its own, so that it can measure something.
void add_self_blended(std::vector<Sample>& samples, const Dataset& ds, const MesoTrainOptions& o) {
  bool val_has_fake = false;
  for (const auto& s : samples) val_has_fake |= s.fake && s.split == Split::Validation;
  const size_t n = samples.size();
  for (size_t i = 0; i < n; ++i) {
    const Sample r = samples[i];
    if (r.fake || (r.split == Split::Validation && val_has_fake)) continue;
    const auto params = draw_self_blend_params(hash64(ds.items[r.item].id + "|meso|" + std::to_string(o.seed)));
    samples.push_back({r.item, true, true, r.split, self_blend(r.crop, params)});
  }
}

// What the exported model's card says about it (threshold 0.5, the authors' input).
struct CardData {
  const Dataset& ds;
  size_t usable;
  std::string train, validation;  // split_counts
  int epoch;                      // whose weights are exported
};
ModelCard exported_card(const MesoTrainOptions& o, MesoVariant variant, const ModelCard& start_card,
                        const std::string& start_desc, const CardData& d) {
  ModelCard card = mesonet_card(variant, "", "");
  card.name = o.name.empty() ? fs::path(o.out).stem().string() : o.name;
  card.trained = true;
  card.seed = o.seed;
  // Weights derived from the authors' Apache-2.0 files stay under it.
  const bool from_authors = !o.init.empty() && start_card.licence == "Apache-2.0";
  card.licence = from_authors ? "Apache-2.0" : "";
  card.provenance = std::string("deepfake-train ") + DFD_VERSION + ": " + architecture_name(variant) + " trained on a CPU " +
                    (o.init.empty() ? "from scratch" : "starting from " + start_desc) +
                    (from_authors ? "; derived from the MesoNet authors' weights (Apache-2.0), " + start_card.provenance : "");
  std::ostringstream td;
  td << d.ds.source << " (" << d.ds.layout << "): " << d.usable << " usable items of " << d.ds.items.size()
     << " listed (face crops: images as they are, videos through the face detector with a 20 % margin, up to "
     << o.max_crops << " crops each)" << (o.self_blend ? ", plus self-blended fakes made from the real faces" : "")
     << "; split seed " << o.seed << ": train " << d.train << ", validation " << d.validation << "; " << o.epochs
     << " epochs (weights of epoch " << d.epoch << ")";
  if (!o.init.empty()) td << "; before that: " << (start_card.training_data.empty() ? "not recorded" : start_card.training_data);
  card.training_data = td.str();
  return card;
}

MesoVariant variant_of(const std::string& arch) {
  auto v = mesonet_variant(arch);
  if (!v) throw std::invalid_argument("--arch must be meso4 or mesoinception4 for MesoNet training, got '" + arch + "'");
  return *v;
}

// The starting weights: a MesoNet file of the same variant, or fresh ones.
StateDict starting_weights(const MesoTrainOptions& o, MesoVariant v, ModelCard& card, std::string& desc) {
  if (o.init.empty()) {
    desc = "from scratch (Glorot-uniform weights, seed " + std::to_string(o.init_seed) + ")";
    card = mesonet_card(v, "", "");
    card.licence.clear();
    return random_mesonet_state_dict(v, o.init_seed);
  }
  if (!fs::is_regular_file(o.init)) throw std::runtime_error("--init '" + o.init + "' does not exist");
  ResolvedCheckpoint r;
  try {
    r = resolve_checkpoint(read_checkpoint(o.init), o.init);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("--init: ") + e.what());
  }
  if (r.card.architecture != architecture_name(v))
    throw std::runtime_error("--init '" + o.init + "' is a " + r.card.architecture + " model, not " + architecture_name(v) +
                             " (--arch)");
  card = r.card;
  desc = o.init + " (" + card.name + ", checksum " + weights_checksum(r.tensors) + ")";
  return std::move(r.tensors);
}

}  // namespace

int run_mesonet(const MesoTrainOptions& o, const TrainIO& io) {
  std::ostream& out = io.out ? *io.out : std::cout;
  std::ostream& log = io.log ? *io.log : std::cerr;
  auto stopped = [&] { return io.stop && io.stop->load(); };
  const auto t_start = Clock::now();

  const MesoVariant variant = variant_of(o.arch);
  if (o.data.empty()) throw std::invalid_argument("--data DIR|CSV is required");
  if (o.out.empty()) throw std::invalid_argument("--out MODEL.safetensors is required");
  if (o.epochs < 0) throw std::invalid_argument("--epochs must be >= 0");
  if (o.batch_size < 1) throw std::invalid_argument("--batch-size must be >= 1");
  if (o.select != "best" && o.select != "last") throw std::invalid_argument("--select must be best or last");
  if (!(o.val_fraction >= 0 && o.val_fraction < 1)) throw std::invalid_argument("--val-fraction must lie in [0, 1)");
  ModelCard start_card;
  std::string start_desc;
  const StateDict start = starting_weights(o, variant, start_card, start_desc);

  std::string out_dir = o.out_dir;
  if (out_dir.empty()) out_dir = (fs::path(o.out).parent_path() / (fs::path(o.out).stem().string() + ".train")).string();
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (!fs::is_directory(out_dir)) throw std::runtime_error("cannot create output directory '" + out_dir + "'");
  CropCache cache(o.cache_dir.empty() ? (fs::path(out_dir) / "cache").string() : o.cache_dir);

  // ---- dataset: face crops per item
  Dataset ds = list_dataset(o.data, /*include_images=*/true);
  size_t n_real = 0, n_fake = 0;
  for (const auto& it : ds.items) (it.fake ? n_fake : n_real)++;
  out << "dataset: " << ds.source << " (" << ds.layout << "): " << ds.items.size() << " items, " << n_real << " real, "
      << n_fake << " fake\n";
  if (n_real == 0) throw DatasetError("the dataset has no REAL items; they are needed");
  if (n_fake == 0 && !o.self_blend)
    throw DatasetError("the dataset has only REAL items (" + std::to_string(n_real) +
                       "); FAKE ones are needed too, or pass --self-blend to make fakes from the real faces");
  std::vector<Sample> samples;
  std::vector<std::pair<std::string, std::string>> skipped;
  std::set<size_t> usable;
  size_t cached = 0;
  for (size_t i = 0; i < ds.items.size(); ++i) {
    if (stopped()) return 130;
    std::string why;
    bool hit = false;
    auto crops = crops_of(ds.items[i], o, cache, why, hit);
    cached += hit;
    if (crops.empty()) {
      skipped.push_back({ds.items[i].id, why});
      continue;
    }
    usable.insert(i);
    for (auto& c : crops) samples.push_back({i, ds.items[i].fake, false, Split::Train, c});
  }
  out << "faces: " << samples.size() << " crops from " << usable.size() << " usable items (" << cached
      << " videos from the cache), " << skipped.size() << " skipped\n";
  for (const auto& [id, why] : skipped) log << "deepfake-train: skipped " << id << ": " << why << "\n";

  assign_split(samples, ds, usable, o);
  if (o.self_blend) add_self_blended(samples, ds, o);
  std::vector<size_t> train_idx, val_idx;
  int64_t per_class[2] = {0, 0};
  for (size_t i = 0; i < samples.size(); ++i) {
    if (samples[i].split == Split::Train) {
      train_idx.push_back(i);
      per_class[samples[i].fake ? kClassFake : kClassReal]++;
    } else {
      val_idx.push_back(i);
    }
  }
  if (per_class[0] == 0 || per_class[1] == 0)
    throw DatasetError("the training split lacks a class (" + std::to_string(per_class[kClassReal]) + " real, " +
                       std::to_string(per_class[kClassFake]) + " fake crops); add data or lower --val-fraction");
  out << "split (seed " << o.seed << "): train " << split_counts(samples, Split::Train) << "; validation "
      << split_counts(samples, Split::Validation) << "\n";
  if (val_idx.empty())
    log << "deepfake-train: warning: no validation split: the figures below come from the training crops and are optimistic\n";
  const std::vector<size_t>& eval_idx = val_idx.empty() ? train_idx : val_idx;
  std::array<float, 2> weights{1.f, 1.f};
  if (o.class_weights) {
    const double n = double(train_idx.size());
    for (int c = 0; c < 2; ++c) weights[size_t(c)] = float(n / (2.0 * double(per_class[c])));
  }

  // ---- training
  MesoTrainerConfig tc = o.trainer;
  tc.seed = o.seed;
  MesoTrainer trainer(variant, start, tc);
  out << "training " << architecture_name(variant) << " (" << trainer.trainable_parameters() << " parameters) "
      << start_desc << ": " << train_idx.size() << " crops per epoch, batch " << o.batch_size << ", lr " << tc.lr
      << ", dropout " << tc.dropout << (tc.flip ? ", random flips" : "") << ", class weights [fake "
      << fmt(weights[0], 3) << ", real " << fmt(weights[1], 3) << "]\n";
  auto crops_at = [&](const std::vector<size_t>& idx) {
    std::vector<const cv::Mat*> c;
    for (size_t i : idx) c.push_back(&samples[i].crop);
    return c;
  };
  std::vector<bool> eval_fake;
  for (size_t i : eval_idx) eval_fake.push_back(samples[i].fake);
  const auto eval_crops = crops_at(eval_idx);
  auto evaluate = [&](const MesoTrainer& t) { return metrics::summarize(p_fake(t.logits(eval_crops)), eval_fake, 0.5f); };

  const auto m0 = evaluate(trainer);
  json history = json::array();
  history.push_back({{"epoch", 0}, {"val_loss", num(m0.log_loss)}, {"val_accuracy", num(m0.accuracy)}, {"val_auc", num(m0.auc)}});
  out << "epoch 0 (start)  val loss " << fmt(m0.log_loss) << "  val acc " << fmt(m0.accuracy, 3) << "  val AUC "
      << fmt(m0.auc, 3) << "\n";
  // Only trained epochs compete (as the ResNeXt trainer): the start is exported only with --epochs 0.
  StateDict best = trainer.export_state_dict();
  double best_loss = std::numeric_limits<double>::infinity();
  int best_epoch = 0;
  std::vector<double> epoch_secs;
  std::mt19937_64 rng(o.seed * 7919ull + 11);
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    const auto t0 = Clock::now();
    std::vector<size_t> order = train_idx;
    std::shuffle(order.begin(), order.end(), rng);
    double sum = 0;
    size_t steps = 0;
    for (size_t b = 0; b < order.size(); b += size_t(o.batch_size)) {
      if (stopped()) {
        log << "deepfake-train: interrupted in epoch " << epoch << "; nothing exported\n";
        return 130;
      }
      std::vector<size_t> part(order.begin() + long(b), order.begin() + long(std::min(order.size(), b + size_t(o.batch_size))));
      std::vector<int> labels;
      for (size_t i : part) labels.push_back(samples[i].fake ? kClassFake : kClassReal);
      sum += double(trainer.step(crops_at(part), labels, weights));
      ++steps;
    }
    const double train_secs = seconds_since(t0);
    const auto m = evaluate(trainer);
    const double train_loss = steps ? sum / double(steps) : std::nan("");
    epoch_secs.push_back(train_secs);
    history.push_back({{"epoch", epoch}, {"train_loss", num(train_loss)}, {"val_loss", num(m.log_loss)},
                       {"val_accuracy", num(m.accuracy)}, {"val_auc", num(m.auc)}, {"seconds_training", train_secs},
                       {"seconds", seconds_since(t0)}});
    out << "epoch " << epoch << "/" << o.epochs << "  train loss " << fmt(train_loss) << "  val loss " << fmt(m.log_loss)
        << "  val acc " << fmt(m.accuracy, 3) << "  val AUC " << fmt(m.auc, 3) << "  (" << fmt(train_secs, 1)
        << " s training)\n";
    if (o.select == "last" || best_epoch == 0 || (std::isfinite(m.log_loss) && m.log_loss < best_loss)) {
      best_loss = m.log_loss;
      best_epoch = epoch;
      best = trainer.export_state_dict();
    }
  }
  if (o.select == "best" && best_epoch != o.epochs)
    out << "exporting epoch " << best_epoch << " (lowest validation loss, " << fmt(best_loss) << ")\n";

  // ---- export with a filled card, then load it as the element will
  ModelCard card = exported_card(o, variant, start_card, start_desc,
                                 CardData{ds, usable.size(), split_counts(samples, Split::Train),
                                          split_counts(samples, Split::Validation), best_epoch});
  json report;
  report["tool"] = std::string("deepfake-train ") + DFD_VERSION;
  report["mode"] = "train-mesonet";
  report["dataset"] = {{"source", ds.source}, {"layout", ds.layout}, {"items", ds.items.size()}, {"real", n_real},
                       {"fake", n_fake}, {"usable", usable.size()}, {"skipped", skipped.size()},
                       {"self_blend", o.self_blend}, {"crops", samples.size()}};
  report["split"] = {{"seed", o.seed}, {"val_fraction", o.val_fraction}, {"train", split_counts(samples, Split::Train)},
                     {"validation", split_counts(samples, Split::Validation)}};
  report["config"] = {{"arch", architecture_name(variant)}, {"epochs", o.epochs}, {"batch_size", o.batch_size},
                      {"lr", tc.lr}, {"weight_decay", tc.weight_decay}, {"dropout", tc.dropout}, {"flip", tc.flip},
                      {"class_weights", {weights[0], weights[1]}}, {"starting_model", start_desc}};
  const double avg = epoch_secs.empty() ? std::nan("") : std::accumulate(epoch_secs.begin(), epoch_secs.end(), 0.0) / double(epoch_secs.size());
  report["training"] = {{"history", history}, {"selected_epoch", best_epoch}, {"select", o.select},
                        {"seconds_per_epoch", num(avg)}};
  MesoTrainer chosen(variant, best, tc);
  const auto logits = chosen.logits(eval_crops);
  const auto fm = metrics::summarize(p_fake(logits), eval_fake, card.threshold);
  report["validation"] = json::parse(fm.to_json());
  report["validation"]["split"] = val_idx.empty() ? "train (no validation split)" : "validation";
  card.metrics_json = report.dump();
  if (!fs::path(o.out).parent_path().empty()) fs::create_directories(fs::path(o.out).parent_path(), ec);
  write_safetensors(o.out, best, card);

  auto det = load_detector(o.out);  // what the element and deepfake-scan will do
  const auto feats = det->features(std::vector<cv::Mat>([&] {
    std::vector<cv::Mat> c;
    for (const auto* m : eval_crops) c.push_back(*m);
    return c;
  }()));
  double parity = 0;
  for (size_t k = 0; k < feats.size(); ++k) parity = std::max(parity, double(std::abs(feats[k][0] - logits[k])));
  if (parity > 1e-4) log << "deepfake-train: warning: the exported model differs from the trained net by " << parity << " in the logit\n";
  report["export"] = {{"path", o.out}, {"checksum", det->checksum()}, {"parity_max_abs_logit_diff", parity}};

  out << "\n" << report["validation"]["split"].get<std::string>() << " crops (threshold " << fmt(card.threshold, 2)
      << "): n " << fm.n << " (" << fm.n_real << " real, " << fm.n_fake << " fake)  accuracy " << fmt(fm.accuracy, 3)
      << "  AUC " << fmt(fm.auc, 3) << "  EER " << fmt(fm.eer, 3) << "  log loss " << fmt(fm.log_loss) << "\n";
  out << "time: " << fmt(avg, 2) << " s per epoch, " << fmt(seconds_since(t_start), 1) << " s in all\n";
  out << "wrote " << o.out << " (" << architecture_name(variant) << ", checksum " << det->checksum()
      << ", export parity " << parity << ")\n";
  out << "use it:\n  gst-launch-1.0 filesrc location=VIDEO ! decodebin ! videoconvert ! deepfakedetect model=" << o.out
      << " ! fakesink\n  deepfake-scan --model " << o.out << " VIDEO\n";
  const std::string mp = (fs::path(out_dir) / "metrics.json").string();
  std::ofstream(mp) << report.dump(2) << "\n";
  if (!o.metrics_path.empty()) {
    std::ofstream mf(o.metrics_path);
    if (!mf) throw std::runtime_error("cannot write metrics to '" + o.metrics_path + "'");
    mf << report.dump(2) << "\n";
  }
  out << "metrics: " << (o.metrics_path.empty() ? mp : o.metrics_path) << "\n";
  return 0;
}

}  // namespace dfd::train

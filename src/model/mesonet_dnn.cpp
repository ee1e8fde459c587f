// MesoNet on OpenCV's dnn module. The net is the one model/mesonet.cpp runs
// on LibTorch, op for op: conv ('same' padding, dilation as given) with ReLU,
// batch norm as one precomputed scale and shift per channel (it follows the
// ReLU, so it cannot be folded into the conv), max pooling, a plain NCHW
// flatten (fc1's columns were reordered from Keras' (H, W, C) order at
// import), fc1, LeakyReLU(0.1), fc2 -> the logit of P(REAL).
//
// A cv::dnn::Net is not safe to run from two threads at once, and it
// re-plans its buffers whenever the input shape changes; a loaded detector is
// shared between elements and threads. So each forward takes a Net built for
// its batch size from a pool (building one from the weights takes well under
// a millisecond) and hands it back.
//
// precision=int8 quantizes each net built (cv::dnn::Net::quantize: weights
// per output channel, activations per layer from their min/max over the
// calibration faces, model/mesonet_calibration.h): one at load, another only
// when more threads than idle nets call at once (an idle int8 net serves any
// batch size). The same faces give the same scales, so every net of the pool
// computes the same int8 arithmetic.
#include "model/mesonet_dnn.h"

#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <opencv2/dnn.hpp>
#include <stdexcept>
#include <utility>
#include <vector>

#include "model/mesonet_calibration.h"
#include "model/mesonet_detector.h"
#include "model/preprocess.h"

namespace dfd {

namespace {

// A float32 copy of a tensor's values, as a 1 x N Mat (or the given shape).
cv::Mat float_mat(const TensorData& t, const std::vector<int>& shape = {}) {
  std::vector<float> values;
  try {
    values = float32_values(t);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string("MesoNet weights: ") + e.what());
  }
  cv::Mat m = cv::Mat(1, int(values.size()), CV_32F, values.data()).clone();
  return shape.empty() ? m : m.reshape(1, shape);
}

const TensorData& at(const StateDict& sd, const std::string& k) { return tensor_named(sd, k); }

// One layer of the graph: its OpenCV type, parameters (with weights) and inputs.
struct LayerSpec {
  std::string name, type;
  cv::dnn::LayerParams params;
  std::vector<std::string> inputs;  // "" = the net's input
};

class Graph {
 public:
  Graph(const StateDict& sd, MesoVariant v) : sd_(sd), variant_(v) {
    std::string x;
    if (v == MesoVariant::Meso4) {
      x = block(conv("conv1", ""), 1, 2);
      x = block(conv("conv2", x), 2, 2);
    } else {
      x = block(inception("inc1", ""), 1, 2);
      x = block(inception("inc2", x), 2, 2);
    }
    x = block(conv("conv3", x), 3, 2);
    x = block(conv("conv4", x), 4, 4);  // [N, 16, 8, 8]
    cv::dnn::LayerParams flat;
    flat.set("axis", 1);
    flat.set("end_axis", -1);
    x = add("flatten", "Flatten", flat, {x});  // (C, H, W) order, as fc1's columns
    x = dense("fc1", x);
    cv::dnn::LayerParams leaky;
    leaky.set("negative_slope", 0.1f);
    x = add("fc1.leaky", "ReLU", leaky, {x});
    dense("fc2", x);  // the logit of P(REAL)
  }
  const std::vector<LayerSpec>& layers() const { return layers_; }

 private:
  std::string add(const std::string& name, const std::string& type, const cv::dnn::LayerParams& p,
                  std::vector<std::string> inputs) {
    layers_.push_back({name, type, p, std::move(inputs)});
    layers_.back().params.name = name;
    layers_.back().params.type = type;
    return name;
  }

  std::string conv(const std::string& name, const std::string& input) {
    const auto& w = at(sd_, name + ".weight");  // [out, in, k, k]
    const int out = int(w.shape[0]), k = int(w.shape[2]);
    int dilation = 1;  // from the layout table (mesonet_layout.h)
    for (const auto& c : mesonet_convs(variant_))
      if (c.name == name) dilation = c.dilation;
    cv::dnn::LayerParams p;
    p.set("num_output", out);
    p.set("kernel_size", k);
    p.set("stride", 1);
    p.set("dilation", dilation);
    p.set("pad", dilation * (k / 2));  // 'same' for odd kernels, stride 1
    p.set("bias_term", true);
    p.blobs = {float_mat(w, {out, int(w.shape[1]), k, k}), float_mat(at(sd_, name + ".bias"))};
    add(name, "Convolution", p, {input});
    return add(name + ".relu", "ReLU", cv::dnn::LayerParams(), {name});
  }

  std::string inception(const std::string& p, const std::string& input) {
    const std::string b1 = conv(p + ".b1", input);
    const std::string b2 = conv(p + ".b2.1", conv(p + ".b2.0", input));
    const std::string b3 = conv(p + ".b3.1", conv(p + ".b3.0", input));
    const std::string b4 = conv(p + ".b4.1", conv(p + ".b4.0", input));
    cv::dnn::LayerParams cat;
    cat.set("axis", 1);
    return add(p + ".concat", "Concat", cat, {b1, b2, b3, b4});
  }

  // Batch norm bn<i> as x * scale + shift, then max pooling.
  std::string block(const std::string& input, int i, int pool) {
    const std::string bn = "bn" + std::to_string(i);
    const cv::Mat gamma = float_mat(at(sd_, bn + ".weight")), beta = float_mat(at(sd_, bn + ".bias"));
    const cv::Mat mean = float_mat(at(sd_, bn + ".running_mean")), var = float_mat(at(sd_, bn + ".running_var"));
    cv::Mat scale(gamma.size(), CV_32F), shift(gamma.size(), CV_32F);
    for (int c = 0; c < gamma.cols; ++c) {
      // As model/mesonet.cpp computes them (float32 throughout).
      const float s = gamma.at<float>(c) / std::sqrt(var.at<float>(c) + kMesoBatchNormEps);
      scale.at<float>(c) = s;
      shift.at<float>(c) = beta.at<float>(c) - mean.at<float>(c) * s;
    }
    cv::dnn::LayerParams p;
    p.set("bias_term", true);
    p.set("axis", 1);
    p.blobs = {scale, shift};
    add(bn, "Scale", p, {input});
    cv::dnn::LayerParams mp;
    mp.set("pool", "max");
    mp.set("kernel_size", pool);
    mp.set("stride", pool);
    return add("pool" + std::to_string(i), "Pooling", mp, {bn});
  }

  std::string dense(const std::string& name, const std::string& input) {
    const auto& w = at(sd_, name + ".weight");  // [out, in]
    cv::dnn::LayerParams p;
    p.set("num_output", int(w.shape[0]));
    p.set("bias_term", true);
    p.set("axis", 1);
    p.blobs = {float_mat(w, {int(w.shape[0]), int(w.shape[1])}), float_mat(at(sd_, name + ".bias"))};
    return add(name, "InnerProduct", p, {input});
  }

  const StateDict& sd_;
  MesoVariant variant_;
  std::vector<LayerSpec> layers_;
};

class MesoNetDnnDetector final : public MesoNetDetectorBase {
 public:
  MesoNetDnnDetector(const StateDict& sd, const ModelCard& card, MesoVariant v, const std::string& source,
                     bool int8)
      : MesoNetDetectorBase(sd, card, v, source), graph_(Graph(sd, v).layers()) {
    if (int8) prepare_calibration(find_calibration_dir(source));
    give_back(1, build());  // a bad graph fails at load, not at the first frame
  }

 protected:
  void logits(const float* nchw, size_t n, float* out) const override {
    cv::dnn::Net net = take(n);
    const int shape[] = {int(n), 3, kMesoInputSize, kMesoInputSize};
    cv::Mat z;
    try {
      net.setInput(cv::Mat(4, shape, CV_32F, const_cast<float*>(nchw)));
      z = net.forward();  // [n, 1]
    } catch (const cv::Exception& e) {
      throw std::runtime_error(std::string("MesoNet (OpenCV dnn): ") + e.what());
    }
    if (z.total() != n) throw std::runtime_error("MesoNet (OpenCV dnn): unexpected output size");
    const float* d = z.ptr<float>();
    std::copy(d, d + n, out);
    give_back(n, std::move(net));
  }

 private:
  // The calibration faces as one input blob (N x 3 x 256 x 256), prepared
  // as every crop is.
  void prepare_calibration(const std::string& dir) {
    calibration_crops_ = calibration_crops(dir, info().normalisation, kMesoInputSize);
    const int per_face = 3 * kMesoInputSize * kMesoInputSize;
    const int shape[] = {int(calibration_crops_.size() / per_face), 3, kMesoInputSize, kMesoInputSize};
    calibration_ = cv::Mat(4, shape, CV_32F, calibration_crops_.data());  // a view: no second copy
  }

  cv::dnn::Net build() const {
    cv::dnn::Net net = build_float();
    if (calibration_.empty()) return net;
    try {
      return net.quantize(calibration_, CV_32F, CV_32F);
    } catch (const cv::Exception& e) {
      throw std::runtime_error(std::string("MesoNet (OpenCV dnn): cannot quantize to int8: ") + e.what());
    }
  }

  cv::dnn::Net build_float() const {
    cv::dnn::Net net;
    net.setInputsNames({"data"});
    std::map<std::string, int> ids;
    try {
      for (const auto& l : graph_) {
        cv::dnn::LayerParams p = l.params;
        for (auto& b : p.blobs) b = b.clone();  // layers may repack their weights in place
        const int id = net.addLayer(l.name, l.type, p);
        for (size_t i = 0; i < l.inputs.size(); ++i)
          net.connect(l.inputs[i].empty() ? 0 : ids.at(l.inputs[i]), 0, id, int(i));
        ids[l.name] = id;
      }
      net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
      net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    } catch (const cv::Exception& e) {
      throw std::runtime_error(std::string("MesoNet (OpenCV dnn): cannot build the net: ") + e.what());
    }
    return net;
  }

  cv::dnn::Net take(size_t n) const {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto& idle = idle_[n];
      if (!idle.empty()) {
        cv::dnn::Net net = idle.back();
        idle.pop_back();
        return net;
      }
      // int8: re-planning an idle net for another batch size costs far less
      // than quantizing a new one (a float32 forward over the calibration
      // faces), so any idle net will do.
      if (!calibration_.empty())
        for (auto& [size, nets] : idle_)
          if (!nets.empty()) {
            cv::dnn::Net net = nets.back();
            nets.pop_back();
            return net;
          }
    }
    return build();
  }

  void give_back(size_t n, cv::dnn::Net net) const {
    std::lock_guard<std::mutex> lock(mu_);
    idle_[n].push_back(std::move(net));
  }

  std::vector<LayerSpec> graph_;
  std::vector<float> calibration_crops_;
  cv::Mat calibration_;  // over calibration_crops_; empty: float32
  mutable std::mutex mu_;
  mutable std::map<size_t, std::vector<cv::dnn::Net>> idle_;  // by batch size
};

}  // namespace

std::shared_ptr<const Detector> make_mesonet_dnn_detector(const StateDict& tensors, const ModelCard& card,
                                                          const ModelOptions& opts, const std::string& source) {
  const MesoVariant v = check_mesonet_load(tensors, card, opts);
  if (opts.num_threads > 0) cv::setNumThreads(opts.num_threads);
  return std::make_shared<MesoNetDnnDetector>(tensors, card, v, source, opts.precision == "int8");
}

}  // namespace dfd

#include "model/mesonet_calibration.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <stdexcept>

#include "model/family.h"

namespace dfd {

namespace {

bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string parent_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

bool has_image_extension(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

}  // namespace

std::string find_calibration_dir(const std::string& model_source) {
  if (const char* env = std::getenv("DFD_INT8_CALIBRATION"); env && *env) {
    if (!is_dir(env)) throw std::runtime_error(std::string("DFD_INT8_CALIBRATION: not a directory: ") + env);
    return env;
  }
  std::vector<std::string> candidates{parent_of(model_source) + "/calibration"};
  // Default model files are <models>/mesonet/<file>: their directory holds calibration/.
  for (const auto& m : default_model_candidates()) candidates.push_back(parent_of(m) + "/calibration");
  for (const auto& c : candidates)
    if (is_dir(c)) return c;
  std::string looked;
  for (const auto& c : candidates) looked += (looked.empty() ? "" : ", ") + c;
  throw std::runtime_error("precision=int8 needs calibration faces; none found (looked in " + looked +
                           "; set DFD_INT8_CALIBRATION to a directory of face crops)");
}

std::vector<cv::Mat> load_calibration_faces(const std::string& dir) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.is_regular_file() && has_image_extension(e.path())) files.push_back(e.path());
  if (ec) throw std::runtime_error("calibration faces: cannot read " + dir + ": " + ec.message());
  if (files.empty()) throw std::runtime_error("calibration faces: no JPEG or PNG in " + dir);
  std::sort(files.begin(), files.end());
  if (files.size() > kMaxCalibrationFaces) files.resize(kMaxCalibrationFaces);
  std::vector<cv::Mat> faces;
  for (const auto& f : files) {
    cv::Mat img = cv::imread(f.string(), cv::IMREAD_COLOR);
    if (img.empty()) throw std::runtime_error("calibration faces: not an image: " + f.string());
    cv::Mat mirror;
    cv::flip(img, mirror, 1);
    faces.push_back(img);
    faces.push_back(mirror);
  }
  return faces;
}

std::vector<float> calibration_crops(const std::string& dir, const Normalisation& n, int size) {
  const std::vector<cv::Mat> faces = load_calibration_faces(dir);
  std::vector<const cv::Mat*> ptrs;
  for (const auto& f : faces) ptrs.push_back(&f);
  std::vector<float> crops(faces.size() * 3 * size_t(size) * size_t(size));
  crops_to_nchw(ptrs, n, size, crops.data());
  return crops;
}

std::string calibration_cache_key(const std::string& precision) {
  if (precision != "int8") return {};
  const char* env = std::getenv("DFD_INT8_CALIBRATION");
  return std::string("int8-calibration=") + (env ? env : "") + "|";
}

}  // namespace dfd

// Test media for the service tests, made at test time from tests/data/.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace dfd::test {

inline std::string env_or(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

inline std::string data_dir() { return env_or("DFD_TEST_DATA_DIR", "tests/data"); }

inline cv::Mat astronaut(int side) {
  cv::Mat img = cv::imread(data_dir() + "/astronaut.png", cv::IMREAD_COLOR);
  if (img.empty()) throw std::runtime_error("cannot read " + data_dir() + "/astronaut.png");
  if (side > 0 && side != img.cols) cv::resize(img, img, cv::Size(side, side), 0, 0, cv::INTER_AREA);
  return img;
}

// An MJPG AVI of the portrait drifting a pixel per frame, 25 fps.
inline void make_clip(const std::string& path, int frames = 12, int side = 256) {
  const cv::Mat base = astronaut(side);
  cv::VideoWriter w(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 25.0, base.size());
  if (!w.isOpened()) throw std::runtime_error("cannot write " + path);
  for (int i = 0; i < frames; ++i) {
    cv::Mat m = (cv::Mat_<double>(2, 3) << 1, 0, i % 4, 0, 1, 0);
    cv::Mat f;
    cv::warpAffine(base, f, m, base.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT);
    w.write(f);
  }
  w.release();
}

// A picture without a face: a smooth colour gradient.
inline void make_noface_png(const std::string& path) {
  cv::Mat img(180, 320, CV_8UC3);
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x) img.at<cv::Vec3b>(y, x) = cv::Vec3b(uchar(x * 255 / 320), 120, uchar(y));
  if (!cv::imwrite(path, img)) throw std::runtime_error("cannot write " + path);
}

inline void make_face_jpeg(const std::string& path, int side = 320) {
  if (!cv::imwrite(path, astronaut(side))) throw std::runtime_error("cannot write " + path);
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

// ---- hostile media: small files that declare huge or impossible sizes ----

inline uint32_t crc32(const std::string& bytes) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : bytes) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

inline void put_be32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s += char((v >> (8 * i)) & 0xFF);
}
inline void put_le32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s += char((v >> (8 * i)) & 0xFF);
}
inline void put_le16(std::string& s, uint16_t v) {
  s += char(v & 0xFF);
  s += char(v >> 8);
}

inline std::string png_chunk(const std::string& type, const std::string& data) {
  std::string c;
  put_be32(c, uint32_t(data.size()));
  c += type + data;
  put_be32(c, crc32(type + data));
  return c;
}

// A grey PNG declaring width x height whose IDAT holds `rows` rows of zeros
// (stored, uncompressed deflate blocks): a few KB claiming gigapixels.
inline std::string png_declaring(uint32_t width, uint32_t height, size_t rows = 2) {
  std::string ihdr;
  put_be32(ihdr, width);
  put_be32(ihdr, height);
  ihdr += std::string("\x08\x00\x00\x00\x00", 5);  // 8-bit grey, deflate, no filter, no interlace
  const std::string raw(rows * (size_t(width) + 1), '\0');
  std::string z = "\x78\x01";
  uint32_t a = 1, b = 0;  // adler32
  for (unsigned char ch : raw) {
    a = (a + ch) % 65521;
    b = (b + a) % 65521;
  }
  for (size_t off = 0; off < raw.size() || off == 0; off += 65535) {
    const size_t n = std::min<size_t>(65535, raw.size() - off);
    const bool last = off + n >= raw.size();
    z += char(last ? 1 : 0);
    put_le16(z, uint16_t(n));
    put_le16(z, uint16_t(~n));
    z += raw.substr(off, n);
    if (last) break;
  }
  put_be32(z, (b << 16) | a);
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) + png_chunk("IDAT", z) + png_chunk("IEND", "");
}

// Every baseline frame header (SOF0) in `bytes` set to width x height.
inline std::string patch_jpeg_size(std::string bytes, uint16_t width, uint16_t height) {
  size_t n = 0;
  for (size_t pos = bytes.find("\xFF\xC0"); pos != std::string::npos; pos = bytes.find("\xFF\xC0", pos + 2)) {
    if (pos + 9 > bytes.size()) break;
    bytes[pos + 5] = char(height >> 8);
    bytes[pos + 6] = char(height & 0xFF);
    bytes[pos + 7] = char(width >> 8);
    bytes[pos + 8] = char(width & 0xFF);
    ++n;
  }
  if (n == 0) throw std::runtime_error("no JPEG frame header to patch");
  return bytes;
}

// A real 64x64 JPEG whose frame header claims width x height.
inline std::string jpeg_declaring(uint16_t width, uint16_t height) {
  std::vector<uchar> buf;
  cv::imencode(".jpg", astronaut(64), buf);
  return patch_jpeg_size(std::string(buf.begin(), buf.end()), width, height);
}

// A 1x1-pixel GIF whose logical screen is width x height.
inline std::string gif_declaring(uint16_t width, uint16_t height) {
  std::string g = "GIF89a";
  put_le16(g, width);
  put_le16(g, height);
  g += std::string("\x80\x00\x00\xff\xff\xff\x00\x00\x00", 9);  // 2-colour table
  g += std::string(",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00;", 17);
  return g;
}

// A 24-bit BMP declaring width x height with `data` bytes of pixels.
inline std::string bmp_declaring(int32_t width, int32_t height, size_t data = 64) {
  std::string b = "BM";
  put_le32(b, uint32_t(54 + data));
  put_le32(b, 0);
  put_le32(b, 54);
  put_le32(b, 40);
  put_le32(b, uint32_t(width));
  put_le32(b, uint32_t(height));
  put_le16(b, 1);
  put_le16(b, 24);
  for (int i = 0; i < 6; ++i) put_le32(b, 0);
  return b + std::string(data, '\x40');
}

// An AVI of uncompressed ('DIB ', BI_RGB) video declaring width x height at
// `bits` per pixel, with `frames` frames of `frame_bytes` bytes each (which
// need not match the declared size).
inline std::string avi_raw(int32_t width, int32_t height, int frames, size_t frame_bytes, uint16_t bits = 24) {
  auto chunk = [](const std::string& id, const std::string& data) {
    std::string c = id;
    put_le32(c, uint32_t(data.size()));
    c += data;
    if (data.size() % 2) c += '\0';
    return c;
  };
  auto list = [&](const std::string& type, const std::string& data) {
    std::string c = "LIST";
    put_le32(c, uint32_t(data.size() + 4));
    return c + type + data;
  };
  std::string avih;
  for (uint32_t v : {40000u, 0u, 0u, 0x10u, uint32_t(frames), 0u, 1u, uint32_t(frame_bytes), uint32_t(width),
                     uint32_t(height), 0u, 0u, 0u, 0u})
    put_le32(avih, v);
  std::string strh = "vidsDIB ";
  for (uint32_t v : {0u, 0u, 0u, 1u, 25u, 0u, uint32_t(frames), uint32_t(frame_bytes), 0xFFFFFFFFu, 0u}) put_le32(strh, v);
  put_le16(strh, 0);
  put_le16(strh, 0);
  put_le16(strh, uint16_t(width));
  put_le16(strh, uint16_t(height));
  std::string strf;
  put_le32(strf, 40);
  put_le32(strf, uint32_t(width));
  put_le32(strf, uint32_t(height));
  put_le16(strf, 1);
  put_le16(strf, bits);
  put_le32(strf, 0);  // BI_RGB
  put_le32(strf, uint32_t(frame_bytes));
  for (int i = 0; i < 4; ++i) put_le32(strf, 0);
  const std::string hdrl = list("hdrl", chunk("avih", avih) + list("strl", chunk("strh", strh) + chunk("strf", strf)));
  std::string movi, idx;
  const std::string frame(frame_bytes, '\x60');
  for (int i = 0; i < frames; ++i) {
    idx += "00db";
    put_le32(idx, 0x10);
    put_le32(idx, uint32_t(4 + movi.size()));
    put_le32(idx, uint32_t(frame_bytes));
    movi += chunk("00db", frame);
  }
  const std::string body = "AVI " + hdrl + list("movi", movi) + chunk("idx1", idx);
  std::string riff = "RIFF";
  put_le32(riff, uint32_t(body.size()));
  return riff + body;
}

inline std::string read_file(const std::string& path);

// The MJPG clip of make_clip, its AVI header left as is (256x256), every
// frame's JPEG header claiming width x height.
inline std::string mjpeg_avi_declaring(const std::string& tmp_path, uint16_t width, uint16_t height) {
  make_clip(tmp_path, 4);
  const std::string clip = read_file(tmp_path);
  std::remove(tmp_path.c_str());
  return patch_jpeg_size(clip, width, height);
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace dfd::test

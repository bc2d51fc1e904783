// GIfTI 1.0 surfaces (XML; https://www.nitrc.org/projects/gifti): writer and a small reader.
#include <libdeflate.h>
#include <zlib.h>

#include <memory>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>

#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/surface.hpp"

namespace tmsplan {
namespace {

const char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(const std::string& in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const std::uint32_t v = std::uint32_t(std::uint8_t(in[i])) << 16 | std::uint32_t(std::uint8_t(in[i + 1])) << 8 |
                            std::uint32_t(std::uint8_t(in[i + 2]));
    out += kBase64[v >> 18 & 63];
    out += kBase64[v >> 12 & 63];
    out += kBase64[v >> 6 & 63];
    out += kBase64[v & 63];
  }
  if (i < in.size()) {
    std::uint32_t v = std::uint32_t(std::uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) v |= std::uint32_t(std::uint8_t(in[i + 1])) << 8;
    out += kBase64[v >> 18 & 63];
    out += kBase64[v >> 12 & 63];
    out += i + 1 < in.size() ? kBase64[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

std::string base64_decode(const std::string& in, const std::string& path) {
  int value[256];
  std::fill(value, value + 256, -1);
  for (int i = 0; i < 64; ++i) value[std::uint8_t(kBase64[i])] = i;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    if (ch == '=' || std::isspace(std::uint8_t(ch))) continue;
    const int x = value[std::uint8_t(ch)];
    if (x < 0) throw Error("GIfTI data is not valid base64", path);
    acc = acc << 6 | std::uint32_t(x);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xff);
    }
  }
  return out;
}

// zlib format (RFC 1950), as GIfTI's GZipBase64Binary asks, with libdeflate at level 1: on the
// Philips surfaces' arrays it takes under half the time of level 6 and gives 1.7% smaller data
// (the vertex coordinates hardly compress at any level; the triangles compress alike). Any zlib
// reader (nibabel, ITK, our reader) decodes it.
std::string zlib_compress(const std::string& raw) {
  const std::unique_ptr<libdeflate_compressor, void (*)(libdeflate_compressor*)> c(libdeflate_alloc_compressor(1),
                                                                                   libdeflate_free_compressor);
  if (!c) throw Error("zlib compression failed (no compressor)");
  std::string out(libdeflate_zlib_compress_bound(c.get(), raw.size()), '\0');
  const std::size_t size = libdeflate_zlib_compress(c.get(), raw.data(), raw.size(), out.data(), out.size());
  if (size == 0) throw Error("zlib compression failed");
  out.resize(size);
  return out;
}

std::string zlib_decompress(const std::string& packed, std::size_t expected, const std::string& path) {
  std::string out(expected, '\0');
  uLongf size = uLongf(expected);
  const int rc = uncompress(reinterpret_cast<Bytef*>(out.data()), &size, reinterpret_cast<const Bytef*>(packed.data()),
                            uLong(packed.size()));
  if (rc != Z_OK || size != expected) throw Error("GIfTI data does not decompress to the declared size", path);
  return out;
}

std::string cdata(const std::string& s) {
  std::string out = "<![CDATA[";
  std::size_t from = 0;
  for (std::size_t at; (at = s.find("]]>", from)) != std::string::npos; from = at + 3)
    out += s.substr(from, at - from) + "]]]]><![CDATA[>";
  return out + s.substr(from) + "]]>";
}

std::string meta(const std::vector<std::pair<std::string, std::string>>& entries, const std::string& indent) {
  if (entries.empty()) return indent + "<MetaData/>\n";
  std::string out = indent + "<MetaData>\n";
  for (const auto& [name, value] : entries)
    out += indent + "  <MD>\n" + indent + "    <Name>" + cdata(name) + "</Name>\n" + indent + "    <Value>" +
           cdata(value) + "</Value>\n" + indent + "  </MD>\n";
  return out + indent + "</MetaData>\n";
}

template <class T> std::string little_endian_bytes(const std::vector<T>& values) {
  static_assert(sizeof(T) == 4, "4-byte values");
  std::string raw(values.size() * 4, '\0');
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::uint32_t u;
    std::memcpy(&u, &values[i], 4);
    for (int b = 0; b < 4; ++b) raw[4 * i + std::size_t(b)] = char((u >> (8 * b)) & 0xff);
  }
  return raw;
}

std::string data_array(const std::string& intent, const std::string& type, std::size_t rows, const std::string& raw,
                       bool compress, const std::string& metadata, const std::string& transform) {
  std::string out = "  <DataArray Intent=\"" + intent + "\" DataType=\"" + type +
                    "\" ArrayIndexingOrder=\"RowMajorOrder\" Dimensionality=\"2\" Dim0=\"" + std::to_string(rows) +
                    "\" Dim1=\"3\" Encoding=\"" + (compress ? "GZipBase64Binary" : "Base64Binary") +
                    "\" Endian=\"LittleEndian\" ExternalFileName=\"\" ExternalFileOffset=\"\">\n";
  out += metadata + transform;
  out += "    <Data>" + base64_encode(compress ? zlib_compress(raw) : raw) + "</Data>\n";
  return out + "  </DataArray>\n";
}

}  // namespace

void write_gifti(const std::string& path, const Mesh& mesh, bool force) {
  GiftiOptions o;
  o.force = force;
  write_gifti(path, mesh, o);
}

void write_gifti(const std::string& path, const Mesh& mesh, const GiftiOptions& options) {
  if (mesh.vertices.empty() || mesh.triangles.empty()) throw Error("refusing to write an empty surface", path);
  std::vector<float> xyz;
  xyz.reserve(mesh.vertices.size() * 3);
  for (const auto& v : mesh.vertices)
    for (int a = 0; a < 3; ++a) {
      if (!std::isfinite(v[a])) throw Error("surface has a vertex that is not a finite number", path);
      xyz.push_back(float(v[a]));
    }
  std::vector<std::int32_t> tri;
  tri.reserve(mesh.triangles.size() * 3);
  for (const auto& t : mesh.triangles)
    for (int v : t) {
      if (v < 0 || std::size_t(v) >= mesh.vertices.size())
        throw Error("surface triangle refers to a missing vertex", path);
      tri.push_back(v);
    }
  std::vector<std::pair<std::string, std::string>> file_meta, point_meta;
  if (!options.description.empty()) file_meta.push_back({"Description", options.description});
  if (!options.structure.empty()) point_meta.push_back({"AnatomicalStructurePrimary", options.structure});
  point_meta.push_back({"GeometricType", "Anatomical"});
  const std::string transform = "    <CoordinateSystemTransformMatrix>\n"
                                "      <DataSpace><![CDATA[NIFTI_XFORM_SCANNER_ANAT]]></DataSpace>\n"
                                "      <TransformedSpace><![CDATA[NIFTI_XFORM_SCANNER_ANAT]]></TransformedSpace>\n"
                                "      <MatrixData>1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1</MatrixData>\n"
                                "    </CoordinateSystemTransformMatrix>\n";
  std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                    "<!DOCTYPE GIFTI SYSTEM \"http://www.nitrc.org/frs/download.php/115/gifti.dtd\">\n"
                    "<GIFTI Version=\"1.0\" NumberOfDataArrays=\"2\">\n";
  xml += meta(file_meta, "  ");
  xml += "  <LabelTable/>\n";
  xml += data_array("NIFTI_INTENT_POINTSET", "NIFTI_TYPE_FLOAT32", mesh.vertices.size(), little_endian_bytes(xyz),
                    options.compress, meta(point_meta, "    "), transform);
  xml += data_array("NIFTI_INTENT_TRIANGLE", "NIFTI_TYPE_INT32", mesh.triangles.size(), little_endian_bytes(tri),
                    options.compress, meta({}, "    "), "");
  xml += "</GIFTI>\n";
  write_file_atomic(path, xml, options.force);
}

namespace {

std::string attribute(const std::string& tag, const std::string& name) {
  const std::string key = " " + name + "=\"";
  std::size_t at = tag.find(key);
  if (at == std::string::npos) {
    const std::string alt = "\n" + name + "=\"";  // attributes on their own lines
    at = tag.find(alt);
    if (at == std::string::npos) return {};
  }
  const std::size_t from = tag.find('"', at) + 1;
  const std::size_t to = tag.find('"', from);
  return tag.substr(from, to - from);
}

std::string trim(const std::string& s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(std::uint8_t(s[b]))) ++b;
  while (e > b && std::isspace(std::uint8_t(s[e - 1]))) --e;
  std::string out = s.substr(b, e - b);
  if (out.rfind("<![CDATA[", 0) == 0 && out.size() >= 12) out = out.substr(9, out.size() - 12);
  return out;
}

}  // namespace

Mesh read_gifti(const std::string& path) {
  const std::string xml = read_file(path, std::size_t(2) << 30);
  if (xml.find("<GIFTI") == std::string::npos) throw Error("not a GIfTI file", path);
  Mesh mesh;
  bool have_points = false, have_triangles = false;
  for (std::size_t at = xml.find("<DataArray"); at != std::string::npos; at = xml.find("<DataArray", at + 1)) {
    const std::size_t tag_end = xml.find('>', at);
    const std::size_t data_begin = xml.find("<Data>", tag_end);
    const std::size_t data_end = xml.find("</Data>", data_begin);
    if (tag_end == std::string::npos || data_begin == std::string::npos || data_end == std::string::npos)
      throw Error("GIfTI DataArray without Data", path);
    const std::string tag = xml.substr(at, tag_end - at);
    const std::string intent = attribute(tag, "Intent"), type = attribute(tag, "DataType");
    const bool points = intent == "NIFTI_INTENT_POINTSET", triangles = intent == "NIFTI_INTENT_TRIANGLE";
    if (!points && !triangles) continue;
    const std::string encoding = attribute(tag, "Encoding"), endian = attribute(tag, "Endian");
    const std::string order = attribute(tag, "ArrayIndexingOrder");
    if (!order.empty() && order != "RowMajorOrder")
      throw Error("GIfTI arrays in column-major order are not supported", path);
    if (points && type != "NIFTI_TYPE_FLOAT32") throw Error("GIfTI pointset is not float32", path);
    if (triangles && type != "NIFTI_TYPE_INT32") throw Error("GIfTI triangles are not int32", path);
    long rows = 0;
    try {
      rows = std::stol(attribute(tag, "Dim0"));
    } catch (const std::exception&) {
      throw Error("GIfTI DataArray without a valid Dim0", path);
    }
    if (rows <= 0 || rows > (1L << 28) || attribute(tag, "Dim1") != "3")
      throw Error("GIfTI array has unexpected dimensions", path);
    const std::size_t n = std::size_t(rows) * 3;
    const std::string text = trim(xml.substr(data_begin + 6, data_end - data_begin - 6));
    // Nothing is allocated for the declared size before the data could hold it: a Dim0 of 2^28 in
    // a small file would otherwise take 3 GiB (found by tests/fuzz/fuzz_gifti.cpp). The most values
    // the text can hold: ASCII, a character and a separator per number; base64, at least one
    // character per byte of a 4-byte value; zlib expands at most about 1032-fold.
    const double len = double(text.size());
    const double most = encoding == "ASCII"              ? (len + 1.0) / 2.0
                        : encoding == "GZipBase64Binary" ? 1032.0 * len / 4.0
                                                         : len / 4.0;
    if (most < double(n)) throw Error("GIfTI data is too short for its dimensions", path);
    std::vector<std::uint32_t> words(n);
    if (encoding == "ASCII") {
      std::istringstream in(text);
      for (std::size_t i = 0; i < n; ++i) {
        if (points) {
          float f;
          if (!(in >> f)) throw Error("GIfTI ASCII data is too short", path);
          std::memcpy(&words[i], &f, 4);
        } else {
          std::int32_t v;
          if (!(in >> v)) throw Error("GIfTI ASCII data is too short", path);
          std::memcpy(&words[i], &v, 4);
        }
      }
    } else {
      if (endian != "LittleEndian") throw Error("only little-endian GIfTI binary data is supported", path);
      std::string raw = base64_decode(text, path);
      if (encoding == "GZipBase64Binary")
        raw = zlib_decompress(raw, n * 4, path);
      else if (encoding != "Base64Binary")
        throw Error("unsupported GIfTI encoding '" + encoding + "'", path);
      if (raw.size() != n * 4) throw Error("GIfTI data size does not match its dimensions", path);
      for (std::size_t i = 0; i < n; ++i)
        words[i] = std::uint32_t(std::uint8_t(raw[4 * i])) | std::uint32_t(std::uint8_t(raw[4 * i + 1])) << 8 |
                   std::uint32_t(std::uint8_t(raw[4 * i + 2])) << 16 |
                   std::uint32_t(std::uint8_t(raw[4 * i + 3])) << 24;
    }
    if (points) {
      mesh.vertices.resize(std::size_t(rows));
      for (std::size_t v = 0; v < std::size_t(rows); ++v)
        for (int a = 0; a < 3; ++a) {
          float f;
          std::memcpy(&f, &words[3 * v + std::size_t(a)], 4);
          mesh.vertices[v][a] = double(f);
        }
      have_points = true;
    } else {
      mesh.triangles.resize(std::size_t(rows));
      for (std::size_t t = 0; t < std::size_t(rows); ++t)
        for (int a = 0; a < 3; ++a) {
          std::int32_t v;
          std::memcpy(&v, &words[3 * t + std::size_t(a)], 4);
          mesh.triangles[t][std::size_t(a)] = v;
        }
      have_triangles = true;
    }
  }
  if (!have_points || !have_triangles) throw Error("GIfTI file has no pointset and triangle arrays", path);
  for (const auto& t : mesh.triangles)
    for (int v : t)
      if (v < 0 || std::size_t(v) >= mesh.vertices.size())
        throw Error("GIfTI triangle refers to a missing vertex", path);
  return mesh;
}

}  // namespace tmsplan

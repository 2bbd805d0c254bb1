// safetensors reader/writer with strict validation (see include/routenlp/encoder/safetensors.hpp).
// Format reference: https://github.com/huggingface/safetensors (Apache-2.0), read for the spec
// only: header length limit, dtype names, and the rule that offsets tile the data buffer.
#include "routenlp/encoder/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <set>

#include "common/atomic_file.hpp"
#include "common/text_io.hpp"
#include "encoder/json_lite.hpp"
#include "routenlp/error.hpp"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "routenlp's safetensors code assumes a little-endian host"
#endif

namespace routenlp {

namespace {

[[noreturn]] void bad(const std::string& origin, const std::string& what) {
  throw Error(Status::parse, origin + ": invalid safetensors: " + what);
}

bool parse_dtype(const std::string& s, DType& out) {
  static const std::pair<const char*, DType> names[] = {{"F32", DType::F32},
                                                        {"F16", DType::F16},
                                                        {"BF16", DType::BF16},
                                                        {"I64", DType::I64},
                                                        {"I32", DType::I32}};
  for (const auto& n : names)
    if (s == n.first) {
      out = n.second;
      return true;
    }
  return false;
}

// a * b with overflow detection (both non-negative).
bool mul_ok(uint64_t a, uint64_t b, uint64_t& out) {
  if (a != 0 && b > UINT64_MAX / a) return false;
  out = a * b;
  return true;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

}  // namespace

constexpr size_t kAllFinite = static_cast<size_t>(-1);

// Index of the first NaN or infinity of a float tensor (all-ones exponent), else kAllFinite.
static size_t first_non_finite(DType t, const unsigned char* p, size_t nbytes) {
  if (t == DType::F32) {
    for (size_t i = 0; i + 4 <= nbytes; i += 4) {
      uint32_t v;
      std::memcpy(&v, p + i, 4);
      if ((v & 0x7f800000u) == 0x7f800000u) return i / 4;
    }
  } else if (t == DType::F16 || t == DType::BF16) {
    const uint16_t mask = t == DType::F16 ? 0x7c00 : 0x7f80;
    for (size_t i = 0; i + 2 <= nbytes; i += 2) {
      uint16_t v;
      std::memcpy(&v, p + i, 2);
      if ((v & mask) == mask) return i / 2;
    }
  }
  return kAllFinite;
}

const char* dtype_name(DType t) noexcept {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
  }
  return "?";
}

size_t dtype_size(DType t) noexcept {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::I64: return 8;
    case DType::I32: return 4;
  }
  return 0;
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

SafetensorsFile parse_safetensors(std::string bytes, const std::string& origin) {
  const uint64_t size = bytes.size();
  if (size < 8) bad(origin, "file has " + std::to_string(size) + " bytes, fewer than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  if (n > kSafetensorsMaxHeader)
    bad(origin, "header length " + std::to_string(n) + " exceeds the limit of " +
                    std::to_string(kSafetensorsMaxHeader) + " bytes");
  if (n > size - 8)
    bad(origin, "header length " + std::to_string(n) + " exceeds the file size (" +
                    std::to_string(size) + " bytes): file truncated?");
  if (n < 2 || bytes[8] != '{') bad(origin, "header does not start with '{'");
  const uint64_t data_begin = 8 + n;
  const uint64_t data_size = size - data_begin;

  detail::json::Value header =
      detail::json::parse(std::string_view(bytes).substr(8, static_cast<size_t>(n)), origin + " (header)");
  if (!header.is_object()) bad(origin, "header is not a JSON object");

  SafetensorsFile f;
  f.origin_ = origin;
  struct Entry {
    TensorView view;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
  entries.reserve(header.obj.size());
  for (const auto& kv : header.obj) {
    const std::string& name = kv.first;
    const detail::json::Value& v = kv.second;
    if (name == "__metadata__") {
      if (!v.is_object()) bad(origin, "__metadata__ is not an object");
      for (const auto& m : v.obj) {
        if (!m.second.is_string()) bad(origin, "__metadata__[\"" + m.first + "\"] is not a string");
        f.metadata_[m.first] = m.second.str;
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (name.empty()) bad(origin, "empty tensor name");
    if (!v.is_object()) bad(origin, where + ": entry is not an object");
    const auto* dt = v.find("dtype");
    const auto* sh = v.find("shape");
    const auto* off = v.find("data_offsets");
    if (!dt || !sh || !off) bad(origin, where + ": needs dtype, shape and data_offsets");
    for (const auto& m : v.obj)
      if (m.first != "dtype" && m.first != "shape" && m.first != "data_offsets")
        bad(origin, where + ": unknown field '" + m.first + "'");
    Entry e;
    e.view.name = name;
    if (!dt->is_string()) bad(origin, where + ": dtype is not a string");
    if (!parse_dtype(dt->str, e.view.dtype))
      bad(origin, where + ": unsupported dtype '" + dt->str + "' (supported: F32, F16, BF16, I64, I32)");
    if (!sh->is_array()) bad(origin, where + ": shape is not an array");
    uint64_t numel = 1;
    for (const auto& d : sh->arr) {
      uint64_t dim = 0;
      if (!d.as_uint64(dim) || dim > static_cast<uint64_t>(INT64_MAX))
        bad(origin, where + ": shape entries must be non-negative integers");
      if (!mul_ok(numel, dim, numel)) bad(origin, where + ": shape element count overflows");
      e.view.shape.push_back(static_cast<int64_t>(dim));
    }
    uint64_t nbytes = 0;
    if (!mul_ok(numel, dtype_size(e.view.dtype), nbytes))
      bad(origin, where + ": byte size overflows");
    if (!off->is_array() || off->arr.size() != 2 || !off->arr[0].as_uint64(e.begin) ||
        !off->arr[1].as_uint64(e.end))
      bad(origin, where + ": data_offsets must be [begin, end] non-negative integers");
    if (e.begin > e.end)
      bad(origin, where + ": data_offsets begin " + std::to_string(e.begin) + " > end " +
                      std::to_string(e.end));
    if (e.end > data_size)
      bad(origin, where + ": data_offsets end " + std::to_string(e.end) +
                      " is past the data section (" + std::to_string(data_size) +
                      " bytes): file truncated?");
    if (e.end - e.begin != nbytes)
      bad(origin, where + ": " + std::to_string(e.end - e.begin) + " bytes for shape " +
                      shape_str(e.view.shape) + " of " + dt->str + ", expected " +
                      std::to_string(nbytes));
    e.view.nbytes = static_cast<size_t>(nbytes);
    entries.push_back(std::move(e));
  }
  // Offsets must tile [0, data_size) exactly: no overlap, no gap, nothing left over.
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  const std::string* prev = nullptr;
  for (const auto& e : entries) {
    if (e.begin < pos)
      bad(origin, "tensor '" + e.view.name + "' overlaps tensor '" + (prev ? *prev : "") + "'");
    if (e.begin > pos)
      bad(origin, "gap of " + std::to_string(e.begin - pos) + " bytes before tensor '" +
                      e.view.name + "'");
    pos = e.end;
    prev = &e.view.name;
  }
  if (pos != data_size)
    bad(origin, std::to_string(data_size - pos) + " bytes after the last tensor are not covered by any tensor");

  auto buf = std::make_shared<const std::string>(std::move(bytes));
  const unsigned char* base = reinterpret_cast<const unsigned char*>(buf->data()) + data_begin;
  // Weights must be finite: a NaN weight would otherwise load and fail every query later.
  for (const auto& e : entries) {
    const size_t bad_at = first_non_finite(e.view.dtype, base + e.begin, e.view.nbytes);
    if (bad_at != kAllFinite)
      bad(origin, "tensor '" + e.view.name + "' has a non-finite value (NaN or infinity) at element " +
                      std::to_string(bad_at));
  }
  for (auto& e : entries) {
    e.view.data = base + e.begin;
    f.index_[e.view.name] = f.tensors_.size();
    f.tensors_.push_back(std::move(e.view));
  }
  f.buffer_ = std::move(buf);
  return f;
}

SafetensorsFile read_safetensors(const std::string& path) {
  return parse_safetensors(detail::read_file(path, detail::kMaxWeightsFileBytes), path);
}

std::string serialize_safetensors(const std::vector<TensorView>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  namespace js = detail::json;
  std::string h = "{";
  bool first = true;
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    for (auto it = metadata.begin(); it != metadata.end(); ++it) {
      if (it != metadata.begin()) h += ",";
      h += js::quote(it->first) + ":" + js::quote(it->second);
    }
    h += "}";
    first = false;
  }
  std::set<std::string> seen;
  uint64_t off = 0;
  for (const auto& t : tensors) {
    const std::string where = "write_safetensors: tensor '" + t.name + "'";
    if (t.name.empty() || t.name == "__metadata__")
      throw Error(Status::invalid_argument, "write_safetensors: invalid tensor name '" + t.name + "'");
    if (!seen.insert(t.name).second)
      throw Error(Status::invalid_argument, where + ": duplicate name");
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) throw Error(Status::invalid_argument, where + ": negative dimension");
      if (!mul_ok(numel, static_cast<uint64_t>(d), numel))
        throw Error(Status::invalid_argument, where + ": shape overflows");
    }
    uint64_t nb = 0;
    if (!mul_ok(numel, dtype_size(t.dtype), nb) || nb != t.nbytes)
      throw Error(Status::invalid_argument, where + ": nbytes " + std::to_string(t.nbytes) +
                                                " does not match shape " + shape_str(t.shape));
    if (nb > 0 && t.data == nullptr) throw Error(Status::invalid_argument, where + ": null data");
    if (!first) h += ",";
    first = false;
    h += js::quote(t.name) + ":{\"dtype\":\"" + dtype_name(t.dtype) + "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) h += (i ? "," : "") + std::to_string(t.shape[i]);
    h += "],\"data_offsets\":[" + std::to_string(off) + "," + std::to_string(off + nb) + "]}";
    off += nb;
  }
  h += "}";
  while (h.size() % 8 != 0) h += ' ';  // data section 8-byte aligned, like the reference writer
  std::string out;
  out.reserve(8 + h.size() + off);
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
  out += h;
  for (const auto& t : tensors)
    if (t.nbytes) out.append(reinterpret_cast<const char*>(t.data), t.nbytes);
  return out;
}

void write_safetensors(const std::string& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::string bytes = serialize_safetensors(tensors, metadata);
  detail::AtomicFileWriter w(path);
  w.stream().write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  w.commit();
}

}  // namespace routenlp

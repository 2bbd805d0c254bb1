// Reading and writing safetensors files (HuggingFace's weight format), with strict validation:
// a truncated or malicious file gives Error(parse) naming the file and tensor, never an
// out-of-bounds read. Format: 8-byte little-endian header length N, N bytes of JSON header,
// then the data section that the tensors' data_offsets must tile exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "routenlp/export.h"

namespace routenlp {

// Element types routenlp reads and writes (safetensors spelling in dtype_name()).
enum class DType : int { F32 = 0, F16 = 1, BF16 = 2, I64 = 3, I32 = 4 };

// "F32", "F16", "BF16", "I64", "I32".
RN_API const char* dtype_name(DType t) noexcept;
// Bytes per element (4, 2, 2, 8, 4).
RN_API size_t dtype_size(DType t) noexcept;

// One tensor: raw little-endian bytes (not necessarily aligned; memcpy them) owned elsewhere.
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;        // [] is a scalar (one element)
  const unsigned char* data = nullptr;
  size_t nbytes = 0;                 // == numel() * dtype_size(dtype)
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

class SafetensorsFile;
// Validates in-memory file bytes; `origin` names them in error messages.
RN_API SafetensorsFile parse_safetensors(std::string bytes, const std::string& origin);

// A parsed file. The views point into a buffer this object shares; copies share it too.
class RN_API SafetensorsFile {
 public:
  SafetensorsFile() = default;
  // Tensors in data-offset order.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  // Tensor by name, or nullptr.
  const TensorView* find(const std::string& name) const;
  // The "__metadata__" string map (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // File path (or the origin name given to parse_safetensors).
  const std::string& origin() const { return origin_; }

 private:
  friend SafetensorsFile parse_safetensors(std::string bytes, const std::string& origin);
  std::shared_ptr<const std::string> buffer_;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
  std::string origin_;
};

// Header length limit (the reference implementation's): 100,000,000 bytes.
constexpr uint64_t kSafetensorsMaxHeader = 100000000ULL;

// Reads and validates a file. Throws Error(io) if it cannot be read, Error(parse) if invalid.
RN_API SafetensorsFile read_safetensors(const std::string& path);

// Serialises tensors (in the given order) and metadata. Names must be unique, non-empty and not
// "__metadata__"; nbytes must match shape and dtype (Error(invalid_argument) otherwise).
RN_API std::string serialize_safetensors(const std::vector<TensorView>& tensors,
                                         const std::map<std::string, std::string>& metadata = {});

// serialize_safetensors() written atomically (temp file + rename). Throws Error(io).
RN_API void write_safetensors(const std::string& path, const std::vector<TensorView>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

}  // namespace routenlp

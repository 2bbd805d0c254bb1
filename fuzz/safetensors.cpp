// Fuzz target: safetensors files (parse_safetensors, safetensors.hpp). Every view the parser
// hands out is read end to end, so a view past the buffer is an ASan report.
#include <string>

#include "fuzz_common.hpp"
#include "routenlp/encoder/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return rn_fuzz::run("safetensors", [&] {
    auto f = routenlp::parse_safetensors(rn_fuzz::as_string(data, size), "fuzz.safetensors");
    unsigned sum = 0;
    for (const auto& t : f.tensors()) {
      rn_fuzz::check(t.nbytes == static_cast<size_t>(t.numel()) * routenlp::dtype_size(t.dtype),
                     "safetensors", "nbytes != numel * dtype_size");
      rn_fuzz::check(f.find(t.name) != nullptr, "safetensors", "a listed tensor is not found by name");
      for (size_t i = 0; i < t.nbytes; ++i) sum += t.data[i];
    }
    for (const auto& kv : f.metadata()) sum += static_cast<unsigned>(kv.first.size() + kv.second.size());
    volatile unsigned sink = sum;
    (void)sink;
  });
}

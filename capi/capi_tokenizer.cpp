// C ABI of the WordPiece tokenizer (rn_tokenizer.h).
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "capi_internal.hpp"
#include "routenlp/rn_tokenizer.h"
#include "routenlp/text/tokenizer.hpp"

struct rn_tokenizer {
  routenlp::WordPieceTokenizer impl;
};

extern "C" {

rn_status rn_tokenizer_create_from_vocab(rn_tokenizer** out, const char* path) {
  constexpr const char* fn = "rn_tokenizer_create_from_vocab";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    *out = nullptr;
    std::string p = path ? std::string(path) : routenlp::default_vocab_path();
    *out = new rn_tokenizer{routenlp::WordPieceTokenizer::from_vocab_file(p)};
    return RN_OK;
  });
}

rn_status rn_tokenizer_create_from_json(rn_tokenizer** out, const char* path) {
  constexpr const char* fn = "rn_tokenizer_create_from_json";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    *out = nullptr;
    RN_REQUIRE_ARG(path != nullptr, fn, "path is NULL");
    *out = new rn_tokenizer{routenlp::WordPieceTokenizer::from_tokenizer_json(path)};
    return RN_OK;
  });
}

void rn_tokenizer_destroy(rn_tokenizer* tok) { delete tok; }

rn_status rn_tokenizer_encode(int32_t* out_ids, size_t capacity, size_t* out_len,
                              const rn_tokenizer* tok, const char* text, size_t text_len,
                              size_t max_length) {
  constexpr const char* fn = "rn_tokenizer_encode";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out_len != nullptr, fn, "out_len is NULL");
    *out_len = 0;
    RN_REQUIRE_ARG(out_ids != nullptr || capacity == 0, fn, "out_ids is NULL but capacity > 0");
    RN_REQUIRE_ARG(tok != nullptr, fn, "tok is NULL");
    RN_REQUIRE_ARG(text != nullptr || text_len == 0, fn, "text is NULL but text_len > 0");
    RN_REQUIRE_ARG(max_length >= 2, fn, "max_length must be >= 2 (room for [CLS] and [SEP])");
    auto enc = tok->impl.encode(std::string_view(text ? text : "", text_len), max_length);
    *out_len = enc.ids.size();
    if (enc.ids.size() > capacity)
      return rn::fail(RN_ERR_INVALID_ARGUMENT, std::string(fn) + ": capacity " +
                                                   std::to_string(capacity) + " < " +
                                                   std::to_string(enc.ids.size()) + " ids");
    std::copy(enc.ids.begin(), enc.ids.end(), out_ids);
    return RN_OK;
  });
}

rn_status rn_tokenizer_vocab_size(size_t* out, const rn_tokenizer* tok) {
  constexpr const char* fn = "rn_tokenizer_vocab_size";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    RN_REQUIRE_ARG(tok != nullptr, fn, "tok is NULL");
    *out = tok->impl.vocab_size();
    return RN_OK;
  });
}

rn_status rn_tokenizer_token_to_id(int32_t* out, const rn_tokenizer* tok, const char* token) {
  constexpr const char* fn = "rn_tokenizer_token_to_id";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    RN_REQUIRE_ARG(tok != nullptr, fn, "tok is NULL");
    RN_REQUIRE_ARG(token != nullptr, fn, "token is NULL");
    *out = tok->impl.token_to_id(token);
    return RN_OK;
  });
}

rn_status rn_tokenizer_default_vocab_path(const char** out) {
  constexpr const char* fn = "rn_tokenizer_default_vocab_path";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    thread_local std::string path;
    path = routenlp::default_vocab_path();
    *out = path.c_str();
    return RN_OK;
  });
}

}  // extern "C"

// Fuzz target: WordPiece encoding of arbitrary query text (tokenizer.hpp) with the bundled
// bert-base-uncased vocabulary: UTF-8 decoding and repair, normalisation, accent stripping,
// CJK splitting and truncation see every byte a request can carry.
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_common.hpp"
#include "routenlp/text/tokenizer.hpp"

#ifndef RN_FUZZ_VOCAB
#error "RN_FUZZ_VOCAB (path of data/vocab/bert-base-uncased-vocab.txt) must be defined"
#endif

namespace {

const routenlp::WordPieceTokenizer& tokenizer() {
  static const routenlp::WordPieceTokenizer tok = routenlp::WordPieceTokenizer::from_vocab_file(RN_FUZZ_VOCAB);
  return tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return rn_fuzz::run("tokenize_text", [&] {
    const auto& tok = tokenizer();
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const size_t n = tok.vocab_size();
    routenlp::Encoding e = tok.encode(text, 64);
    rn_fuzz::check(e.ids.size() >= 2 && e.ids.size() <= 64, "tokenize_text", "encode: length outside [2, 64]");
    rn_fuzz::check(e.ids.front() == tok.cls_id() && e.ids.back() == tok.sep_id(), "tokenize_text",
                   "encode: not [CLS] ... [SEP]");
    std::vector<int32_t> pieces;
    tok.encode_pieces(text, pieces);
    for (int32_t id : pieces)
      rn_fuzz::check(id >= 0 && static_cast<size_t>(id) < n, "tokenize_text", "piece id outside the vocab");
    // Truncation keeps a prefix of the untruncated pieces.
    for (size_t i = 1; i + 1 < e.ids.size(); ++i)
      rn_fuzz::check(i - 1 < pieces.size() && e.ids[i] == pieces[i - 1], "tokenize_text",
                     "encode is not [CLS] + a prefix of encode_pieces + [SEP]");
    rn_fuzz::check(tok.tokenize(text).size() == pieces.size(), "tokenize_text",
                   "tokenize and encode_pieces disagree on the piece count");
    routenlp::BatchEncoding b = tok.encode_batch({std::string(text), "short"}, 32);
    rn_fuzz::check(b.batch == 2 && b.ids.size() == b.batch * b.seq_len, "tokenize_text", "encode_batch shape");
  });
}

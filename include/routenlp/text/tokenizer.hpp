// WordPiece tokenizer with HuggingFace BertTokenizer (uncased) semantics (docs/tokenizer.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "routenlp/export.h"

namespace routenlp {

// Normalisation switches; the defaults are bert-base-uncased's.
struct TokenizerOptions {
  bool lowercase = true;               // full Unicode lower-casing, per character
  bool strip_accents = true;           // NFD, then drop non-spacing marks (Mn)
  bool tokenize_chinese_chars = true;  // CJK ideographs become words of their own
  size_t max_input_chars_per_word = 100;  // longer words become [UNK]
};

// One encoded text: [CLS] pieces... [SEP]; attention_mask is all ones (no padding).
struct Encoding {
  std::vector<int32_t> ids;
  std::vector<int32_t> attention_mask;
};

// Row-major [batch, seq_len] ids and mask, padded with pad_id / 0.
struct BatchEncoding {
  size_t batch = 0, seq_len = 0;
  std::vector<int64_t> ids, attention_mask;
};

// Immutable after load; every const member is thread-safe.
class RN_API WordPieceTokenizer {
 public:
  // Loads a BERT vocab.txt (one token per line, id = line index). Throws Error(io/parse).
  static WordPieceTokenizer from_vocab_file(const std::string& vocab_txt, TokenizerOptions = {});
  // Loads a HuggingFace tokenizer.json whose model is WordPiece (BertNormalizer options,
  // [UNK]/prefix/max chars, [CLS]/[SEP] from its post-processor). Throws Error(io/parse).
  static WordPieceTokenizer from_tokenizer_json(const std::string& path);
  // Builds from tokens in id order (tests, embedding); throws Error(invalid_argument).
  static WordPieceTokenizer from_tokens(std::vector<std::string> tokens, TokenizerOptions = {});

  WordPieceTokenizer(WordPieceTokenizer&&) noexcept;
  WordPieceTokenizer& operator=(WordPieceTokenizer&&) noexcept;
  ~WordPieceTokenizer();

  // [CLS] + pieces + [SEP]; pieces are cut so the result has at most max_length ids
  // (max_length >= 2, else Error(invalid_argument)). Invalid UTF-8 is replaced, never fatal.
  Encoding encode(std::string_view text, size_t max_length = 512) const;
  // Encodes each text; seq_len = longest encoding if pad_to_longest, else max_length.
  BatchEncoding encode_batch(const std::vector<std::string>& texts, size_t max_length = 512,
                             bool pad_to_longest = true) const;
  // Appends the word-piece ids of text (no specials, no truncation) to out.
  void encode_pieces(std::string_view text, std::vector<int32_t>& out) const;
  // Word pieces of text as strings, without specials.
  std::vector<std::string> tokenize(std::string_view text) const;

  int32_t token_to_id(std::string_view token) const;  // -1 if absent
  const std::string& id_to_token(int32_t id) const;   // throws Error(invalid_argument)
  size_t vocab_size() const;
  int32_t cls_id() const;
  int32_t sep_id() const;
  int32_t pad_id() const;
  int32_t unk_id() const;
  const TokenizerOptions& options() const;
  // 16 hex digits: FNV-1a 64 of the tokens in id order, each followed by '\n'.
  std::string vocab_hash() const;

  struct Impl;

 private:
  explicit WordPieceTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The bundled bert-base-uncased vocab.txt: $ROUTENLP_DATA_DIR/vocab/... if that variable is set,
// else the build tree's data/vocab, else the installed share/routenlp/vocab.
RN_API std::string default_vocab_path();

// Plain word tokens for TF-IDF features and cluster terms: runs of ASCII letters/digits or
// non-ASCII bytes (UTF-8 sequences stay inside words), ASCII lower-cased; everything else splits
// ("don't" -> "don", "t").
RN_API std::vector<std::string> tokenize_words(const std::string& text);

}  // namespace routenlp

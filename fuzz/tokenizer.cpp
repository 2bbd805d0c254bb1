// Fuzz target: tokenizer files (tokenizer.hpp): a BERT vocab.txt or a HuggingFace
// tokenizer.json, chosen by the first input byte (even: vocab.txt, odd: tokenizer.json).
// A tokenizer that loads is then used on a few fixed texts.
#include <string>

#include "fuzz_common.hpp"
#include "routenlp/text/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool json = data[0] & 1;
  return rn_fuzz::run("tokenizer", [&] {
    const std::string path = rn_fuzz::write_temp(json ? "tokenizer.json" : "vocab.txt", data + 1, size - 1);
    routenlp::WordPieceTokenizer tok = json ? routenlp::WordPieceTokenizer::from_tokenizer_json(path)
                                            : routenlp::WordPieceTokenizer::from_vocab_file(path);
    const size_t n = tok.vocab_size();
    for (const char* text : {"Hello, world! unaffable", "Straße 東京 naïve", "", "[CLS] x [SEP]"}) {
      routenlp::Encoding e = tok.encode(text, 16);
      rn_fuzz::check(e.ids.size() <= 16 && e.ids.size() == e.attention_mask.size(), "tokenizer",
                     "encode: too long or mask size differs");
      for (int32_t id : e.ids)
        rn_fuzz::check(id >= 0 && static_cast<size_t>(id) < n, "tokenizer", "encode: id outside the vocab");
      (void)tok.tokenize(text);
    }
    for (int32_t id : {tok.cls_id(), tok.sep_id(), tok.pad_id(), tok.unk_id()})
      if (id >= 0 && static_cast<size_t>(id) < n) (void)tok.id_to_token(id);
    (void)tok.vocab_hash();
  });
}

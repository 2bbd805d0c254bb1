// WordPiece tokenizer: HF parity fixture, hand-checked ids, truncation, batching, robustness.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "routenlp/error.hpp"
#include "routenlp/text/tokenizer.hpp"

using namespace routenlp;

namespace {

const std::string kVocab = std::string(RN_REPO_DATA_DIR) + "/vocab/bert-base-uncased-vocab.txt";
const std::string kFixtureDir = std::string(RN_TEST_DATA_DIR) + "/tokenizer";

const WordPieceTokenizer& bert() {
  static const WordPieceTokenizer tok = WordPieceTokenizer::from_vocab_file(kVocab);
  return tok;
}

std::string b64decode(const std::string& in) {
  static const std::string chars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t buf = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    size_t v = chars.find(c);
    REQUIRE(v != std::string::npos);
    buf = (buf << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buf >> bits) & 0xFF));
    }
  }
  return out;
}

struct Case {
  std::string src, text;
  std::vector<int32_t> ids, trunc64;
};

const std::vector<Case>& fixture() {
  static const std::vector<Case> cases = [] {
    std::vector<Case> v;
    std::ifstream in(kFixtureDir + "/golden.jsonl");
    REQUIRE(in.good());
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line);
      Case c;
      c.src = j.at("src").get<std::string>();
      c.text = j.contains("bytes_b64") ? b64decode(j["bytes_b64"].get<std::string>())
                                       : j.at("text").get<std::string>();
      c.ids = j.at("ids").get<std::vector<int32_t>>();
      if (j.contains("ids_trunc64")) c.trunc64 = j["ids_trunc64"].get<std::vector<int32_t>>();
      v.push_back(std::move(c));
    }
    return v;
  }();
  return cases;
}

std::vector<int32_t> ids_of(const WordPieceTokenizer& tok, const std::string& text,
                            size_t max_length = SIZE_MAX) {
  return tok.encode(text, max_length).ids;
}

size_t check_parity(const WordPieceTokenizer& tok) {
  size_t mismatches = 0;
  for (const auto& c : fixture()) {
    auto got = ids_of(tok, c.text);
    if (got != c.ids) {
      if (++mismatches <= 5) {
        INFO("src " << c.src << " text: " << c.text.substr(0, 200));
        CHECK(got == c.ids);
      }
    }
    if (!c.trunc64.empty()) CHECK(ids_of(tok, c.text, 64) == c.trunc64);
  }
  return mismatches;
}

}  // namespace

TEST_CASE("fixture is substantial", "[tokenizer]") {
  size_t queries = 0, tricky = 0, invalid = 0, fuzz = 0, trunc = 0;
  for (const auto& c : fixture()) {
    if (c.src.rfind("tricky/", 0) == 0)
      ++tricky;
    else if (c.src.rfind("fuzz/", 0) == 0)
      ++fuzz;
    else if (c.src.rfind("invalid_utf8/", 0) == 0)
      ++invalid;
    else
      ++queries;
    trunc += !c.trunc64.empty();
  }
  CHECK(queries >= 2000);
  CHECK(tricky >= 30);
  CHECK(invalid >= 5);
  CHECK(fuzz >= 400);
  CHECK(trunc >= 100);
}

TEST_CASE("HF parity on every fixture query via vocab.txt", "[tokenizer][parity]") {
  CHECK(check_parity(bert()) == 0);
}

TEST_CASE("HF parity on every fixture query via tokenizer.json", "[tokenizer][parity]") {
  auto tok = WordPieceTokenizer::from_tokenizer_json(kFixtureDir + "/tokenizer.json");
  CHECK(tok.vocab_size() == bert().vocab_size());
  CHECK(tok.vocab_hash() == bert().vocab_hash());
  CHECK(tok.cls_id() == 101);
  CHECK(tok.sep_id() == 102);
  CHECK(check_parity(tok) == 0);
}

TEST_CASE("hand-checked ids", "[tokenizer]") {
  const auto& t = bert();
  CHECK(t.vocab_size() == 30522);
  CHECK(t.cls_id() == 101);
  CHECK(t.sep_id() == 102);
  CHECK(t.pad_id() == 0);
  CHECK(t.unk_id() == 100);
  CHECK(ids_of(t, "hello world") == std::vector<int32_t>{101, 7592, 2088, 102});
  CHECK(ids_of(t, "Hello, World!") == std::vector<int32_t>{101, 7592, 1010, 2088, 999, 102});
  CHECK(ids_of(t, "") == std::vector<int32_t>{101, 102});
  CHECK(ids_of(t, " \t\n ") == std::vector<int32_t>{101, 102});
  CHECK(t.tokenize("Héllo Wörld") == std::vector<std::string>{"hello", "world"});
  CHECK(t.tokenize("unaffable") == std::vector<std::string>{"una", "##ffa", "##ble"});
  CHECK(t.tokenize("!!!???...") ==
        std::vector<std::string>{"!", "!", "!", "?", "?", "?", ".", ".", "."});
  CHECK(t.tokenize("我爱北京") == std::vector<std::string>{"我", "[UNK]", "北", "京"});
  CHECK(t.token_to_id("hello") == 7592);
  CHECK(t.token_to_id("##ing") == 2075);
  CHECK(t.token_to_id("no-such-token") == -1);
  CHECK(t.id_to_token(7592) == "hello");
  CHECK_THROWS_AS(t.id_to_token(30522), Error);
  CHECK_THROWS_AS(t.id_to_token(-1), Error);
}

TEST_CASE("words over 100 characters become [UNK]", "[tokenizer]") {
  const auto& t = bert();
  CHECK(ids_of(t, std::string(101, 'a')) == std::vector<int32_t>{101, 100, 102});
  CHECK(ids_of(t, std::string(100, 'a')).size() > 3);  // exactly 100 is split into pieces
  // A word that cannot be matched at all is one [UNK], not partial pieces.
  CHECK(t.tokenize("x\xe2\x98\x83y") == std::vector<std::string>{"[UNK]"});
  // Limit is configurable.
  TokenizerOptions o;
  o.max_input_chars_per_word = 5;
  auto small = WordPieceTokenizer::from_vocab_file(kVocab, o);
  CHECK(small.tokenize("hello worlds") == std::vector<std::string>{"hello", "[UNK]"});
}

TEST_CASE("truncation keeps [CLS] and [SEP]", "[tokenizer]") {
  const auto& t = bert();
  std::string text = "the quick brown fox jumps over the lazy dog again and again";
  auto full = t.encode(text, 512);
  REQUIRE(full.ids.size() > 8);
  auto cut = t.encode(text, 8);
  REQUIRE(cut.ids.size() == 8);
  CHECK(cut.ids.front() == 101);
  CHECK(cut.ids.back() == 102);
  CHECK(std::vector<int32_t>(cut.ids.begin(), cut.ids.end() - 1) ==
        std::vector<int32_t>(full.ids.begin(), full.ids.begin() + 7));
  CHECK(cut.attention_mask == std::vector<int32_t>(8, 1));
  CHECK(t.encode(text, 2).ids == std::vector<int32_t>{101, 102});
  CHECK_THROWS_AS(t.encode(text, 1), Error);
  // A word cut in the middle of its pieces: still exactly max_length ids.
  auto mid = t.encode("unaffable", 3);
  CHECK(mid.ids == std::vector<int32_t>{101, t.token_to_id("una"), 102});
}

TEST_CASE("batch encoding pads and masks", "[tokenizer]") {
  const auto& t = bert();
  std::vector<std::string> texts = {"hello world", "", "a much longer sentence than the others here, with enough words to be cut at sixteen ids"};
  auto b = t.encode_batch(texts, 512, true);
  REQUIRE(b.batch == 3);
  auto longest = t.encode(texts[2]).ids.size();
  REQUIRE(b.seq_len == longest);
  REQUIRE(b.ids.size() == 3 * b.seq_len);
  REQUIRE(b.attention_mask.size() == 3 * b.seq_len);
  for (size_t r = 0; r < 3; ++r) {
    auto e = t.encode(texts[r]).ids;
    for (size_t c = 0; c < b.seq_len; ++c) {
      bool real = c < e.size();
      CHECK(b.attention_mask[r * b.seq_len + c] == (real ? 1 : 0));
      CHECK(b.ids[r * b.seq_len + c] == (real ? e[c] : t.pad_id()));
    }
  }
  auto fixed = t.encode_batch(texts, 16, false);
  CHECK(fixed.seq_len == 16);
  CHECK(fixed.ids[0 * 16 + 3] == 102);  // [CLS] hello world [SEP]
  CHECK(fixed.attention_mask[0 * 16 + 4] == 0);
  CHECK(fixed.ids[2 * 16 + 15] == 102);  // the long one is truncated to 16
  auto empty = t.encode_batch({}, 32, true);
  CHECK(empty.batch == 0);
  CHECK(empty.ids.empty());
}

TEST_CASE("large and hostile inputs", "[tokenizer]") {
  const auto& t = bert();
  std::string big;
  while (big.size() < 100 * 1024) big += "The quick brown fox, naïve café 東京! ";
  auto all = ids_of(t, big);
  // ~8 words+punct per 40-byte phrase: a sane count, not 1 and not one per byte.
  CHECK(all.size() > big.size() / 10);
  CHECK(all.size() < big.size() / 2);
  auto cut = t.encode(big, 512);
  CHECK(cut.ids.size() == 512);
  CHECK(cut.ids.back() == 102);

  // Invalid UTF-8 is replaced (and then dropped, like U+FFFD), never a crash.
  CHECK(ids_of(t, std::string("hel\xfflo")) == ids_of(t, "hello"));
  CHECK(ids_of(t, std::string("\xc3")) == std::vector<int32_t>{101, 102});
  std::string junk;
  uint32_t x = 12345;
  for (int i = 0; i < 200000; ++i) {
    x = x * 1103515245u + 12345u;
    junk.push_back(static_cast<char>(x >> 16));
  }
  auto j = t.encode(junk, 100000);
  CHECK(j.ids.size() >= 2);
  CHECK(j.ids.front() == 101);
  CHECK(j.ids.back() == 102);
  std::string zeros(1000, '\0');
  CHECK(ids_of(t, zeros) == std::vector<int32_t>{101, 102});
}

TEST_CASE("option switches", "[tokenizer]") {
  TokenizerOptions o;
  o.strip_accents = false;
  auto keep = WordPieceTokenizer::from_vocab_file(kVocab, o);
  CHECK(keep.tokenize("café") != bert().tokenize("café"));
  TokenizerOptions c;
  c.tokenize_chinese_chars = false;
  auto nocjk = WordPieceTokenizer::from_vocab_file(kVocab, c);
  CHECK(nocjk.tokenize("北京") == std::vector<std::string>{"北", "##京"});
  TokenizerOptions l;
  l.lowercase = false;
  l.strip_accents = false;
  auto cased = WordPieceTokenizer::from_vocab_file(kVocab, l);
  CHECK(cased.tokenize("Hello") != std::vector<std::string>{"hello"});
}

TEST_CASE("thread safety: 8 threads agree", "[tokenizer]") {
  const auto& t = bert();
  const auto& cases = fixture();
  std::vector<std::vector<int32_t>> expect;
  for (size_t i = 0; i < cases.size(); i += 3) expect.push_back(ids_of(t, cases[i].text));
  std::vector<int> bad(8, 0);
  std::vector<std::thread> th;
  for (int k = 0; k < 8; ++k) {
    th.emplace_back([&, k] {
      for (int rep = 0; rep < 2; ++rep)
        for (size_t i = 0, e = 0; i < cases.size(); i += 3, ++e)
          if (t.encode(cases[i].text, SIZE_MAX).ids != expect[e]) ++bad[k];
    });
  }
  for (auto& x : th) x.join();
  for (int k = 0; k < 8; ++k) CHECK(bad[k] == 0);
}

TEST_CASE("loading errors name the file", "[tokenizer]") {
  try {
    WordPieceTokenizer::from_vocab_file("/nonexistent/vocab.txt");
    FAIL("no throw");
  } catch (const Error& e) {
    CHECK(e.code() == Status::io);
    CHECK(std::string(e.what()).find("/nonexistent/vocab.txt") != std::string::npos);
  }
  CHECK_THROWS_AS(WordPieceTokenizer::from_tokens({"a", "b"}), Error);  // no [UNK]/[CLS]/[SEP]
  auto tiny = WordPieceTokenizer::from_tokens({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "ab", "##c"});
  CHECK(tiny.encode("abc ab abd").ids == std::vector<int32_t>{2, 4, 5, 4, 1, 3});
  CHECK(tiny.vocab_hash().size() == 16);
  CHECK(tiny.vocab_hash() != bert().vocab_hash());
  const std::string tmp = std::string(RN_BINARY_DIR) + "/tok_bad.json";
  for (const char* body : {"{", "{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}",
                           "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 5}}}"}) {
    std::ofstream(tmp) << body;
    try {
      WordPieceTokenizer::from_tokenizer_json(tmp);
      FAIL("no throw for " << body);
    } catch (const Error& e) {
      CHECK(e.code() == Status::parse);
      CHECK(std::string(e.what()).find(tmp) != std::string::npos);
    }
  }
}

TEST_CASE("tokenizer.json: a float or out-of-range special token id is a parse error naming it",
          "[tokenizer]") {
  using nlohmann::json;
  const json good = {
      {"model", {{"type", "WordPiece"}, {"unk_token", "[UNK]"},
                 {"vocab", {{"[PAD]", 0}, {"[UNK]", 1}, {"[CLS]", 2}, {"[SEP]", 3}, {"ab", 4}}}}},
      {"post_processor", {{"type", "BertProcessing"}, {"cls", json::array({"[CLS]", 2})}, {"sep", json::array({"[SEP]", 3})}}},
      {"padding", {{"pad_id", 0}}}};
  const std::string tmp = std::string(RN_BINARY_DIR) + "/tok_bad_int.json";
  std::ofstream(tmp) << good.dump();
  CHECK(WordPieceTokenizer::from_tokenizer_json(tmp).encode("ab").ids == std::vector<int32_t>{2, 4, 3});
  // get<int32_t>() of 1e300 overflowed (UBSan); 4294967298 wrapped to 2, a valid id.
  const json templ = {{"type", "TemplateProcessing"},
                      {"special_tokens", {{"[CLS]", {{"ids", json::array({2})}}}, {"[SEP]", {{"ids", json::array({3})}}}}}};
  struct Field {
    const char* pointer;
    const char* named;
  };
  for (const Field& f : {Field{"/post_processor/cls/1", "post_processor.cls[1]"},
                         Field{"/post_processor/sep/1", "post_processor.sep[1]"},
                         Field{"/padding/pad_id", "padding.pad_id"},
                         Field{"/post_processor/special_tokens/[CLS]/ids/0",
                               "post_processor.special_tokens.[CLS].ids[0]"},
                         Field{"/model/vocab/ab", "model.vocab.ab"}})
    for (const char* v : {"1e300", "-1e300", "4294967298", "2.0"}) {
      json bad = good;
      if (std::string(f.pointer).find("special_tokens") != std::string::npos) bad["post_processor"] = templ;
      bad[json::json_pointer(f.pointer)] = json::parse(v);
      std::ofstream(tmp) << bad.dump();
      INFO(f.pointer << " = " << v);
      try {
        WordPieceTokenizer::from_tokenizer_json(tmp);
        FAIL("no throw");
      } catch (const Error& e) {
        CHECK(e.code() == Status::parse);
        CHECK_THAT(e.what(), Catch::Contains(tmp + ": " + f.named + ": expected an integer") ||
                                 (Catch::Contains(tmp + ": " + f.named + ": id 4294967298") &&
                                  Catch::Contains("out of range")));
      }
    }
  std::remove(tmp.c_str());
}

TEST_CASE("default vocab path", "[tokenizer]") {
  auto p = default_vocab_path();
  CHECK(p.find("bert-base-uncased-vocab.txt") != std::string::npos);
  CHECK(std::ifstream(p).good());
  CHECK(WordPieceTokenizer::from_vocab_file(p).vocab_hash() == bert().vocab_hash());
  setenv("ROUTENLP_DATA_DIR", "/opt/elsewhere", 1);
  CHECK(default_vocab_path() == "/opt/elsewhere/vocab/bert-base-uncased-vocab.txt");
  unsetenv("ROUTENLP_DATA_DIR");
}

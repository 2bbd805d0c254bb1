// WordPiece tokenizer: BERT normaliser + pre-tokeniser + greedy longest-match-first pieces.
#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/json_int.hpp"
#include "common/text_io.hpp"
#include "common/utf8.hpp"
#include "routenlp/error.hpp"
#include "routenlp/text/tokenizer.hpp"
#include "text/unicode.hpp"
#include "text/vocab_lines.hpp"

namespace routenlp {

namespace {

namespace uni = detail::uni;

inline uint64_t load8(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// 1..7 trailing bytes folded into 64 bits (overlapping fixed-size loads, no memcpy call).
inline uint64_t load_tail(const char* p, size_t n) {
  if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + n - 4, 4);
    return (static_cast<uint64_t>(a) << 32) | b;
  }
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint64_t>(u[0]) | (static_cast<uint64_t>(u[n / 2]) << 8) |
         (static_cast<uint64_t>(u[n - 1]) << 16);
}

// Fast 64-bit string hash (8 bytes per step, murmur-style finaliser); length is mixed in.
inline uint64_t hash_bytes(const char* p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
  while (n >= 8) {
    h = (h ^ load8(p)) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
    p += 8;
    n -= 8;
  }
  if (n) h = (h ^ load_tail(p, n)) * 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 29;
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 32;
  return h;
}

inline bool same_bytes(const char* a, const char* b, size_t n) {
  for (; n >= 8; a += 8, b += 8, n -= 8)
    if (load8(a) != load8(b)) return false;
  for (; n; ++a, ++b, --n)
    if (*a != *b) return false;
  return true;
}

// Open-addressing string -> id table over keys stored in one arena.
class TokenTable {
 public:
  void build(const std::vector<std::pair<std::string_view, int32_t>>& entries) {
    size_t cap = 16;
    while (cap < entries.size() * 2 + 1) cap <<= 1;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    size_t bytes = 0;
    for (const auto& e : entries) bytes += e.first.size();
    arena_.clear();
    arena_.reserve(bytes);
    max_len_ = 0;
    for (const auto& [key, id] : entries) insert(key, id);
  }
  int32_t find(const char* p, size_t n) const noexcept {
    if (n > max_len_ || slots_.empty()) return -1;
    uint64_t h = hash_bytes(p, n);
    uint32_t tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.id < 0) return -1;
      if (s.tag == tag && s.len == n && same_bytes(arena_.data() + s.off, p, n)) return s.id;
    }
  }
  size_t max_len() const noexcept { return max_len_; }

 private:
  struct Slot {
    uint32_t off = 0, len = 0, tag = 0;
    int32_t id = -1;
  };
  void insert(std::string_view key, int32_t id) {
    uint64_t h = hash_bytes(key.data(), key.size());
    uint32_t tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.id < 0) {
        s.off = static_cast<uint32_t>(arena_.size());
        s.len = static_cast<uint32_t>(key.size());
        s.tag = tag;
        s.id = id;
        arena_.append(key);
        max_len_ = std::max(max_len_, key.size());
        return;
      }
      if (s.tag == tag && s.len == key.size() &&
          std::memcmp(arena_.data() + s.off, key.data(), key.size()) == 0) {
        s.id = id;  // duplicate token: the later line wins, as in HF
        return;
      }
    }
  }
  std::vector<Slot> slots_;
  std::string arena_;
  size_t mask_ = 0;
  size_t max_len_ = 0;
};

// Scratch buffers, reused through a small pool: encode() allocates nothing once they have grown.
// (A pool rather than thread_local: dynamic TLS in a shared library costs a __tls_get_addr call
// that measured ~8% of encode time here.)
struct Scratch {
  std::vector<char32_t> cps;  // cleaned, CJK-padded, NFD (canonically ordered) code points
  std::string norm;           // normalised word bytes, words back to back
  struct Word {
    uint32_t begin, end, chars;
  };
  std::vector<Word> words;
};

class ScratchPool {
 public:
  std::unique_ptr<Scratch> take() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!free_.empty()) {
        auto s = std::move(free_.back());
        free_.pop_back();
        return s;
      }
    }
    return std::make_unique<Scratch>();
  }
  void give(std::unique_ptr<Scratch> s) noexcept {
    if (!s || s->norm.capacity() > (1u << 20)) return;  // do not keep buffers of a huge input
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.size() < free_.capacity() || free_.size() < 64) {
      try {
        free_.push_back(std::move(s));
      } catch (...) {  // out of memory: just drop the buffers
      }
    }
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<Scratch>> free_;
};

inline bool is_cont_byte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// ASCII classes: 0 letter/digit, 1 drop, 2 whitespace, 3 punctuation.
struct AsciiTable {
  uint8_t cls[128];
  constexpr AsciiTable() : cls() {
    for (int c = 0; c < 128; ++c) {
      if (c == '\t' || c == '\n' || c == '\r' || c == ' ')
        cls[c] = 2;
      else if (c < 32 || c == 127)
        cls[c] = 1;  // NUL and the other C0 controls (incl. \v \f) are dropped, as in HF
      else if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
               (c >= 123 && c <= 126))
        cls[c] = 3;
      else
        cls[c] = 0;
    }
  }
};
constexpr AsciiTable kAscii{};

}  // namespace

struct WordPieceTokenizer::Impl {
  TokenizerOptions opt;
  bool clean_text = true;
  std::vector<std::string> tokens;  // id -> token
  TokenTable full;                  // every token
  TokenTable cont;                  // tokens starting with prefix, keyed without it
  std::string prefix = "##";
  std::string unk_token = "[UNK]";
  int32_t unk = -1, cls = -1, sep = -1, pad = -1;

  void finish(const std::string& where) {
    if (tokens.empty()) throw Error(Status::parse, where + ": empty vocabulary");
    if (tokens.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
      throw Error(Status::parse, where + ": vocabulary too large");
    std::vector<std::pair<std::string_view, int32_t>> all, sub;
    all.reserve(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string_view t = tokens[i];
      all.emplace_back(t, static_cast<int32_t>(i));
      if (!prefix.empty() && t.size() > prefix.size() && t.compare(0, prefix.size(), prefix) == 0)
        sub.emplace_back(t.substr(prefix.size()), static_cast<int32_t>(i));
    }
    full.build(all);
    if (prefix.empty())
      cont.build(all);
    else
      cont.build(sub);
    unk = full.find(unk_token.data(), unk_token.size());
    if (unk < 0) throw Error(Status::parse, where + ": unknown token '" + unk_token + "' is not in the vocabulary");
    auto need = [&](int32_t& id, const char* name) {
      if (id < 0) id = full.find(name, std::strlen(name));
      if (id < 0 || static_cast<size_t>(id) >= tokens.size())
        throw Error(Status::parse, where + ": special token " + name + " is not in the vocabulary");
    };
    need(cls, "[CLS]");
    need(sep, "[SEP]");
    if (pad < 0) pad = std::max<int32_t>(0, full.find("[PAD]", 5));  // no [PAD]: id 0
    if (static_cast<size_t>(pad) >= tokens.size())
      throw Error(Status::parse, where + ": pad id " + std::to_string(pad) + " is outside the vocabulary");
    if (opt.max_input_chars_per_word == 0)
      throw Error(Status::invalid_argument, where + ": max_input_chars_per_word must be > 0");
  }

  // Normalise and pre-tokenise in one pass -> s.norm (word bytes) and s.words.
  // BERT order: clean text, pad CJK, NFD + canonical ordering, drop Mn, lower-case, then split
  // on whitespace and isolate punctuation. ASCII bytes take a direct path; each run of
  // non-ASCII characters is normalised in s.cps first (canonical reordering never crosses an
  // ASCII character or a space: both are starters).
  void normalize_split(std::string_view text, Scratch& s) const {
    auto& norm = s.norm;
    auto& words = s.words;
    auto& cps = s.cps;
    norm.clear();
    words.clear();
    cps.clear();
    norm.reserve(text.size() + 16);
    const bool strip = opt.strip_accents, lower = opt.lowercase;
    bool in_word = false;
    auto close = [&] {
      if (in_word) {
        words.back().end = static_cast<uint32_t>(norm.size());
        in_word = false;
      }
    };
    // One normalised character into the word stream.
    auto emit = [&](char32_t c) {
      bool ws, punct;
      if (c < 0x80) {
        uint8_t k = kAscii.cls[c];
        ws = k == 2 || c == 0x0B || c == 0x0C;
        punct = k == 3;
      } else {
        uint8_t f = uni::flags(c);
        ws = f & uni::kWs;
        punct = f & uni::kPunct;
      }
      if (ws) {
        close();
        return;
      }
      if (punct) {
        close();
        uint32_t b = static_cast<uint32_t>(norm.size());
        detail::append_utf8(norm, c);
        words.push_back({b, static_cast<uint32_t>(norm.size()), 1});
        return;
      }
      if (!in_word) {
        words.push_back({static_cast<uint32_t>(norm.size()), 0, 0});
        in_word = true;
      }
      detail::append_utf8(norm, c);
      ++words.back().chars;
    };
    // Pending non-ASCII run: drop Mn, lower-case, emit.
    auto flush = [&] {
      for (char32_t c : cps) {
        uint8_t f = uni::flags(c);
        if (strip && (f & uni::kMn)) continue;
        if (lower && (f & uni::kLower)) {
          char32_t l[3];
          size_t n = uni::lower(c, l);
          for (size_t k = 0; k < n; ++k) emit(l[k]);
        } else {
          emit(c);
        }
      }
      cps.clear();
    };
    auto push_mark_aware = [&](char32_t c) {
      if (strip && (uni::flags(c) & uni::kCcc)) {
        // Canonical ordering: stable insertion by combining class within a run of marks.
        uint32_t cc = uni::ccc(c);
        size_t j = cps.size();
        while (j > 0 && (uni::flags(cps[j - 1]) & uni::kCcc) && uni::ccc(cps[j - 1]) > cc) --j;
        cps.insert(cps.begin() + static_cast<std::ptrdiff_t>(j), c);
      } else {
        cps.push_back(c);
      }
    };
    auto push_char = [&](char32_t c, uint8_t f) {
      if (strip && (f & uni::kDecomp)) {
        char32_t d[18];
        size_t n = uni::decompose(c, d);
        for (size_t k = 0; k < n; ++k) push_mark_aware(d[k]);
      } else {
        push_mark_aware(c);
      }
    };
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const size_t n = text.size();
    for (size_t i = 0; i < n;) {
      unsigned char b = p[i];
      if (b < 0x80) {
        uint8_t k = kAscii.cls[b];
        if (k == 1 && clean_text) {  // dropped before NFD: must not end the pending run
          ++i;
          continue;
        }
        if (!cps.empty()) flush();
        if (k == 0) {  // a run of ASCII letters and digits
          if (!in_word) {
            words.push_back({static_cast<uint32_t>(norm.size()), 0, 0});
            in_word = true;
          }
          size_t j = i;
          if (lower) {
            for (; j < n && p[j] < 0x80 && kAscii.cls[p[j]] == 0; ++j)
              norm.push_back(static_cast<char>(p[j] >= 'A' && p[j] <= 'Z' ? p[j] + 32 : p[j]));
          } else {
            for (; j < n && p[j] < 0x80 && kAscii.cls[p[j]] == 0; ++j) norm.push_back(static_cast<char>(p[j]));
          }
          words.back().chars += static_cast<uint32_t>(j - i);
          i = j;
          continue;
        }
        ++i;
        if (k == 2) {
          close();
        } else if (k == 3) {
          close();
          words.push_back({static_cast<uint32_t>(norm.size()), static_cast<uint32_t>(norm.size() + 1), 1});
          norm.push_back(static_cast<char>(b));
        } else if (!clean_text) {
          emit(b);  // control characters survive only without clean_text
        }
        continue;
      }
      char32_t c = detail::decode_utf8(text, i);  // invalid bytes -> U+FFFD (dropped below)
      uint8_t f = uni::flags(c);
      if (clean_text) {
        if (f & uni::kDrop) continue;
        if (f & uni::kWs) {
          flush();
          close();
          continue;
        }
      }
      if (opt.tokenize_chinese_chars && (f & uni::kCjk)) {
        flush();
        close();
        push_char(c, f);
        flush();
        close();
        continue;
      }
      push_char(c, f);
    }
    flush();
    close();
  }

  // Stage 3: greedy longest-match-first pieces of one word, appended to out.
  void wordpiece(const std::string& norm, const Scratch::Word& w, std::vector<int32_t>& out) const {
    if (w.chars > opt.max_input_chars_per_word) {
      out.push_back(unk);
      return;
    }
    const size_t mark = out.size();
    const char* base = norm.data();
    size_t start = w.begin;
    while (start < w.end) {
      const TokenTable& table = start == w.begin ? full : cont;
      size_t end = std::min<size_t>(w.end, start + table.max_len());
      while (end < w.end && is_cont_byte(base[end])) --end;  // char boundary
      int32_t id = -1;
      while (end > start) {
        id = table.find(base + start, end - start);
        if (id >= 0) break;
        --end;
        while (end > start && is_cont_byte(base[end])) --end;
      }
      if (id < 0) {
        out.resize(mark);
        out.push_back(unk);
        return;
      }
      out.push_back(id);
      start = end;
    }
  }

  void pieces(std::string_view text, std::vector<int32_t>& out, size_t limit) const {
    struct Lease {  // returns the buffers to the pool on every exit path
      ScratchPool& pool;
      std::unique_ptr<Scratch> s;
      ~Lease() { pool.give(std::move(s)); }
    } lease{pool, pool.take()};
    Scratch& s = *lease.s;
    normalize_split(text, s);
    for (const auto& w : s.words) {
      if (out.size() >= limit) break;
      wordpiece(s.norm, w, out);
    }
  }

  mutable ScratchPool pool;
};

WordPieceTokenizer::WordPieceTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WordPieceTokenizer::WordPieceTokenizer(WordPieceTokenizer&&) noexcept = default;
WordPieceTokenizer& WordPieceTokenizer::operator=(WordPieceTokenizer&&) noexcept = default;
WordPieceTokenizer::~WordPieceTokenizer() = default;

void detail::trim_vocab_line(std::string& line) {
  size_t e = line.size();
  while (e > 0 && (line[e - 1] == ' ' || line[e - 1] == '\t' || line[e - 1] == '\r')) --e;
  line.resize(e);
}

std::vector<std::string> detail::vocab_lines(std::string_view text) {
  std::vector<std::string> tokens;
  size_t start = 0;
  while (start < text.size()) {
    const size_t nl = text.find('\n', start);
    std::string line(text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start));
    trim_vocab_line(line);
    tokens.push_back(std::move(line));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return tokens;
}

WordPieceTokenizer WordPieceTokenizer::from_vocab_file(const std::string& vocab_txt,
                                                       TokenizerOptions opt) {
  auto impl = std::make_unique<Impl>();
  impl->opt = opt;
  detail::LineReader reader(vocab_txt);
  std::string line;
  while (reader.next(line)) {
    detail::trim_vocab_line(line);  // HF trims line ends
    if (size_t bad = detail::find_invalid_utf8(line); bad != std::string_view::npos)
      throw Error(Status::parse, fmt::format("{}:{}: invalid UTF-8 in token at byte {}", vocab_txt,
                                             reader.line_number(), bad));
    impl->tokens.push_back(line);
  }
  impl->finish(vocab_txt);
  return WordPieceTokenizer(std::move(impl));
}

WordPieceTokenizer WordPieceTokenizer::from_tokenizer_json(const std::string& path) {
  using nlohmann::json;
  json j;
  try {
    j = json::parse(detail::read_file(path));
  } catch (const json::exception& e) {
    throw Error(Status::parse, path + ": not valid JSON: " + e.what());
  }
  auto fail = [&](const std::string& field, const std::string& msg) -> Error {
    return Error(Status::parse, path + ": " + field + ": " + msg);
  };
  auto impl = std::make_unique<Impl>();
  try {
    if (!j.is_object() || !j.contains("model") || !j["model"].is_object())
      throw fail("model", "missing");
    const json& m = j["model"];
    std::string type = m.value("type", std::string("WordPiece"));
    if (type != "WordPiece") throw fail("model.type", "'" + type + "' is not WordPiece");
    if (!m.contains("vocab") || !m["vocab"].is_object()) throw fail("model.vocab", "missing or not an object");
    const json& v = m["vocab"];
    impl->tokens.assign(v.size(), std::string());
    std::vector<bool> seen(v.size(), false);
    for (auto it = v.begin(); it != v.end(); ++it) {
      int64_t id = detail::json_int<int64_t>(it.value(), path, "model.vocab." + it.key());
      if (id < 0 || static_cast<size_t>(id) >= v.size() || seen[static_cast<size_t>(id)])
        throw fail("model.vocab." + it.key(), fmt::format("id {} is out of range or repeated", id));
      seen[static_cast<size_t>(id)] = true;
      impl->tokens[static_cast<size_t>(id)] = it.key();
    }
    if (m.contains("unk_token") && m["unk_token"].is_string()) impl->unk_token = m["unk_token"];
    if (m.contains("continuing_subword_prefix") && m["continuing_subword_prefix"].is_string())
      impl->prefix = m["continuing_subword_prefix"];
    if (m.contains("max_input_chars_per_word") && m["max_input_chars_per_word"].is_number_unsigned())
      impl->opt.max_input_chars_per_word = m["max_input_chars_per_word"].get<size_t>();

    const json* n = j.contains("normalizer") ? &j["normalizer"] : nullptr;
    if (n == nullptr || n->is_null()) {
      impl->opt.lowercase = impl->opt.strip_accents = impl->opt.tokenize_chinese_chars = false;
      impl->clean_text = false;
    } else {
      std::string nt = n->value("type", std::string());
      if (nt != "BertNormalizer") throw fail("normalizer.type", "'" + nt + "' is not supported (BertNormalizer only)");
      impl->clean_text = n->value("clean_text", true);
      impl->opt.tokenize_chinese_chars = n->value("handle_chinese_chars", true);
      impl->opt.lowercase = n->value("lowercase", true);
      const json& sa = n->contains("strip_accents") ? (*n)["strip_accents"] : json();
      impl->opt.strip_accents = sa.is_boolean() ? sa.get<bool>() : impl->opt.lowercase;
    }
    if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) {
      std::string pt = j["pre_tokenizer"].value("type", std::string());
      if (pt != "BertPreTokenizer")
        throw fail("pre_tokenizer.type", "'" + pt + "' is not supported (BertPreTokenizer only)");
    }
    if (j.contains("post_processor") && j["post_processor"].is_object()) {
      const json& pp = j["post_processor"];
      std::string ppt = pp.value("type", std::string());
      if (ppt == "BertProcessing") {
        if (pp.contains("cls") && pp["cls"].is_array() && pp["cls"].size() == 2)
          impl->cls = detail::json_int<int32_t>(pp["cls"][1], path, "post_processor.cls[1]");
        if (pp.contains("sep") && pp["sep"].is_array() && pp["sep"].size() == 2)
          impl->sep = detail::json_int<int32_t>(pp["sep"][1], path, "post_processor.sep[1]");
      } else if (ppt == "TemplateProcessing" && pp.contains("special_tokens")) {
        const json& st = pp["special_tokens"];
        for (const char* name : {"[CLS]", "[SEP]"}) {
          if (st.contains(name) && st[name].contains("ids") && st[name]["ids"].size() == 1)
            (name[1] == 'C' ? impl->cls : impl->sep) = detail::json_int<int32_t>(
                st[name]["ids"][0], path, std::string("post_processor.special_tokens.") + name + ".ids[0]");
        }
      }
    }
    if (j.contains("padding") && j["padding"].is_object() && j["padding"].contains("pad_id"))
      impl->pad = detail::json_int<int32_t>(j["padding"]["pad_id"], path, "padding.pad_id");
  } catch (const json::exception& e) {
    throw Error(Status::parse, path + ": unexpected structure: " + e.what());
  }
  impl->finish(path);
  return WordPieceTokenizer(std::move(impl));
}

WordPieceTokenizer WordPieceTokenizer::from_tokens(std::vector<std::string> tokens,
                                                   TokenizerOptions opt) {
  auto impl = std::make_unique<Impl>();
  impl->opt = opt;
  impl->tokens = std::move(tokens);
  for (size_t i = 0; i < impl->tokens.size(); ++i)
    if (detail::find_invalid_utf8(impl->tokens[i]) != std::string_view::npos)
      throw Error(Status::invalid_argument, fmt::format("from_tokens: token {} is not valid UTF-8", i));
  try {
    impl->finish("from_tokens");
  } catch (const Error& e) {
    throw Error(Status::invalid_argument, e.what());
  }
  return WordPieceTokenizer(std::move(impl));
}

void WordPieceTokenizer::encode_pieces(std::string_view text, std::vector<int32_t>& out) const {
  impl_->pieces(text, out, std::numeric_limits<size_t>::max());
}

Encoding WordPieceTokenizer::encode(std::string_view text, size_t max_length) const {
  if (max_length < 2)
    throw Error(Status::invalid_argument,
                fmt::format("WordPieceTokenizer::encode: max_length {} < 2 leaves no room for [CLS] and [SEP]", max_length));
  Encoding e;
  e.ids.reserve(std::min<size_t>(max_length, text.size() / 3 + 8));
  e.ids.push_back(impl_->cls);
  // Pieces are produced word by word; stop once the budget is reached, then cut.
  impl_->pieces(text, e.ids, max_length - 1);
  if (e.ids.size() > max_length - 1) e.ids.resize(max_length - 1);
  e.ids.push_back(impl_->sep);
  e.attention_mask.assign(e.ids.size(), 1);
  return e;
}

BatchEncoding WordPieceTokenizer::encode_batch(const std::vector<std::string>& texts,
                                               size_t max_length, bool pad_to_longest) const {
  std::vector<Encoding> encs;
  encs.reserve(texts.size());
  size_t longest = 0;
  for (const auto& t : texts) {
    encs.push_back(encode(t, max_length));
    longest = std::max(longest, encs.back().ids.size());
  }
  BatchEncoding b;
  b.batch = texts.size();
  b.seq_len = pad_to_longest ? longest : max_length;
  b.ids.assign(b.batch * b.seq_len, impl_->pad);
  b.attention_mask.assign(b.batch * b.seq_len, 0);
  for (size_t r = 0; r < encs.size(); ++r) {
    const auto& ids = encs[r].ids;
    for (size_t c = 0; c < ids.size(); ++c) {
      b.ids[r * b.seq_len + c] = ids[c];
      b.attention_mask[r * b.seq_len + c] = 1;
    }
  }
  return b;
}

std::vector<std::string> WordPieceTokenizer::tokenize(std::string_view text) const {
  std::vector<int32_t> ids;
  encode_pieces(text, ids);
  std::vector<std::string> out;
  out.reserve(ids.size());
  for (int32_t id : ids) out.push_back(impl_->tokens[static_cast<size_t>(id)]);
  return out;
}

int32_t WordPieceTokenizer::token_to_id(std::string_view token) const {
  return impl_->full.find(token.data(), token.size());
}

const std::string& WordPieceTokenizer::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= impl_->tokens.size())
    throw Error(Status::invalid_argument,
                fmt::format("WordPieceTokenizer::id_to_token: id {} outside [0, {})", id, impl_->tokens.size()));
  return impl_->tokens[static_cast<size_t>(id)];
}

size_t WordPieceTokenizer::vocab_size() const { return impl_->tokens.size(); }
int32_t WordPieceTokenizer::cls_id() const { return impl_->cls; }
int32_t WordPieceTokenizer::sep_id() const { return impl_->sep; }
int32_t WordPieceTokenizer::pad_id() const { return impl_->pad; }
int32_t WordPieceTokenizer::unk_id() const { return impl_->unk; }
const TokenizerOptions& WordPieceTokenizer::options() const { return impl_->opt; }

std::string WordPieceTokenizer::vocab_hash() const {
  uint64_t h = 0xCBF29CE484222325ull;
  auto mix = [&](unsigned char c) { h = (h ^ c) * 0x100000001B3ull; };
  for (const auto& t : impl_->tokens) {
    for (char c : t) mix(static_cast<unsigned char>(c));
    mix('\n');
  }
  return fmt::format("{:016x}", h);
}

}  // namespace routenlp

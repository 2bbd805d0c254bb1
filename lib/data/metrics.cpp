// Quality metrics: SQuAD exact match / token F1, accuracy, seqeval entity F1, rouge-score
// ROUGE-L. Definitions follow the reference implementations named in metrics.hpp.
#include "routenlp/data/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "common/utf8.hpp"
#include "routenlp/error.hpp"

namespace routenlp {

namespace {

// Simple lowercase mapping (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic, Kelvin and
// Angstrom signs). U+0130 is handled by the caller (it lowercases to two code points).
char32_t lower_cp(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if (c >= 0x100 && c <= 0x17F) {
    if (c == 0x178) return 0xFF;
    if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) return (c % 2 == 0) ? c + 1 : c;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c % 2 == 1) ? c + 1 : c;
    return c;
  }
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
  if (c == 0x386) return 0x3AC;
  if (c >= 0x388 && c <= 0x38A) return c + 37;
  if (c == 0x38C) return 0x3CC;
  if (c == 0x38E || c == 0x38F) return c + 63;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  if (c == 0x212A) return 'k';
  if (c == 0x212B) return 0xE5;
  return c;
}

std::u32string decode(const std::string& s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) out.push_back(detail::decode_utf8(s, i));
  return out;
}

std::string encode(const std::u32string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) detail::append_utf8(out, c);
  return out;
}

std::u32string lower(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c == 0x130) {  // LATIN CAPITAL LETTER I WITH DOT ABOVE -> "i" + COMBINING DOT ABOVE
      out.push_back('i');
      out.push_back(0x307);
    } else {
      out.push_back(lower_cp(c));
    }
  }
  return out;
}

// Python str.split() whitespace.
bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

// Python's string.punctuation.
bool is_ascii_punct(char32_t c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
         (c >= 0x7B && c <= 0x7E);
}

// Approximates Python's Unicode \w: ASCII letters, digits and '_', and non-ASCII code points
// other than the common punctuation / symbol blocks and whitespace.
bool is_word(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  if (is_space(c)) return false;
  if (c >= 0xA0 && c <= 0xBF)
    return c == 0xAA || c == 0xB2 || c == 0xB3 || c == 0xB5 || c == 0xB9 || c == 0xBA ||
           c >= 0xBC;
  if (c == 0xD7 || c == 0xF7) return false;
  if (c >= 0x2000 && c <= 0x2BFF) return false;
  if (c >= 0x3000 && c <= 0x303F) return false;
  if (c >= 0xFE30 && c <= 0xFE4F) return false;
  return true;
}

std::vector<std::u32string> split_ws(const std::u32string& s) {
  std::vector<std::u32string> out;
  std::u32string cur;
  for (char32_t c : s) {
    if (is_space(c)) {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

std::vector<std::string> squad_tokens(const std::string& s) {
  std::vector<std::string> out;
  std::string n = normalize_answer(s);
  size_t i = 0;
  while (i < n.size()) {
    size_t j = n.find(' ', i);
    if (j == std::string::npos) j = n.size();
    if (j > i) out.push_back(n.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

}  // namespace

std::string normalize_answer(const std::string& s) {
  // lower -> remove punctuation -> remove articles -> collapse whitespace (SQuAD v1.1/v2.0).
  std::u32string t = lower(decode(s));
  std::u32string np;
  np.reserve(t.size());
  for (char32_t c : t)
    if (!is_ascii_punct(c)) np.push_back(c);
  // re.sub(r'\b(a|an|the)\b', ' ', text)
  std::u32string na;
  na.reserve(np.size());
  size_t i = 0;
  const std::u32string arts[] = {U"the", U"an", U"a"};
  while (i < np.size()) {
    bool at_boundary = i == 0 || !is_word(np[i - 1]);
    bool replaced = false;
    if (at_boundary) {
      for (const auto& a : arts) {
        if (np.compare(i, a.size(), a) == 0) {
          size_t e = i + a.size();
          if (e == np.size() || !is_word(np[e])) {
            na.push_back(' ');
            i = e;
            replaced = true;
            break;
          }
        }
      }
    }
    if (!replaced) na.push_back(np[i++]);
  }
  std::u32string out;
  for (const auto& w : split_ws(na)) {
    if (!out.empty()) out.push_back(' ');
    out += w;
  }
  return encode(out);
}

double exact_match(const std::string& prediction, const std::string& gold) {
  return normalize_answer(prediction) == normalize_answer(gold) ? 1.0 : 0.0;
}

double exact_match(const std::string& prediction, const std::vector<std::string>& golds) {
  double best = 0.0;
  for (const auto& g : golds) best = std::max(best, exact_match(prediction, g));
  return best;
}

double accuracy(const std::vector<std::string>& predictions, const std::vector<std::string>& golds) {
  if (predictions.size() != golds.size())
    throw Error(Status::invalid_argument,
                fmt::format("accuracy: {} predictions but {} gold labels", predictions.size(),
                            golds.size()));
  if (golds.empty()) return 0.0;
  size_t ok = 0;
  for (size_t i = 0; i < golds.size(); ++i) ok += predictions[i] == golds[i];
  return static_cast<double>(ok) / static_cast<double>(golds.size());
}

double token_f1(const std::string& prediction, const std::string& gold) {
  auto p = squad_tokens(prediction);
  auto g = squad_tokens(gold);
  if (p.empty() || g.empty()) return p == g ? 1.0 : 0.0;
  std::map<std::string, long> count;
  for (const auto& t : g) ++count[t];
  long same = 0;
  for (const auto& t : p) {
    auto it = count.find(t);
    if (it != count.end() && it->second > 0) {
      --it->second;
      ++same;
    }
  }
  if (same == 0) return 0.0;
  double precision = static_cast<double>(same) / static_cast<double>(p.size());
  double recall = static_cast<double>(same) / static_cast<double>(g.size());
  return 2.0 * precision * recall / (precision + recall);
}

double token_f1(const std::string& prediction, const std::vector<std::string>& golds) {
  double best = 0.0;
  for (const auto& g : golds) best = std::max(best, token_f1(prediction, g));
  return best;
}

// seqeval.metrics.sequence_labeling.get_entities (prefix mode).
std::vector<EntitySpan> extract_entities(const std::vector<std::string>& tags) {
  std::vector<EntitySpan> chunks;
  char prev_tag = 'O';
  std::string prev_type;
  size_t begin = 0;
  auto split = [](const std::string& chunk, char& tag, std::string& type) {
    if (chunk.empty()) {
      tag = 'O';
      type = "_";
      return;
    }
    tag = chunk[0];
    std::string rest = chunk.substr(1);
    auto dash = rest.find('-');
    type = dash == std::string::npos ? rest : rest.substr(dash + 1);
    if (type.empty()) type = "_";
  };
  for (size_t i = 0; i <= tags.size(); ++i) {
    char tag;
    std::string type;
    split(i < tags.size() ? tags[i] : std::string("O"), tag, type);
    bool end = false;
    if (prev_tag == 'E' || prev_tag == 'S') end = true;
    if ((prev_tag == 'B' || prev_tag == 'I') && (tag == 'B' || tag == 'S' || tag == 'O')) end = true;
    if (prev_tag != 'O' && prev_tag != '.' && prev_type != type) end = true;
    if (end) chunks.push_back({prev_type, begin, i});
    bool start = false;
    if (tag == 'B' || tag == 'S') start = true;
    if ((prev_tag == 'E' || prev_tag == 'S' || prev_tag == 'O') && (tag == 'E' || tag == 'I'))
      start = true;
    if (tag != 'O' && tag != '.' && prev_type != type) start = true;
    if (start) begin = i;
    prev_tag = tag;
    prev_type = type;
  }
  return chunks;
}

EntityScores entity_scores(const std::vector<std::vector<std::string>>& predictions,
                           const std::vector<std::vector<std::string>>& golds) {
  if (predictions.size() != golds.size())
    throw Error(Status::invalid_argument,
                fmt::format("entity_f1: {} predicted sentences but {} gold sentences",
                            predictions.size(), golds.size()));
  EntityScores s;
  for (size_t k = 0; k < golds.size(); ++k) {
    if (predictions[k].size() != golds[k].size())
      throw Error(Status::invalid_argument,
                  fmt::format("entity_f1: sentence {} has {} predicted tags but {} gold tags", k,
                              predictions[k].size(), golds[k].size()));
    auto key = [](const EntitySpan& e) { return std::make_tuple(e.type, e.begin, e.end); };
    std::set<std::tuple<std::string, size_t, size_t>> p, g;
    for (const auto& e : extract_entities(predictions[k])) p.insert(key(e));
    for (const auto& e : extract_entities(golds[k])) g.insert(key(e));
    s.predicted += p.size();
    s.gold += g.size();
    for (const auto& e : p) s.correct += g.count(e);
  }
  s.precision = s.predicted ? static_cast<double>(s.correct) / static_cast<double>(s.predicted) : 0.0;
  s.recall = s.gold ? static_cast<double>(s.correct) / static_cast<double>(s.gold) : 0.0;
  s.f1 = s.precision + s.recall > 0.0 ? 2.0 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
  return s;
}

double entity_f1(const std::vector<std::vector<std::string>>& predictions,
                 const std::vector<std::vector<std::string>>& golds) {
  return entity_scores(predictions, golds).f1;
}

std::vector<std::string> rouge_tokenize(const std::string& text) {
  std::u32string t = lower(decode(text));
  std::vector<std::string> out;
  std::string cur;
  for (char32_t c : t) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      cur.push_back(static_cast<char>(c));
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

RougeScore rouge_l(const std::string& prediction, const std::string& reference) {
  auto p = rouge_tokenize(prediction);
  auto r = rouge_tokenize(reference);
  RougeScore s;
  if (p.empty() || r.empty()) return s;
  // LCS length with two rows of the DP table.
  std::vector<size_t> prev(p.size() + 1, 0), cur(p.size() + 1, 0);
  for (size_t i = 1; i <= r.size(); ++i) {
    for (size_t j = 1; j <= p.size(); ++j)
      cur[j] = r[i - 1] == p[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  double lcs = static_cast<double>(prev[p.size()]);
  s.precision = lcs / static_cast<double>(p.size());
  s.recall = lcs / static_cast<double>(r.size());
  s.fmeasure = s.precision + s.recall > 0.0
                   ? 2.0 * s.precision * s.recall / (s.precision + s.recall)
                   : 0.0;
  return s;
}

}  // namespace routenlp

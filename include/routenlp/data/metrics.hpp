// Task quality metrics that turn a tier's answer into outcomes.T.quality in [0,1]: exact match,
// accuracy, token F1 (SQuAD), entity F1 (seqeval) and ROUGE-L (rouge-score).
#pragma once

#include <string>
#include <vector>

#include "routenlp/export.h"

namespace routenlp {

// SQuAD answer normalisation: lowercase, drop ASCII punctuation, drop the articles a/an/the as
// whole words, collapse whitespace to single spaces. Lowercasing covers ASCII, Latin-1, Latin
// Extended-A, Greek and Cyrillic.
RN_API std::string normalize_answer(const std::string& s);

// 1 if the normalised strings are equal, else 0 (SQuAD exact match).
RN_API double exact_match(const std::string& prediction, const std::string& gold);
// Best exact match over several acceptable answers (0 when golds is empty).
RN_API double exact_match(const std::string& prediction, const std::vector<std::string>& golds);

// Share of positions where predictions[i] == golds[i] exactly (labels, letters, classes).
// Error(invalid_argument) when the sizes differ; 0 for empty input.
RN_API double accuracy(const std::vector<std::string>& predictions,
                       const std::vector<std::string>& golds);

// SQuAD token F1 over normalised whitespace tokens (multiset overlap). When either side has no
// tokens the score is 1 if both are empty, else 0.
RN_API double token_f1(const std::string& prediction, const std::string& gold);
// Best token F1 over several acceptable answers (0 when golds is empty).
RN_API double token_f1(const std::string& prediction, const std::vector<std::string>& golds);

// An entity span [begin, end) of a tag sequence with its type.
struct EntitySpan {
  std::string type;
  size_t begin = 0;
  size_t end = 0;  // exclusive
  bool operator==(const EntitySpan& o) const {
    return type == o.type && begin == o.begin && end == o.end;
  }
};

// Chunks of one tag sequence the way seqeval's default (conlleval) mode reads IOB2 tags:
// "B-X" starts a chunk, "I-X" continues a chunk of type X (and starts one after O or after a
// chunk of another type), "O" ends one; E-/S- (IOBES) are honoured too.
RN_API std::vector<EntitySpan> extract_entities(const std::vector<std::string>& tags);

struct EntityScores {
  double precision = 0.0;
  double recall = 0.0;
  double f1 = 0.0;
  size_t predicted = 0;  // entities predicted
  size_t gold = 0;       // entities in the reference
  size_t correct = 0;    // exact span + type matches
};

// Micro-averaged entity precision / recall / F1 over sentences (seqeval f1_score): an entity is
// correct only when its span and type both match. Sentences must have equal lengths
// (Error(invalid_argument) otherwise). With no predicted or no gold entities, P / R are 0.
RN_API EntityScores entity_scores(const std::vector<std::vector<std::string>>& predictions,
                                  const std::vector<std::vector<std::string>>& golds);
RN_API double entity_f1(const std::vector<std::vector<std::string>>& predictions,
                        const std::vector<std::vector<std::string>>& golds);

struct RougeScore {
  double precision = 0.0;
  double recall = 0.0;
  double fmeasure = 0.0;
};

// rouge-score's default tokenizer: lowercase, every character outside [a-z0-9] becomes a space,
// split on whitespace (no stemming).
RN_API std::vector<std::string> rouge_tokenize(const std::string& text);
// ROUGE-L (rouge-score `rougeL`): LCS of the token sequences; P = LCS / |prediction|,
// R = LCS / |reference|, F = 2PR / (P + R). All zero when either side has no tokens.
RN_API RougeScore rouge_l(const std::string& prediction, const std::string& reference);

}  // namespace routenlp

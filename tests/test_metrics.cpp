// Quality metrics against hand-computed values (the computation is in the comments).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "routenlp/error.hpp"
#include "routenlp/data/metrics.hpp"

using namespace routenlp;
using Tags = std::vector<std::string>;

TEST_CASE("SQuAD normalisation", "[metrics]") {
  // lower -> "the cat, sat on a mat!" -> no punctuation "the cat sat on a mat" -> articles become
  // spaces " cat sat on   mat" -> collapsed "cat sat on mat"
  CHECK(normalize_answer("The Cat, sat on A mat!") == "cat sat on mat");
  // "an" only as a whole word: "answer" and "theory" keep their letters
  CHECK(normalize_answer("An answer, the theory") == "answer theory");
  // punctuation is removed before articles: "the-end" -> "theend" (not an article)
  CHECK(normalize_answer("the-end") == "theend");
  CHECK(normalize_answer("  \t\n ") == "");
  // Latin-1 / Greek lowercasing; non-ASCII punctuation (an em dash) is kept by SQuAD
  CHECK(normalize_answer("\xC3\x89T\xC3\x89 \xCE\xA3") == "\xC3\xA9t\xC3\xA9 \xCF\x83");
  // "a\u2014the": the em dash is not a word character, so both articles go -> " \u2014 " -> "\u2014"
  CHECK(normalize_answer("a\xE2\x80\x94the") == "\xE2\x80\x94");
}

TEST_CASE("exact match and accuracy", "[metrics]") {
  CHECK(exact_match("The answer is 42.", "answer is 42") == 1.0);
  CHECK(exact_match("42", "forty-two") == 0.0);
  CHECK(exact_match("Paris", std::vector<std::string>{"London", "paris."}) == 1.0);
  CHECK(exact_match("Paris", std::vector<std::string>{}) == 0.0);
  // 3 of 4 equal -> 0.75 (exact string equality, case-sensitive)
  CHECK(accuracy({"A", "B", "C", "d"}, {"A", "B", "C", "D"}) == 0.75);
  CHECK(accuracy({}, {}) == 0.0);
  CHECK_THROWS_AS(accuracy({"A"}, {"A", "B"}), Error);
}

TEST_CASE("token F1 (SQuAD)", "[metrics]") {
  // pred tokens [cat, sat, on, mat] (the/a dropped), gold [cat, sat] -> common 2
  // P = 2/4, R = 2/2, F1 = 2 * 0.5 * 1 / 1.5 = 0.6667
  CHECK(token_f1("the cat sat on a mat", "cat sat") == Approx(2.0 / 3.0));
  // multiset overlap: pred [to, be, or, not, to, be], gold [to, be]
  // common = min counts: to 1, be 1 -> 2; P = 2/6, R = 2/2, F1 = 2*(1/3)*1/(4/3) = 0.5
  CHECK(token_f1("to be or not to be", "to be") == Approx(0.5));
  // no overlap -> 0
  CHECK(token_f1("blue", "red") == 0.0);
  // both empty after normalisation ("the" -> "") -> 1; one empty -> 0
  CHECK(token_f1("the", "a") == 1.0);
  CHECK(token_f1("", "cat") == 0.0);
  // best over golds: "cat" vs ["dog", "cat"] -> 1
  CHECK(token_f1("cat", std::vector<std::string>{"dog", "cat"}) == 1.0);
}

TEST_CASE("entity extraction follows seqeval's default chunking", "[metrics]") {
  // B-PER I-PER O B-LOC -> PER[0,2), LOC[3,4)
  auto e = extract_entities({"B-PER", "I-PER", "O", "B-LOC"});
  REQUIRE(e.size() == 2);
  CHECK(e[0] == EntitySpan{"PER", 0, 2});
  CHECK(e[1] == EntitySpan{"LOC", 3, 4});
  // I- after O starts a chunk (conlleval): O I-ORG I-ORG -> ORG[1,3)
  e = extract_entities({"O", "I-ORG", "I-ORG"});
  REQUIRE(e.size() == 1);
  CHECK(e[0] == EntitySpan{"ORG", 1, 3});
  // a type change inside I- splits: B-PER I-LOC -> PER[0,1), LOC[1,2)
  e = extract_entities({"B-PER", "I-LOC"});
  REQUIRE(e.size() == 2);
  CHECK(e[1] == EntitySpan{"LOC", 1, 2});
  // B B of the same type -> two chunks
  CHECK(extract_entities({"B-X", "B-X"}).size() == 2);
  CHECK(extract_entities({"O", "O"}).empty());
}

TEST_CASE("entity F1 (seqeval micro)", "[metrics]") {
  // Sentence 1 gold: PER[0,2) LOC[3,4); pred: PER[0,2) LOC[3,4)         -> 2 correct
  // Sentence 2 gold: ORG[0,3);          pred: ORG[0,2) (span too short)  -> 0 correct
  //                                     pred also MISC[3,4) (spurious)
  // predicted 4, gold 3, correct 2 -> P = 2/4 = 0.5, R = 2/3, F1 = 2*0.5*0.6667/1.1667 = 0.5714
  std::vector<Tags> gold = {{"B-PER", "I-PER", "O", "B-LOC"}, {"B-ORG", "I-ORG", "I-ORG", "O"}};
  std::vector<Tags> pred = {{"B-PER", "I-PER", "O", "B-LOC"}, {"B-ORG", "I-ORG", "O", "B-MISC"}};
  EntityScores s = entity_scores(pred, gold);
  CHECK(s.predicted == 4);
  CHECK(s.gold == 3);
  CHECK(s.correct == 2);
  CHECK(s.precision == Approx(0.5));
  CHECK(s.recall == Approx(2.0 / 3.0));
  CHECK(s.f1 == Approx(4.0 / 7.0));
  CHECK(entity_f1(pred, gold) == Approx(4.0 / 7.0));
  // type mismatch on the same span counts as wrong: P = R = F = 0
  CHECK(entity_f1({{"B-PER"}}, {{"B-LOC"}}) == 0.0);
  // no entities anywhere -> 0 (seqeval returns 0 with a warning)
  CHECK(entity_f1({{"O"}}, {{"O"}}) == 0.0);
  CHECK_THROWS_AS(entity_f1({{"O"}}, {{"O", "O"}}), Error);
  CHECK_THROWS_AS(entity_f1({{"O"}}, {}), Error);
}

TEST_CASE("ROUGE-L (rouge-score)", "[metrics]") {
  // tokenize: lowercase, non-[a-z0-9] -> space: "The cat's hat!" -> [the, cat, s, hat]
  CHECK(rouge_tokenize("The cat's hat!") == std::vector<std::string>{"the", "cat", "s", "hat"});
  // non-ASCII letters split tokens: "café au lait" -> [caf, au, lait]
  CHECK(rouge_tokenize("caf\xC3\xA9 au lait") == std::vector<std::string>{"caf", "au", "lait"});
  // pred [the, cat, sat, on, the, mat] (6), ref [the, cat, was, on, the, mat] (6)
  // LCS = the cat on the mat = 5 -> P = R = F = 5/6
  RougeScore r = rouge_l("the cat sat on the mat", "The cat was on the mat.");
  CHECK(r.precision == Approx(5.0 / 6.0));
  CHECK(r.recall == Approx(5.0 / 6.0));
  CHECK(r.fmeasure == Approx(5.0 / 6.0));
  // pred [police, kill, the, gunman] (4), ref [police, killed, the, gunman] (4):
  // LCS = police the gunman = 3 -> P = R = F = 0.75 (no stemming: kill != killed)
  CHECK(rouge_l("police kill the gunman", "police killed the gunman").fmeasure == Approx(0.75));
  // pred [a, b] (2), ref [b, a, c] (3): LCS 1 -> P = 1/2, R = 1/3, F = 2*(1/6)/(5/6) = 0.4
  r = rouge_l("a b", "b a c");
  CHECK(r.precision == Approx(0.5));
  CHECK(r.recall == Approx(1.0 / 3.0));
  CHECK(r.fmeasure == Approx(0.4));
  // either side without tokens -> all zero
  CHECK(rouge_l("!!!", "a").fmeasure == 0.0);
  CHECK(rouge_l("a", "").recall == 0.0);
}

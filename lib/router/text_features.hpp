// The router baselines' TF-IDF features: the library's one TF-IDF (lib/text/tfidf.hpp) with the
// public TfidfOptions (no stop words). Internal header.
#pragma once

#include "routenlp/router/baselines.hpp"
#include "text/tfidf.hpp"

namespace routenlp::detail {

inline TfidfConfig tfidf_config(const TfidfOptions& o) {
  TfidfConfig c;
  c.max_features = o.max_features;
  c.min_df = o.min_df;
  c.bigrams = o.bigrams;
  return c;
}

inline TfidfOptions tfidf_options(const TfidfConfig& c) {
  TfidfOptions o;
  o.max_features = c.max_features;
  o.min_df = c.min_df;
  o.bigrams = c.bigrams;
  return o;
}

}  // namespace routenlp::detail

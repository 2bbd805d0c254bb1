// TfidfEmbedder: the co-optimization loop's fallback embedding and the source of each failure
// cluster's distinguishing terms, over the library's one TF-IDF (lib/text/tfidf.hpp).
#include "routenlp/coopt/failure_analyzer.hpp"
#include "routenlp/error.hpp"
#include "text/tfidf.hpp"

namespace routenlp {

struct TfidfEmbedder::Model {
  detail::TfidfVectorizer vectorizer;
};

TfidfEmbedder::TfidfEmbedder() : TfidfEmbedder(Options{}) {}
TfidfEmbedder::TfidfEmbedder(Options options) : options_(options) {}

void TfidfEmbedder::fit(const std::vector<std::string>& corpus) {
  if (corpus.empty()) throw Error(Status::invalid_argument, "TfidfEmbedder::fit: empty corpus");
  detail::TfidfConfig config;
  config.max_features = options_.max_features;
  config.min_df = options_.min_df;
  config.bigrams = false;
  config.drop_stopwords = options_.drop_stopwords;
  model_ = std::make_shared<const Model>(Model{detail::TfidfVectorizer(corpus, config)});
  vocab_ = model_->vectorizer.vocabulary();
}

Embeddings TfidfEmbedder::transform(const std::vector<std::string>& texts) const {
  if (!model_ || vocab_.empty())
    throw Error(Status::invalid_argument, "TfidfEmbedder::transform: not fitted (empty vocabulary)");
  return model_->vectorizer.transform_dense(texts);
}

EmbedFunction TfidfEmbedder::as_function() const {
  TfidfEmbedder copy = *this;
  return [copy](const std::vector<std::string>& texts) { return copy.transform(texts); };
}

}  // namespace routenlp

/**
 * @file rn_tokenizer.h
 * @brief C ABI of the WordPiece tokenizer (HuggingFace BertTokenizer, uncased semantics).
 *        Conventions: routenlp.h. Details: docs/tokenizer.md.
 */
#ifndef ROUTENLP_RN_TOKENIZER_H
#define ROUTENLP_RN_TOKENIZER_H

#include "routenlp/routenlp.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An immutable tokenizer; every function taking a const handle is thread-safe. */
typedef struct rn_tokenizer rn_tokenizer;

/**
 * Load a BERT vocab.txt with the bert-base-uncased normalisation (lower-case, strip accents,
 * CJK characters as words, words over 100 characters become [UNK]).
 * @param out receives the handle; free with rn_tokenizer_destroy().
 * @param path the vocab.txt, or NULL for the bundled bert-base-uncased vocabulary.
 * @return RN_ERR_IO / RN_ERR_PARSE naming the file on failure.
 */
RN_API rn_status rn_tokenizer_create_from_vocab(rn_tokenizer** out, const char* path);

/** Load a HuggingFace tokenizer.json whose model is WordPiece (BertNormalizer options). */
RN_API rn_status rn_tokenizer_create_from_json(rn_tokenizer** out, const char* path);

/** Release a tokenizer; NULL is a no-op. */
RN_API void rn_tokenizer_destroy(rn_tokenizer* tok);

/**
 * Encode text as [CLS] word-pieces... [SEP], cut to at most max_length ids (>= 2; pass
 * SIZE_MAX for no limit). Invalid UTF-8 is replaced, never an error.
 * @param out_ids receives the ids; may be NULL when capacity is 0.
 * @param capacity room in out_ids, in ids.
 * @param out_len receives the number of ids; if it exceeds capacity, nothing is written to
 *        out_ids and RN_ERR_INVALID_ARGUMENT is returned (call again with a larger buffer).
 * @param text UTF-8 bytes, text_len of them (need not be NUL-terminated; NULL if text_len 0).
 * Changed in 0.2: outputs first (0.1: tok, text, text_len, max_length, out_ids, capacity,
 * out_len).
 */
RN_API rn_status rn_tokenizer_encode(int32_t* out_ids, size_t capacity, size_t* out_len,
                                     const rn_tokenizer* tok, const char* text, size_t text_len,
                                     size_t max_length);

/** @param out receives the number of tokens in the vocabulary. Changed in 0.2: out first. */
RN_API rn_status rn_tokenizer_vocab_size(size_t* out, const rn_tokenizer* tok);

/** @param out receives the id of a NUL-terminated token, or -1 if it is not in the vocabulary.
 *  Changed in 0.2: out first. */
RN_API rn_status rn_tokenizer_token_to_id(int32_t* out, const rn_tokenizer* tok,
                                          const char* token);

/**
 * @param out receives the path of the bundled vocabulary ($ROUTENLP_DATA_DIR/vocab/... when that
 *        variable is set). Borrowed: valid until this thread's next rn_ call.
 */
RN_API rn_status rn_tokenizer_default_vocab_path(const char** out);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ROUTENLP_RN_TOKENIZER_H */

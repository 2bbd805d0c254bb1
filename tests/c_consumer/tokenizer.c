/* C99 checks of rn_tokenizer.h (built -std=c99 -pedantic -Werror). */
#include <routenlp/routenlp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifndef RN_C_TEST_VOCAB
#error "RN_C_TEST_VOCAB must be defined"
#endif

#define TCHECK(cond)                                                              \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);    \
      failures++;                                                                 \
    }                                                                             \
  } while (0)

int c_consumer_tokenizer(void) {
  int failures = 0;
  rn_tokenizer* tok = NULL;
  int32_t ids[16];
  size_t n = 0, vocab = 0;
  int32_t id = 0;
  const char* path = NULL;
  const char text[] = "hello world";
  const char bad[] = "hel\xff" "lo";

  TCHECK(rn_tokenizer_create_from_vocab(NULL, RN_C_TEST_VOCAB) == RN_ERR_INVALID_ARGUMENT);
  TCHECK(rn_tokenizer_create_from_vocab(&tok, "/nonexistent/vocab.txt") == RN_ERR_IO);
  TCHECK(tok == NULL);
  TCHECK(strstr(rn_last_error(), "/nonexistent/vocab.txt") != NULL);
  TCHECK(rn_tokenizer_create_from_vocab(&tok, RN_C_TEST_VOCAB) == RN_OK);
  if (tok == NULL) return failures + 1;

  TCHECK(rn_tokenizer_vocab_size(&vocab, tok) == RN_OK && vocab == 30522);
  TCHECK(rn_tokenizer_token_to_id(&id, tok, "hello") == RN_OK && id == 7592);
  TCHECK(rn_tokenizer_token_to_id(&id, tok, "not-a-token") == RN_OK && id == -1);

  TCHECK(rn_tokenizer_encode(ids, 16, &n, tok, text, strlen(text), 512) == RN_OK);
  TCHECK(n == 4);
  TCHECK(ids[0] == 101 && ids[1] == 7592 && ids[2] == 2088 && ids[3] == 102);
  /* Too small a buffer: the needed length comes back, the buffer is untouched. */
  ids[0] = -7;
  TCHECK(rn_tokenizer_encode(ids, 2, &n, tok, text, strlen(text), 512) == RN_ERR_INVALID_ARGUMENT);
  TCHECK(n == 4 && ids[0] == -7);
  TCHECK(rn_tokenizer_encode(NULL, 0, &n, tok, text, strlen(text), 512) == RN_ERR_INVALID_ARGUMENT);
  TCHECK(n == 4);
  /* Truncation keeps [SEP]. */
  TCHECK(rn_tokenizer_encode(ids, 16, &n, tok, text, strlen(text), 3) == RN_OK);
  TCHECK(n == 3 && ids[0] == 101 && ids[1] == 7592 && ids[2] == 102);
  /* Not NUL-terminated: only text_len bytes are read. */
  TCHECK(rn_tokenizer_encode(ids, 16, &n, tok, text, 5, 512) == RN_OK);
  TCHECK(n == 3 && ids[1] == 7592);
  /* Invalid UTF-8 is replaced, not an error. */
  TCHECK(rn_tokenizer_encode(ids, 16, &n, tok, bad, strlen(bad), 512) == RN_OK);
  TCHECK(n == 3 && ids[1] == 7592);
  TCHECK(rn_tokenizer_encode(ids, 16, &n, tok, NULL, 0, 512) == RN_OK && n == 2);
  /* Misuse. */
  TCHECK(rn_tokenizer_encode(ids, 16, &n, NULL, text, 5, 512) == RN_ERR_INVALID_ARGUMENT);
  TCHECK(rn_tokenizer_encode(ids, 16, &n, tok, NULL, 5, 512) == RN_ERR_INVALID_ARGUMENT);
  TCHECK(rn_tokenizer_encode(ids, 16, &n, tok, text, 5, 1) == RN_ERR_INVALID_ARGUMENT);
  TCHECK(rn_tokenizer_encode(NULL, 16, &n, tok, text, 5, 512) == RN_ERR_INVALID_ARGUMENT);
  TCHECK(rn_tokenizer_encode(ids, 16, NULL, tok, text, 5, 512) == RN_ERR_INVALID_ARGUMENT);

  TCHECK(rn_tokenizer_default_vocab_path(&path) == RN_OK);
  TCHECK(path != NULL && strstr(path, "bert-base-uncased-vocab.txt") != NULL);
  rn_tokenizer_destroy(tok);
  rn_tokenizer_destroy(NULL);
  return failures;
}

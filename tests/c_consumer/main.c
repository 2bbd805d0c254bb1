/* A C99 program using only <routenlp/routenlp.h>; built with -std=c99 -pedantic -Werror. */
#include <routenlp/routenlp.h>
#include <stdio.h>
#include <string.h>

static int failures = 0;
#define CHECK(cond)                                                      \
  do {                                                                   \
    if (!(cond)) {                                                       \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                        \
    }                                                                    \
  } while (0)

int main(void) {
  const char* info = NULL;
  CHECK(rn_version_number() == RN_VERSION_NUMBER);
  CHECK(strlen(rn_version_string()) >= 5);
  CHECK(strcmp(rn_status_name(RN_ERR_PARSE), "RN_ERR_PARSE") == 0);
  CHECK(rn_runtime_info_json(NULL) == RN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(rn_last_error(), "out") != NULL);
  CHECK(rn_runtime_info_json(&info) == RN_OK);
  CHECK(info != NULL && info[0] == '{');
  CHECK(rn_last_error()[0] == '\0');
  /* RN_C_CONSUMER_CHECKS: component checks are appended in their own functions. */
  {
    extern int c_consumer_coopt(void);
    failures += c_consumer_coopt();
  }
  {
    extern int c_consumer_tokenizer(void);
    failures += c_consumer_tokenizer();
  }
  {
    extern int c_consumer_cascade(void);
    failures += c_consumer_cascade();
  }
  {
    extern int c_consumer_pipeline(void);
    failures += c_consumer_pipeline();
  }
  if (failures == 0) printf("c_consumer: all checks passed\n");
  return failures == 0 ? 0 : 1;
}

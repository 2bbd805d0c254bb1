/* routenlp symbol export macro, shared by the C ABI and the C++ API.
 * The library is built with hidden visibility; only RN_API symbols are exported. */
#ifndef ROUTENLP_EXPORT_H
#define ROUTENLP_EXPORT_H

#if defined(_WIN32)
#  if defined(ROUTENLP_BUILDING)
#    define RN_API __declspec(dllexport)
#  else
#    define RN_API __declspec(dllimport)
#  endif
#else
#  define RN_API __attribute__((visibility("default")))
#endif

#endif /* ROUTENLP_EXPORT_H */

# Sanitizer and fuzzing switches. Applied to every target in the tree (docs/testing.md).
#   ROUTENLP_SANITIZE_ADDRESS   AddressSanitizer + UndefinedBehaviorSanitizer
#   ROUTENLP_SANITIZE_UNDEFINED UndefinedBehaviorSanitizer alone (may be combined with THREAD)
#   ROUTENLP_SANITIZE_THREAD    ThreadSanitizer
#   ROUTENLP_FUZZ               libFuzzer targets in fuzz/ (clang only): every object gets
#                               coverage instrumentation (-fsanitize=fuzzer-no-link); the
#                               fuzz executables link libFuzzer's main.
# Every UBSan check is fatal (-fno-sanitize-recover=all): a report fails the test that hit it
# instead of scrolling past in its log.
if(ROUTENLP_SANITIZE_ADDRESS AND ROUTENLP_SANITIZE_THREAD)
  message(FATAL_ERROR "ROUTENLP_SANITIZE_ADDRESS and ROUTENLP_SANITIZE_THREAD are exclusive")
endif()

set(_rn_sanitizers "")
if(ROUTENLP_SANITIZE_ADDRESS)
  list(APPEND _rn_sanitizers address undefined)
endif()
if(ROUTENLP_SANITIZE_UNDEFINED AND NOT ROUTENLP_SANITIZE_ADDRESS)
  list(APPEND _rn_sanitizers undefined)
endif()
if(ROUTENLP_SANITIZE_THREAD)
  list(APPEND _rn_sanitizers thread)
endif()

if(_rn_sanitizers)
  list(JOIN _rn_sanitizers "," _rn_san)
  add_compile_options(-fsanitize=${_rn_san} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${_rn_san})
  if("undefined" IN_LIST _rn_sanitizers)
    add_compile_options(-fno-sanitize-recover=all)
    add_link_options(-fno-sanitize-recover=all)
  endif()
  message(STATUS "routenlp: sanitizers ${_rn_san}")
endif()

if(ROUTENLP_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "ROUTENLP_FUZZ needs clang (libFuzzer): configure with "
      "-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ (scripts/run-fuzz.sh does)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

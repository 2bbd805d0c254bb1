// Common layer: errors, version, UTF-8, atomic writes.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/atomic_file.hpp"
#include "common/text_io.hpp"
#include "common/utf8.hpp"
#include "encoder/cpu_kernels.hpp"
#include "routenlp/routenlp.h"
#include "routenlp/routenlp.hpp"

using namespace routenlp;

TEST_CASE("version macros match the library", "[common]") {
  auto v = library_version();
  CHECK(v.major == RN_VERSION_MAJOR);
  CHECK(v.minor == RN_VERSION_MINOR);
  CHECK(v.patch == RN_VERSION_PATCH);
  CHECK(rn_version_number() == RN_VERSION_NUMBER);
}

TEST_CASE("status codes agree between C and C++", "[common]") {
  CHECK(static_cast<int>(Status::invalid_argument) == RN_ERR_INVALID_ARGUMENT);
  CHECK(static_cast<int>(Status::callback) == RN_ERR_CALLBACK);
  CHECK(static_cast<int>(Status::budget) == RN_ERR_BUDGET);
  CHECK(std::string(status_name(Status::parse)) == "parse");
}

TEST_CASE("UTF-8 validation finds the first bad byte", "[common][utf8]") {
  using detail::find_invalid_utf8;
  CHECK(find_invalid_utf8("hello") == std::string_view::npos);
  CHECK(find_invalid_utf8("caf\xC3\xA9") == std::string_view::npos);
  CHECK(find_invalid_utf8("ab\xFFzz") == 2);
  CHECK(find_invalid_utf8("\xC0\xAF") == 0);          // overlong '/'
  CHECK(find_invalid_utf8("x\xED\xA0\x80") == 1);     // surrogate
  CHECK(find_invalid_utf8("\xF4\x90\x80\x80") == 0);  // > U+10FFFF
  CHECK(find_invalid_utf8("\xE2\x82") == 0);          // truncated
  CHECK(detail::sanitize_utf8("a\xFF" "b") == "a\xEF\xBF\xBD" "b");
}

TEST_CASE("atomic writer leaves no partial file on failure", "[common][io]") {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(RN_BINARY_DIR) / "atomic_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto target = (dir / "out.txt").string();
  {
    detail::AtomicFileWriter w(target);
    w.stream() << "partial";
    // no commit: destructor must remove the temporary
  }
  CHECK_FALSE(fs::exists(target));
  CHECK(fs::is_empty(dir));
  detail::write_file_atomic(target, "done\n");
  CHECK(detail::read_file(target) == "done\n");
  // A directory that does not exist is an io error naming the path.
  try {
    detail::write_file_atomic((dir / "nope" / "x.txt").string(), "x");
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.code() == Status::io);
    CHECK(std::string(e.what()).find("x.txt") != std::string::npos);
  }
}

TEST_CASE("runtime info reports the BLAS library", "[common][runtime]") {
  auto info = runtime_info();
  if (info.torch_available) {
    CHECK_FALSE(info.blas_library.empty());
    // CI installs libopenblas0-openmp; the reference BLAS would be a ~20x slowdown.
    CHECK_FALSE(info.blas_is_reference);
  }
  // The encoder's CPU kernels: the active choice, and only an ISA this CPU really supports.
  CHECK(info.cpu_kernels == detail::cpu_isa_name(detail::cpu_isa_active()));
  if (info.cpu_kernels == "avx512") CHECK(detail::cpu_isa_supported(detail::CpuIsa::avx512));
  else if (info.cpu_kernels == "avx2") CHECK(detail::cpu_isa_supported(detail::CpuIsa::avx2));
  else CHECK(info.cpu_kernels == "none");
}

// The encoder kernels' thread pool (encoder/cpu_pool.hpp): every chunk runs exactly once, slots
// stay below the thread count, concurrent callers and fork() are safe, affinity sets the default.
#include <catch2/catch.hpp>

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "encoder/cpu_pool.hpp"

using namespace routenlp::detail;

namespace {

// Runs one job and returns how often each chunk ran; records the largest slot seen.
std::vector<int> run_counts(int64_t chunks, int threads, int* max_slot) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(chunks));
  std::atomic<int> top{-1};
  cpu_pool_for(chunks, threads, [&](int64_t c, int slot) {
    hits[static_cast<size_t>(c)].fetch_add(1);
    int seen = top.load();
    while (slot > seen && !top.compare_exchange_weak(seen, slot)) {
    }
  });
  if (max_slot) *max_slot = top.load();
  std::vector<int> out;
  for (auto& h : hits) out.push_back(h.load());
  return out;
}

}  // namespace

TEST_CASE("cpu_pool: every chunk runs exactly once, slots below the thread count", "[cpu_pool]") {
  for (int threads : {1, 2, 3, 8, 16, 40}) {
    for (int64_t chunks : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{7}, int64_t{64}, int64_t{1000}}) {
      INFO("threads " << threads << " chunks " << chunks);
      int max_slot = -1;
      auto counts = run_counts(chunks, threads, &max_slot);
      int wrong = 0;
      for (int c : counts) wrong += c != 1;
      CHECK(wrong == 0);
      CHECK(max_slot < std::max(1, std::min(threads, kCpuPoolMaxThreads)));
      if (chunks == 0) CHECK(max_slot == -1);  // the body never ran
    }
  }
  CHECK(cpu_pool_default_threads() >= 1);
  CHECK(cpu_pool_default_threads() <= kCpuPoolMaxThreads);
}

TEST_CASE("cpu_pool: back-to-back jobs and concurrent callers all complete", "[cpu_pool]") {
  // Many short jobs in a row exercise the spin / park hand-over between jobs.
  for (int j = 0; j < 2000; ++j) {
    auto counts = run_counts(1 + j % 13, 2 + j % 3, nullptr);
    int wrong = 0;
    for (int c : counts) wrong += c != 1;
    REQUIRE(wrong == 0);
  }
  // Four callers at once: one gets the pool per job, the others run on their own threads.
  std::atomic<int> bad{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&, t] {
      for (int j = 0; j < 300; ++j) {
        auto counts = run_counts(5 + (j + t) % 40, 4, nullptr);
        for (int c : counts) bad += c != 1;
      }
    });
  for (auto& c : callers) c.join();
  CHECK(bad.load() == 0);
}

TEST_CASE("cpu_pool: a forked child gets a working pool", "[cpu_pool]") {
  (void)run_counts(16, 4, nullptr);  // the parent's pool exists before the fork
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Child: the parent's workers do not exist here; a job must still complete (not hang).
    auto counts = run_counts(100, 4, nullptr);
    int wrong = 0;
    for (int c : counts) wrong += c != 1;
    ::_exit(wrong == 0 ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("cpu_pool: the default thread count follows the CPU affinity mask", "[cpu_pool]") {
  // In a child, so the restriction does not leak into other tests.
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    if (::sched_setaffinity(0, sizeof(one), &one) != 0) ::_exit(2);
    ::_exit(cpu_pool_default_threads() == 1 ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

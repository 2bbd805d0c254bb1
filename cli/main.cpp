// `routenlp` command-line tool. Exit codes: 0 ok, 1 runtime error, 2 usage error.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "commands.hpp"
#include "routenlp/error.hpp"
#include "routenlp/version.hpp"

int main(int argc, char** argv) {
  // libgomp reads OMP_WAIT_POLICY once, before main; measured on 2 cores the default busy-wait
  // made libtorch ~2x slower with 2 threads. Re-exec once with PASSIVE unless the user chose.
  if (std::getenv("OMP_WAIT_POLICY") == nullptr && std::getenv("ROUTENLP_NO_REEXEC") == nullptr) {
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    ::setenv("ROUTENLP_NO_REEXEC", "1", 1);
    ::execv("/proc/self/exe", argv);  // only returns on failure: carry on as we are
  }

  CLI::App app{"routenlp — cost-aware routing and conformal cascading across a model portfolio"};
  app.set_version_flag("--version", routenlp::library_version_string());
  app.require_subcommand(1);
  routenlp::cli::Action action;

  routenlp::cli::register_doctor(app, action);
  routenlp::cli::register_fit(app, action);
  routenlp::cli::register_calibrate(app, action);
  routenlp::cli::register_serve(app, action);
  routenlp::cli::register_eval(app, action);
  routenlp::cli::register_bench(app, action);
  routenlp::cli::register_coopt(app, action);
  routenlp::cli::register_train_tier(app, action);
  routenlp::cli::register_train(app, action);
  routenlp::cli::register_route(app, action);
  routenlp::cli::register_import(app, action);
  routenlp::cli::register_validate(app, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  try {
    return action ? action() : 2;
  } catch (const routenlp::Error& e) {
    std::fprintf(stderr, "routenlp: error (%s): %s\n", routenlp::status_name(e.code()), e.what());
    return e.code() == routenlp::Status::invalid_argument ? 2 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "routenlp: error: %s\n", e.what());
    return 1;
  }
}

// `routenlp serve`: HTTP route server (POST /route, /route/batch, /v1/chat/completions,
// /feedback; GET /health, /metrics). Stops gracefully on SIGINT/SIGTERM: in-flight requests
// finish first. Docs: docs/serving.md.
#include <csignal>
#include <cstdio>
#include <pthread.h>
#include <thread>

#include "commands.hpp"
#include "routenlp/error.hpp"
#include "routenlp/serve/serve.hpp"

namespace routenlp::cli {

void register_serve(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("serve", "Serve routing and cascades over HTTP (docs/serving.md)");
  static std::string config;
  static std::string pipeline;
  static std::string host;
  static int port = -1;
  static int threads = 0;
  cmd->add_option("config", config, "Serve config YAML (pipeline or portfolio + router, tiers, server)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--pipeline", pipeline,
                  "Pipeline artifact directory (routenlp fit --out); overrides the config's");
  cmd->add_option("--host", host, "Listen address (overrides server.host)");
  cmd->add_option("--port", port, "Listen port; 0 = ephemeral (overrides server.port)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--threads", threads, "Worker threads (overrides server.threads)")
      ->check(CLI::Range(1, 1024));
  cmd->callback([&action] {
    action = [] {
      // Block the stop signals in every thread; one thread waits for them with sigwait().
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGINT);
      sigaddset(&set, SIGTERM);
      pthread_sigmask(SIG_BLOCK, &set, nullptr);

      if (config.empty() && pipeline.empty())
        throw Error(Status::invalid_argument, "serve: give a serve config, --pipeline DIR, or both");
      ServeConfig cfg;
      if (!config.empty()) {
        cfg = load_serve_config(config, pipeline);
      } else {
        cfg.setup.pipeline = std::make_shared<const Pipeline>(Pipeline::load(pipeline));  // routing only
      }
      if (!host.empty()) cfg.options.host = host;
      if (port >= 0) cfg.options.port = port;
      if (threads > 0) cfg.options.threads = static_cast<size_t>(threads);
      RouteServer server(std::move(cfg.setup), cfg.options);
      int bound = server.bind();
      std::printf("routenlp serve: listening on http://%s:%d (%zu threads)\n",
                  cfg.options.host.c_str(), bound, cfg.options.threads);
      std::fflush(stdout);

      std::thread waiter([&server, set] {
        int sig = 0;
        sigwait(&set, &sig);
        std::fprintf(stderr, "routenlp serve: %s received, finishing in-flight requests\n",
                     sig == SIGINT ? "SIGINT" : "SIGTERM");
        server.stop();
      });
      server.run();
      // run() returned: either a signal stopped it, or listening failed; wake the waiter.
      pthread_kill(waiter.native_handle(), SIGTERM);
      waiter.join();
      std::fprintf(stderr, "routenlp serve: stopped\n");
      return 0;
    };
  });
}

}  // namespace routenlp::cli

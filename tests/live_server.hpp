// A RouteServer on an ephemeral loopback port for a test's lifetime (shared by the serve and
// pipeline tests).
#pragma once

#include <httplib.h>

#include <memory>
#include <thread>

#include "routenlp/serve/serve.hpp"

namespace rn_test {

struct LiveServer {
  std::unique_ptr<routenlp::RouteServer> server;
  std::thread thread;
  int port = 0;
  LiveServer(routenlp::ServeSetup setup, routenlp::ServeOptions options) {
    options.host = "127.0.0.1";
    options.port = 0;
    server = std::make_unique<routenlp::RouteServer>(std::move(setup), options);
    port = server->bind();
    thread = std::thread([this] { server->run(); });
  }
  ~LiveServer() { stop(); }
  LiveServer(const LiveServer&) = delete;
  LiveServer& operator=(const LiveServer&) = delete;
  void stop() {
    if (thread.joinable()) {
      server->stop();
      thread.join();
    }
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(10, 0);
    return c;
  }
};

}  // namespace rn_test

// The running sidecar: listeners (inbound mTLS, outbound forward proxy, routes, admin),
// upstream pools, reload on SIGHUP and drain on SIGTERM. One io_context on one thread:
// no locks on the data path.
#pragma once

#include <memory>
#include <string>

#include "config/config.hpp"

namespace joingate::proxy {

class Server {
public:
    // `cfg` is already validated; `config_path` is re-read on SIGHUP.
    Server(std::shared_ptr<const config::Config> cfg, std::string config_path);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds the listeners (throws std::runtime_error with the address on failure), then
    // serves until SIGTERM/SIGINT and the drain end. Returns the process exit code.
    int run();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace joingate::proxy

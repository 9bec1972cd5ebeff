// One generation of the running configuration: the validated config, its TLS contexts and
// the derived HTTP limits. Swapped as a whole on SIGHUP; a connection keeps the
// generation it started with.
#pragma once

#include <memory>
#include <string>

#include "config/config.hpp"
#include "proxy/http.hpp"
#include "proxy/tls.hpp"

namespace joingate::proxy {

struct Runtime {
    std::shared_ptr<const config::Config> config;
    tls::Contexts tls;
    http::Limits limits;
};

// Throws std::runtime_error when the certificates cannot be loaded.
inline std::shared_ptr<const Runtime> make_runtime(std::shared_ptr<const config::Config> cfg) {
    auto rt = std::make_shared<Runtime>();
    rt->tls = tls::make_contexts(cfg->tls);
    rt->limits.max_header_bytes = cfg->limits.max_header_bytes;
    rt->limits.max_uri_bytes = cfg->limits.max_uri_bytes;
    rt->config = std::move(cfg);
    return rt;
}

} // namespace joingate::proxy

// OpenSSL contexts for the sidecar: a server context for the inbound listener (client
// certificate required) and a client context for outbound origination (server name/IP
// verified), both TLS 1.2+ with the Mozilla "intermediate" ciphers. Built at start-up and
// on reload; established connections keep the context they were made with.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace joingate::tls {

struct CtxFree {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using CtxPtr = std::shared_ptr<SSL_CTX>;

struct Contexts {
    CtxPtr server;
    CtxPtr client;
    std::vector<std::string> allowed_peers;
    std::int64_t cert_not_after = 0; // Unix seconds
    std::string cert_subject;        // for logs
};

// Throws std::runtime_error naming the file and the OpenSSL reason (start-up and reload).
Contexts make_contexts(const config::Tls& tls);

// Matches a SAN allow-list pattern: "DNS:etcd-*", "IP:10.0.0.1", "URI:spiffe://x/*", or an
// untyped pattern matched against every SAN value. '*' matches any run of characters.
bool glob_match(std::string_view pattern, std::string_view text);
bool peer_allowed(SSL* ssl, const std::vector<std::string>& patterns);

// Outbound connections: remember the session tickets the target (host:port) gives this
// SSL, and offer the last one it gave, so that a reconnection resumes (no full handshake).
// With offer = false the stored ticket is forgotten instead. True when one was offered.
bool resume_for(SSL* ssl, std::string_view target, bool offer = true);

// A short name for the verified peer (first SAN, else the subject CN), for logs.
std::string peer_name(SSL* ssl);

// Client side: SNI for DNS names and hostname/IP verification of the server certificate.
void set_target(SSL* ssl, std::string_view host);

// The last OpenSSL error as text (and clears the queue).
std::string last_error();

} // namespace joingate::tls

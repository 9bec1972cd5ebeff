// Test certificates for the joingate integration tests, made at test time with the
// OpenSSL 3 API (never checked in, never valid for long): a trusted CA and the member and
// client certificates the TLS tests need, plus the ones that must be refused.
#pragma once

#include <string>

namespace joingate::test {

struct CertFiles {
    std::string cert; // PEM
    std::string key;  // PEM, unencrypted
};

struct TestPki {
    std::string dir;  // where every file below lives
    std::string ca;   // trusted CA certificate (tls.ca)
    CertFiles member; // SAN IP:127.0.0.1, DNS:localhost; EKU serverAuth+clientAuth
    CertFiles client; // same CA; SAN DNS:client.joingate.test, URI:spiffe://joingate-test/client
    std::string other_ca; // a CA nobody trusts
    CertFiles untrusted;  // signed by other_ca, otherwise like member
    CertFiles wrong_san;  // same CA, SAN DNS:other.example only (no IP)
    CertFiles expired;    // same CA, like member but notAfter in the past
};

// Made once per test process in a fresh temporary directory (removed at exit).
// Throws std::runtime_error when OpenSSL fails.
const TestPki& test_pki();

} // namespace joingate::test

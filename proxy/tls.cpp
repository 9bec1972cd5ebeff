// TLS contexts and peer checks (DESIGN §10: TLS 1.2+, intermediate ciphers, client
// certificate required inbound, server name/IP verified outbound).
#include "proxy/tls.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <ctime>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

namespace joingate::tls {
namespace {

// Mozilla "intermediate" (v5.7) TLS 1.2 cipher list; TLS 1.3 suites are OpenSSL's defaults,
// which are the same three.
constexpr const char* kIntermediateCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

// ---- client-side session resumption ----
// The client context keeps the last session ticket per target (host:port) so that a new
// connection to a member it talked to before resumes instead of doing a full handshake
// (etcd re-dials its raft streams after every hiccup). The store belongs to the SSL_CTX
// (freed with it: connections made before a reload keep the old context alive), the
// target key to the SSL.
struct SessionStore {
    std::unordered_map<std::string, SSL_SESSION*> by_target;
    std::unordered_set<std::string> refused; // targets that failed a resumed handshake
    ~SessionStore() {
        for (auto& [k, s] : by_target) SSL_SESSION_free(s);
    }
};
constexpr std::size_t kMaxTargets = 1024; // cluster members: a handful in practice

void free_store(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
    delete static_cast<SessionStore*>(ptr);
}
void free_key(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
    delete static_cast<std::string*>(ptr);
}
int store_index() {
    static const int idx = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_store);
    return idx;
}
int key_index() {
    static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_key);
    return idx;
}

// OpenSSL hands over a new session (a ticket arrived): keep it for the SSL's target.
int on_new_session(SSL* ssl, SSL_SESSION* session) {
    auto* store = static_cast<SessionStore*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), store_index()));
    auto* key = static_cast<std::string*>(SSL_get_ex_data(ssl, key_index()));
    if (!store || !key || !SSL_SESSION_is_resumable(session) || store->refused.count(*key)) return 0;
    if (store->by_target.size() >= kMaxTargets && !store->by_target.count(*key)) {
        for (auto& [k, s] : store->by_target) SSL_SESSION_free(s);
        store->by_target.clear();
    }
    auto& slot = store->by_target[*key];
    if (slot) SSL_SESSION_free(slot);
    slot = session; // the reference OpenSSL gave us (return 1)
    return 1;
}

// A ticket costs the server a session encoding and encryption per full handshake: issue one
// only to a client that says it can resume (TLS 1.3 psk_key_exchange_modes, TLS 1.2
// session_ticket). joingate's own outbound side says so; a client without a session cache
// (many load generators, curl without --sessionid) does not.
int on_client_hello(SSL* ssl, int*, void*) {
    const unsigned char* ext = nullptr;
    std::size_t len = 0;
    constexpr unsigned kPskKeyExchangeModes = 45, kSessionTicket = 35;
    bool resumes = SSL_client_hello_get0_ext(ssl, kPskKeyExchangeModes, &ext, &len) == 1 ||
                   SSL_client_hello_get0_ext(ssl, kSessionTicket, &ext, &len) == 1;
    if (!resumes) {
        SSL_set_num_tickets(ssl, 0);
        SSL_set_options(ssl, SSL_OP_NO_TICKET);
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what + ": " + last_error());
}

void common_setup(SSL_CTX* ctx, const config::Tls& tls) {
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_set_cipher_list(ctx, kIntermediateCiphers) != 1) fail("cipher list");
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    // Idle connections give their read/write buffers back (per-connection memory).
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // Read what the socket has in one read() instead of a record header and then its body
    // (two system calls per record). The streams ask SSL_has_pending() before waiting.
    SSL_CTX_set_read_ahead(ctx, 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, tls.cert.c_str()) != 1)
        fail("tls.cert " + tls.cert);
    if (SSL_CTX_use_PrivateKey_file(ctx, tls.key.c_str(), SSL_FILETYPE_PEM) != 1)
        fail("tls.key " + tls.key);
    if (SSL_CTX_check_private_key(ctx) != 1) fail("tls.key does not match tls.cert");
    if (SSL_CTX_load_verify_locations(ctx, tls.ca.c_str(), nullptr) != 1) fail("tls.ca " + tls.ca);
}

std::int64_t not_after(SSL_CTX* ctx) {
    X509* cert = SSL_CTX_get0_certificate(ctx);
    if (!cert) return 0;
    const ASN1_TIME* t = X509_get0_notAfter(cert);
    struct tm tm {};
    if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
    return static_cast<std::int64_t>(timegm(&tm));
}

std::string subject_cn(X509* cert) {
    char buf[256] = {0};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
    return buf;
}

// Calls f(type, value) for each SAN of the certificate; stops when f returns true.
template <class F> bool for_each_san(X509* cert, F&& f) {
    auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    if (!names) return false;
    bool hit = false;
    for (int i = 0; i < sk_GENERAL_NAME_num(names) && !hit; ++i) {
        const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
        std::string value;
        std::string_view type;
        if (gn->type == GEN_DNS || gn->type == GEN_URI || gn->type == GEN_EMAIL) {
            const ASN1_IA5STRING* s = gn->d.ia5;
            value.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), ASN1_STRING_length(s));
            type = gn->type == GEN_DNS ? "DNS" : gn->type == GEN_URI ? "URI" : "email";
        } else if (gn->type == GEN_IPADD) {
            const ASN1_OCTET_STRING* s = gn->d.ip;
            char buf[INET6_ADDRSTRLEN] = {0};
            int af = ASN1_STRING_length(s) == 4 ? AF_INET : AF_INET6;
            inet_ntop(af, ASN1_STRING_get0_data(s), buf, sizeof buf);
            value = buf;
            type = "IP";
        } else {
            continue;
        }
        hit = f(type, value);
    }
    GENERAL_NAMES_free(names);
    return hit;
}

} // namespace

std::string last_error() {
    unsigned long e = ERR_get_error();
    if (!e) return "unknown error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

Contexts make_contexts(const config::Tls& tls) {
    Contexts out;
    SSL_CTX* s = SSL_CTX_new(TLS_server_method());
    if (!s) fail("SSL_CTX_new");
    out.server = CtxPtr(s, CtxFree{});
    common_setup(s, tls);
    SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    // Clients choose among the intermediate suites (Mozilla: server preference off).
    static const unsigned char sid[] = "joingate";
    SSL_CTX_set_session_id_context(s, sid, sizeof sid - 1);
    // Resumption by stateless tickets only (no server-side session cache to fill, lock and
    // flush), one ticket per full handshake instead of OpenSSL's two, valid 10 minutes.
    // A reload makes a new context with new ticket keys: every older ticket stops working.
    SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(s, 1);
    SSL_CTX_set_client_hello_cb(s, on_client_hello, nullptr);
    SSL_CTX_set_timeout(s, 600);

    SSL_CTX* c = SSL_CTX_new(TLS_client_method());
    if (!c) fail("SSL_CTX_new");
    out.client = CtxPtr(c, CtxFree{});
    common_setup(c, tls);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c, on_new_session);
    if (SSL_CTX_set_ex_data(c, store_index(), new SessionStore) != 1) fail("SSL_CTX_set_ex_data");

    out.allowed_peers = tls.allowed_peers;
    out.cert_not_after = not_after(s);
    if (X509* cert = SSL_CTX_get0_certificate(s)) out.cert_subject = subject_cn(cert);
    return out;
}

bool glob_match(std::string_view p, std::string_view t) {
    // Iterative wildcard match with backtracking to the last '*'.
    std::size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
    while (ti < t.size()) {
        if (pi < p.size() && p[pi] == '*') {
            star = pi++;
            mark = ti;
        } else if (pi < p.size() && p[pi] == t[ti]) {
            ++pi;
            ++ti;
        } else if (star != std::string_view::npos) {
            pi = star + 1;
            ti = ++mark;
        } else {
            return false;
        }
    }
    while (pi < p.size() && p[pi] == '*') ++pi;
    return pi == p.size();
}

bool peer_allowed(SSL* ssl, const std::vector<std::string>& patterns) {
    if (patterns.empty()) return true;
    X509* cert = SSL_get0_peer_certificate(ssl);
    if (!cert) return false;
    return for_each_san(cert, [&](std::string_view type, const std::string& value) {
        for (const auto& pat : patterns) {
            std::string_view pv = pat;
            auto colon = pv.find(':');
            std::string_view ptype = colon == std::string_view::npos ? std::string_view{} : pv.substr(0, colon);
            if (ptype == "DNS" || ptype == "IP" || ptype == "URI" || ptype == "email") {
                if (ptype == type && glob_match(pv.substr(colon + 1), value)) return true;
            } else if (glob_match(pv, value)) {
                return true;
            }
        }
        return false;
    });
}

std::string peer_name(SSL* ssl) {
    X509* cert = SSL_get0_peer_certificate(ssl);
    if (!cert) return {};
    std::string first;
    for_each_san(cert, [&](std::string_view type, const std::string& value) {
        first = std::string(type) + ":" + value;
        return true;
    });
    return first.empty() ? "CN:" + subject_cn(cert) : first;
}

bool resume_for(SSL* ssl, std::string_view target, bool offer) {
    auto* key = new std::string(target);
    if (SSL_set_ex_data(ssl, key_index(), key) != 1) {
        delete key;
        return false;
    }
    auto* store = static_cast<SessionStore*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), store_index()));
    if (!store) return false;
    auto it = store->by_target.find(*key);
    if (it == store->by_target.end()) return false;
    if (!offer) { // it failed: do not offer this target tickets again (until a reload)
        SSL_SESSION_free(it->second);
        store->by_target.erase(it);
        if (store->refused.size() < kMaxTargets) store->refused.insert(*key);
        return false;
    }
    return SSL_set_session(ssl, it->second) == 1; // takes its own reference
}

void set_target(SSL* ssl, std::string_view host) {
    std::string h(host);
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    unsigned char tmp[16];
    if (inet_pton(AF_INET, h.c_str(), tmp) == 1 || inet_pton(AF_INET6, h.c_str(), tmp) == 1) {
        X509_VERIFY_PARAM_set1_ip_asc(param, h.c_str());
    } else {
        SSL_set_tlsext_host_name(ssl, h.c_str());
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        X509_VERIFY_PARAM_set1_host(param, h.c_str(), h.size());
    }
}

} // namespace joingate::tls

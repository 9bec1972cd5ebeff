// Certificate generation for the integration tests (OpenSSL 3 API): ECDSA P-256 keys,
// X.509 v3 certificates with the extensions joingate relies on (SAN, EKU).
#include "support/certs.hpp"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <vector>

namespace joingate::test {
namespace {

struct PkeyFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
    void operator()(X509* p) const { X509_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

[[noreturn]] void fail(const std::string& what) {
    char buf[256] = {0};
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    throw std::runtime_error("test certificates: " + what + ": " + buf);
}

PkeyPtr make_key() {
    PkeyPtr k(EVP_EC_gen("P-256"));
    if (!k)
        fail("EVP_EC_gen");
    return k;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (!ext)
        fail("extension " + value);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

struct Spec {
    std::string cn;
    std::string san; // "" = none
    bool ca = false;
    long not_before = -3600; // seconds relative to now
    long not_after = 2 * 86400;
};

// Signs with issuer_key; issuer == nullptr makes a self-signed certificate.
X509Ptr make_cert(const Spec& s, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
    X509Ptr cert(X509_new());
    if (!cert)
        fail("X509_new");
    X509_set_version(cert.get(), 2);
    unsigned char serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f;
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), s.not_before);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), s.not_after);
    X509_set_pubkey(cert.get(), key);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(s.cn.c_str()), -1, -1, 0);
    X509* signer = issuer ? issuer : cert.get();
    X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
    add_ext(cert.get(), signer, NID_subject_key_identifier, "hash");
    if (s.ca) {
        add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(cert.get(), signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
        add_ext(cert.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth");
        add_ext(cert.get(), signer, NID_authority_key_identifier, "keyid");
    }
    if (!s.san.empty())
        add_ext(cert.get(), signer, NID_subject_alt_name, s.san);
    if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0)
        fail("X509_sign " + s.cn);
    return cert;
}

void write_cert(const std::string& path, X509* cert) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f)
        throw std::runtime_error("cannot write " + path);
    bool ok = PEM_write_X509(f, cert) == 1;
    std::fclose(f);
    if (!ok)
        fail("PEM_write_X509 " + path);
}

void write_key(const std::string& path, EVP_PKEY* key) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f)
        throw std::runtime_error("cannot write " + path);
    bool ok = PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
    std::fclose(f);
    if (!ok)
        fail("PEM_write_PrivateKey " + path);
}

struct Issued {
    PkeyPtr key;
    X509Ptr cert;
};

Issued issue(const std::string& dir, const std::string& name, const Spec& s, const Issued* ca,
             CertFiles* out) {
    Issued i;
    i.key = make_key();
    i.cert =
        make_cert(s, i.key.get(), ca ? ca->cert.get() : nullptr, ca ? ca->key.get() : i.key.get());
    std::string cert_path = dir + "/" + name + ".crt";
    write_cert(cert_path, i.cert.get());
    if (out) {
        out->cert = cert_path;
        out->key = dir + "/" + name + ".key";
        write_key(out->key, i.key.get());
    }
    return i;
}

struct PkiHolder {
    TestPki pki;
    PkiHolder() {
        char tmpl[] = "/tmp/joingate-pki-XXXXXX";
        if (!::mkdtemp(tmpl))
            throw std::runtime_error("mkdtemp failed");
        pki.dir = tmpl;
        const std::string& d = pki.dir;
        const std::string member_san = "IP:127.0.0.1,DNS:localhost";

        Spec ca_spec{"joingate test CA", "", true};
        Issued ca = issue(d, "ca", ca_spec, nullptr, nullptr);
        pki.ca = d + "/ca.crt";
        issue(d, "member", {"m0", member_san}, &ca, &pki.member);
        issue(d, "client", {"client", "DNS:client.joingate.test,URI:spiffe://joingate-test/client"},
              &ca, &pki.client);
        issue(d, "wrong-san", {"other", "DNS:other.example"}, &ca, &pki.wrong_san);
        Spec expired{"expired", member_san};
        expired.not_before = -3 * 86400;
        expired.not_after = -86400;
        issue(d, "expired", expired, &ca, &pki.expired);

        Spec other_spec{"joingate untrusted CA", "", true};
        Issued other = issue(d, "other-ca", other_spec, nullptr, nullptr);
        pki.other_ca = d + "/other-ca.crt";
        issue(d, "untrusted", {"untrusted", member_san}, &other, &pki.untrusted);
    }
    ~PkiHolder() {
        std::error_code ec;
        std::filesystem::remove_all(pki.dir, ec);
    }
};

} // namespace

const TestPki& test_pki() {
    static PkiHolder holder;
    return holder.pki;
}

} // namespace joingate::test

#!/usr/bin/env bash
# Test certificates for joingate with the openssl CLI: one ECDSA P-256 CA per test run and
# one certificate per member, valid for both TLS roles (each sidecar is a server on its
# inbound listener and a client on its outbound side).
#
# As a library:  source tests/support/certs.sh
#                certs_ca DIR                       -> DIR/ca.crt DIR/ca.key
#                certs_member DIR CA_DIR NAME SAN... -> DIR/tls.crt DIR/tls.key DIR/ca.crt
#                  SAN entries as openssl writes them: IP:10.213.7.11 DNS:m1
# As a command:  tests/support/certs.sh ca DIR
#                tests/support/certs.sh member DIR CA_DIR NAME SAN...

# Short validity: test certificates should never outlive the test by much.
CERTS_DAYS="${CERTS_DAYS:-2}"

certs_ca() {
    local dir=$1
    mkdir -p "$dir"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$dir/ca.key" 2>/dev/null || return 1
    openssl req -x509 -new -key "$dir/ca.key" -sha256 -days "$CERTS_DAYS" \
        -subj "/CN=joingate test CA $$" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" \
        -out "$dir/ca.crt" 2>/dev/null || return 1
    chmod 600 "$dir/ca.key"
}

certs_member() {
    local dir=$1 ca_dir=$2 name=$3
    shift 3
    local san
    san=$(IFS=,; echo "$*")
    [[ -n $san ]] || { echo "certs_member: no SAN for $name" >&2; return 1; }
    mkdir -p "$dir"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$dir/tls.key" 2>/dev/null || return 1
    chmod 600 "$dir/tls.key"
    openssl req -new -key "$dir/tls.key" -subj "/CN=$name" -out "$dir/tls.csr" 2>/dev/null ||
        return 1
    cat >"$dir/tls.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$san
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
    openssl x509 -req -in "$dir/tls.csr" -CA "$ca_dir/ca.crt" -CAkey "$ca_dir/ca.key" \
        -CAcreateserial -CAserial "$ca_dir/ca.srl" -sha256 -days "$CERTS_DAYS" \
        -extfile "$dir/tls.ext" -out "$dir/tls.crt" 2>/dev/null || return 1
    cp "$ca_dir/ca.crt" "$dir/ca.crt"
    rm -f "$dir/tls.csr" "$dir/tls.ext"
    openssl verify -CAfile "$dir/ca.crt" -purpose sslserver "$dir/tls.crt" >/dev/null &&
        openssl verify -CAfile "$dir/ca.crt" -purpose sslclient "$dir/tls.crt" >/dev/null
}

# certs_member_dated DIR CA_DIR NAME NOT_BEFORE NOT_AFTER SAN...: like certs_member, with an
# explicit validity window (openssl ca dates, e.g. 20200101000000Z): expired and
# not-yet-valid certificates for the TLS tests. Not verified (it may be invalid on purpose).
certs_member_dated() {
    local dir=$1 ca_dir=$2 name=$3 start=$4 end=$5
    shift 5
    local san
    san=$(IFS=,; echo "$*")
    [[ -n $san ]] || { echo "certs_member_dated: no SAN for $name" >&2; return 1; }
    mkdir -p "$dir" "$dir/.ca"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$dir/tls.key" 2>/dev/null || return 1
    chmod 600 "$dir/tls.key"
    openssl req -new -key "$dir/tls.key" -subj "/CN=$name" -out "$dir/tls.csr" 2>/dev/null ||
        return 1
    : >"$dir/.ca/index.txt"
    cat >"$dir/.ca/ca.cnf" <<EOC
[ca]
default_ca = dated
[dated]
database = $dir/.ca/index.txt
new_certs_dir = $dir/.ca
certificate = $ca_dir/ca.crt
private_key = $ca_dir/ca.key
rand_serial = yes
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no
[any]
commonName = supplied
[ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = $san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOC
    openssl ca -batch -notext -config "$dir/.ca/ca.cnf" -extensions ext -startdate "$start" \
        -enddate "$end" -in "$dir/tls.csr" -out "$dir/tls.crt" >/dev/null 2>&1 || return 1
    cp "$ca_dir/ca.crt" "$dir/ca.crt"
    rm -rf "$dir/tls.csr" "$dir/.ca"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    cmd=${1:-}
    shift || true
    case $cmd in
    ca) certs_ca "$@" ;;
    member) certs_member "$@" ;;
    *)
        echo "usage: $0 ca DIR | member DIR CA_DIR NAME SAN..." >&2
        exit 2
        ;;
    esac
fi

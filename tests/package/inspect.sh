#!/usr/bin/env bash
# Inspects the joingate .deb without installing it: control fields (dpkg-deb -I), the file
# list (dpkg-deb -c), Depends as dpkg-shlibdeps derives it from the binary, conffiles,
# md5sums, maintainer scripts, the binary itself, and lintian. One PASS/FAIL line per
# check (tests/package/run.sh counts them); exit 1 when any failed.
#
#   tests/package/inspect.sh [DEB]      default: tests/package/lib.sh's pkg_deb
set -uo pipefail
# shellcheck source=tests/package/lib.sh
source "$(dirname "$0")/lib.sh"

deb=${1:-$(pkg_deb)} || exit 1
[[ -f $deb ]] || { pkg_fail "inspect" "no such package: $deb"; exit 1; }
work=$(mktemp -d /tmp/jg-pkg-inspect.XXXXXX)
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$deb" "$work/root" && dpkg-deb -e "$deb" "$work/control" ||
    { pkg_fail "inspect: unpack" "dpkg-deb could not unpack $deb"; exit 1; }

field() { dpkg-deb -f "$deb" "$1"; }
version=$(sed -n 's/^project(joingate VERSION \([0-9.]*\).*/\1/p' "$PKG_REPO/CMakeLists.txt")
arch=$(dpkg --print-architecture)

# ---------------------------------------------------------------- control fields
check_fields() {
    local want got bad=()
    [[ $(field Package) == joingate ]] || bad+=("Package=$(field Package)")
    [[ $(field Version) == "$version"-* ]] || bad+=("Version=$(field Version), project $version")
    [[ $(field Architecture) == "$arch" ]] || bad+=("Architecture=$(field Architecture), want $arch")
    [[ -n $(field Maintainer) ]] || bad+=("no Maintainer")
    [[ $(field Section) == net && $(field Priority) == optional ]] || bad+=("Section/Priority")
    [[ $(field Description) == "version-gating mutual TLS sidecar for etcd peers"* ]] || bad+=("Description")
    got=$(field Installed-Size)
    want=$(du -sk --apparent-size "$work/root" | cut -f1)
    # dpkg-gencontrol counts per file; a few KiB either way is rounding
    [[ $got =~ ^[0-9]+$ ]] && ((got > want - 64 && got < want + 64)) ||
        bad+=("Installed-Size=$got KiB, unpacked $want KiB")
    ((${#bad[@]} == 0)) || { printf '%s\n' "${bad[@]}"; return 1; }
    dpkg-deb -I "$deb" | sed -n '/^ Package:/,$p' >&2
}
pkg_check "inspect: control fields (dpkg-deb -I)" check_fields

# Depends = adduser (postinst) + exactly what dpkg-shlibdeps derives from the binary.
check_depends() {
    local d derived declared
    d=$(mktemp -d "$work/shlibdeps.XXXX")
    mkdir -p "$d/debian"
    printf 'Source: joingate\n\nPackage: joingate\nArchitecture: any\n' >"$d/debian/control"
    derived=$(cd "$d" && dpkg-shlibdeps -O -e "$work/root/usr/bin/joingate" 2>/dev/null |
        sed -n 's/^shlibs:Depends=//p' | tr ',' '\n' | sed 's/^ *//; s/ *$//' | sort)
    [[ -n $derived ]] || { echo "dpkg-shlibdeps derived nothing"; return 1; }
    declared=$(field Depends | tr ',' '\n' | sed 's/^ *//; s/ *$//' | grep -vx adduser | sort)
    if [[ $derived != "$declared" ]]; then
        echo "Depends (without adduser): $(echo $declared)"
        echo "dpkg-shlibdeps derives:    $(echo $derived)"
        return 1
    fi
    field Depends | grep -cw adduser >/dev/null || { echo "Depends lacks adduser (postinst runs adduser)"; return 1; }
    echo "Depends: $(field Depends)" >&2
}
pkg_check "inspect: Depends derived with dpkg-shlibdeps" check_depends

# ---------------------------------------------------------------- contents
expected_files='/etc/joingate/joingate.toml 644
/lib/systemd/system/joingate.service 644
/usr/bin/joingate 755
/usr/libexec/joingate/check-etcd-version 755
/usr/share/doc/joingate/changelog.Debian.gz 644
/usr/share/doc/joingate/copyright 644
/usr/share/doc/joingate/systemd.md 644
/usr/share/joingate/etcd.service.d/joingate.conf 644
/usr/share/lintian/overrides/joingate 644
/usr/share/man/man1/joingate.1.gz 644'
check_contents() {
    local listed bad
    # regular files with their modes, from dpkg-deb -c (owner must be root/root)
    listed=$(dpkg-deb -c "$deb" | awk '$1 ~ /^-/ {
            p = $6; sub(/^\./, "", p)
            m = 0; s = substr($1, 2)
            for (i = 0; i < 9; i++) if (substr(s, i + 1, 1) != "-") m += 2 ^ (8 - i)
            printf "%s %o %s\n", p, m, $2 }' | sort)
    bad=$(awk '$3 != "root/root"' <<<"$listed")
    [[ -z $bad ]] || { echo "not owned by root/root: $bad"; return 1; }
    if [[ $(cut -d' ' -f1,2 <<<"$listed") != "$expected_files" ]]; then
        diff <(echo "$expected_files") <(cut -d' ' -f1,2 <<<"$listed") | sed 's/^/    /'
        return 1
    fi
    # the certificate directory ships empty; postinst gives it to the joingate group
    local all
    all=$(dpkg-deb -c "$deb")
    grep -qE '^d.* \./etc/joingate/tls/$' <<<"$all" || { echo "no /etc/joingate/tls/ directory"; return 1; }
    awk '$1 ~ /[sStT]/' <<<"$all" | grep . && { echo "setuid/setgid/sticky entries"; return 1; }
    echo "$all" >&2
}
pkg_check "inspect: file list, modes and owners (dpkg-deb -c)" check_contents

check_conffiles() {
    [[ $(cat "$work/control/conffiles") == /etc/joingate/joingate.toml ]] ||
        { echo "conffiles: $(cat "$work/control/conffiles" 2>&1)"; return 1; }
    # every file under /etc is a conffile
    local etc
    etc=$(cd "$work/root" && find etc -type f | sed 's|^|/|' | sort)
    [[ $etc == "$(sort "$work/control/conffiles")" ]] || { echo "files in /etc: $etc"; return 1; }
}
pkg_check "inspect: conffiles lists /etc/joingate/joingate.toml" check_conffiles

check_md5sums() {
    local f sums
    sums=$(cd "$work/root" && find . -type f | sed 's|^\./||' | sort)
    [[ $(awk '{ print $2 }' "$work/control/md5sums" | sort) == "$sums" ]] ||
        { echo "md5sums does not list exactly the files of the package"; return 1; }
    (cd "$work/root" && md5sum --quiet -c "$work/control/md5sums")
}
pkg_check "inspect: md5sums match every file" check_md5sums

check_scripts() {
    local s
    for s in postinst prerm postrm; do
        [[ -x $work/control/$s ]] || { echo "$s missing or not executable"; return 1; }
        head -n1 "$work/control/$s" | grep -cx '#!/bin/sh' >/dev/null || { echo "$s: not #!/bin/sh"; return 1; }
        sh -n "$work/control/$s" || return 1
        if command -v checkbashisms >/dev/null; then checkbashisms "$work/control/$s" || return 1; fi
    done
    [[ ! -e $work/control/preinst ]] || { echo "unexpected preinst"; return 1; }
}
pkg_check "inspect: maintainer scripts (sh -n)" check_scripts

check_binary() {
    local b=$work/root/usr/bin/joingate out
    readelf -S "$b" | grep -c '\.symtab' >/dev/null && { echo "not stripped"; return 1; }
    readelf -S "$b" | grep -cE '\.comment\b' >/dev/null && { echo ".comment left"; return 1; }
    readelf -h "$b" | grep -c 'DYN' >/dev/null || { echo "not PIE"; return 1; }
    readelf -lW "$b" | grep -c GNU_RELRO >/dev/null || { echo "no RELRO"; return 1; }
    out=$("$b" version) && [[ $out == "joingate $version" ]] || { echo "version: $out"; return 1; }
    "$b" --help | grep -c '^usage: joingate' >/dev/null || { echo "--help"; return 1; }
    # the man page renders without warnings and names every command
    out=$(MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l "$work/root/usr/share/man/man1/joingate.1.gz" 2>&1 >/dev/null)
    [[ -z $out ]] || { echo "man --warnings: $out"; return 1; }
    for c in run check-config wait status version; do
        zcat "$work/root/usr/share/man/man1/joingate.1.gz" | grep -c "^\.B.* ${c//-/\\\\-}" >/dev/null ||
            { echo "man page lacks $c"; return 1; }
    done
}
pkg_check "inspect: stripped PIE binary, version, --help, man page" check_binary

# ---------------------------------------------------------------- lintian
check_lintian() {
    command -v lintian >/dev/null || { echo "lintian is not installed (apt-get install lintian)"; return 1; }
    local out rc=0
    # errors and warnings fail; info/pedantic tags are listed (explained in docs/systemd.md)
    # (overridden tags are explained in packaging/debian/lintian-overrides)
    out=$(lintian --fail-on error,warning -EI --pedantic "$deb" 2>&1) || rc=$?
    grep -E '^[EWIPO]:' <<<"$out" | sed 's/^/    /' >&2
    ((rc == 0)) || { grep -E '^[EW]:' <<<"$out"; return 1; }
}
pkg_check "inspect: lintian has no error or warning" check_lintian

echo "package size $(stat -c %s "$deb") bytes ($(du -h --apparent-size "$deb" | cut -f1)), Installed-Size $(field Installed-Size) KiB" >&2
exit "$PKG_FAILED"

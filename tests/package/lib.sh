#!/usr/bin/env bash
# Helpers for the package tests (tests/package/*.sh), sourced by them:
#   - results: pkg_pass NAME / pkg_fail NAME WHY print "PASS name" / "FAIL name: why", which
#     tests/package/run.sh counts;
#   - reading unit files the way the tests need: the values of one key in one section,
#     and turning an Exec line into a command with the test's paths substituted;
#   - a throwaway root: an overlay of / (changes land in a tmpfs) with its own /proc,
#     /dev, /tmp and /run, inside a private mount namespace, so that dpkg, adduser and
#     the maintainer scripts run for real while the machine itself stays untouched.

if [[ -n ${PKG_LIB_LOADED:-} ]]; then return 0; fi
PKG_LIB_LOADED=1

PKG_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck disable=SC2034 # read by the scripts that source this file
PKG_FAILED=0

pkg_log() { printf '[package] %s\n' "$*" >&2; }
pkg_pass() { echo "PASS $1"; }
pkg_fail() {
    echo "FAIL $1: $2"
    # shellcheck disable=SC2034
    PKG_FAILED=1
}

# pkg_check NAME COMMAND...: run COMMAND in this shell (it may set variables); PASS when
# it succeeds, else FAIL with the last lines it printed on stdout (its reason).
# Progress for people goes to stderr.
pkg_check() {
    local name=$1 out rc=0
    shift
    out=$(mktemp "${TMPDIR:-/tmp}/jg-pkg-check.XXXXXX")
    "$@" >"$out" || rc=$?
    if ((rc == 0)); then
        pkg_pass "$name"
    else
        pkg_fail "$name" "exit $rc: $(tail -n 15 "$out")"
    fi
    rm -f "$out"
    return 0
}

# pkg_deb: the package under test: $JOINGATE_DEB, else the newest build/release/*.deb.
pkg_deb() {
    if [[ -n ${JOINGATE_DEB:-} ]]; then
        echo "$JOINGATE_DEB"
        return
    fi
    local d
    d=$(ls -t "$PKG_REPO"/build/release/joingate_*.deb 2>/dev/null | head -n1)
    [[ -n $d ]] || { echo "no build/release/joingate_*.deb: run scripts/package or set JOINGATE_DEB" >&2; return 1; }
    echo "$d"
}

# ---------------------------------------------------------------- unit files

# unit_values FILE SECTION KEY: every value of KEY in [SECTION], in order, one a line
# (comments and blank lines skipped; the units here use no line continuations).
unit_values() {
    awk -v want="[$2]" -v key="$3" '
        /^[ \t]*[#;]/ || /^[ \t]*$/ { next }
        /^\[.*\][ \t]*$/ { section = $0; next }
        section == want {
            i = index($0, "=")
            if (i == 0) next
            k = substr($0, 1, i - 1); gsub(/[ \t]+$/, "", k)
            if (k != key) next
            v = substr($0, i + 1); sub(/^[ \t]+/, "", v)
            print v
        }' "$1"
}

# unit_command LINE [FROM TO]...: print the words of the Exec line LINE, one a line, as
# systemd would run them: a word that is exactly $NAME or ${NAME} becomes the words of
# UNIT_ENV[NAME] (none when empty), and each word equal to FROM becomes TO (the test's
# paths). Lines that need more of systemd's syntax than that (quotes, specifiers,
# prefixes, variables inside words) are refused, so that a test never runs something
# else than systemd would.
declare -A UNIT_ENV=()
unit_command() {
    local line=$1 w i name words split out=()
    shift
    local args=("$@")
    if [[ $line == [-@:+!]* || $line =~ [\"\'\\\;%] ]]; then
        echo "unit_command: '$line' needs systemd syntax this test does not emulate" >&2
        return 1
    fi
    read -ra words <<<"$line"
    for w in "${words[@]}"; do
        if [[ $w =~ ^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$ ]]; then
            name=${BASH_REMATCH[1]}
            [[ -n ${UNIT_ENV[$name]+set} ]] || { echo "unit_command: $w is not set in UNIT_ENV" >&2; return 1; }
            # systemd splits an unquoted $NAME at whitespace
            read -ra split <<<"${UNIT_ENV[$name]}"
            out+=("${split[@]}")
            continue
        elif [[ $w == *'$'* ]]; then
            echo "unit_command: '$line' expands '$w', which this test does not emulate" >&2
            return 1
        fi
        for ((i = 0; i + 1 < ${#args[@]}; i += 2)); do
            if [[ $w == "${args[i]}" ]]; then
                w=${args[i + 1]}
                break
            fi
        done
        out+=("$w")
    done
    printf '%s\n' "${out[@]}"
}

# unit_environment FILE...: the NAME=VALUE assignments of every Environment= line of the
# [Service] sections of FILEs, in order (later ones win), one a line. Values contain no
# spaces or quotes here; anything else is refused.
unit_environment() {
    local f v a
    for f in "$@"; do
        while IFS= read -r v; do
            if [[ $v =~ [\"\'\\] ]]; then
                echo "unit_environment: Environment=$v: quoting is not emulated" >&2
                return 1
            fi
            for a in $v; do
                [[ $a == *=* ]] || { echo "unit_environment: '$a' is not NAME=VALUE" >&2; return 1; }
                echo "$a"
            done
        done < <(unit_values "$f" Service Environment)
    done
}

# ---------------------------------------------------------------- throwaway root

# pkg_root_setup: create the overlay root $PKG_ROOT; changes land in $PKG_UPPER. Only in a
# private mount namespace of its own (install.sh re-executes itself under unshare): the
# tmpfs holding everything is mounted over /mnt there, so nothing is created on the
# machine's file systems and everything vanishes with the namespace, even if the test is
# killed.
pkg_root_setup() {
    [[ -n ${PKG_IN_MOUNT_NS:-} ]] || { echo "pkg_root_setup: not in a private mount namespace" >&2; return 1; }
    mount --make-rprivate / || return 1
    mount -t tmpfs -o mode=0755 jg-pkgroot /mnt || return 1
    PKG_BASE=/mnt
    mkdir "$PKG_BASE/upper" "$PKG_BASE/work" "$PKG_BASE/root"
    mount -t overlay jg-pkgroot -o "lowerdir=/,upperdir=$PKG_BASE/upper,workdir=$PKG_BASE/work" \
        "$PKG_BASE/root" || return 1
    PKG_ROOT=$PKG_BASE/root
    PKG_UPPER=$PKG_BASE/upper
    # the test's own scratch files vanish with the namespace too
    mkdir "$PKG_BASE/scratch"
    export TMPDIR=$PKG_BASE/scratch
    mount -t proc proc "$PKG_ROOT/proc"
    mount --rbind /dev "$PKG_ROOT/dev"
    mount -t sysfs sysfs "$PKG_ROOT/sys" 2>/dev/null || mount --rbind /sys "$PKG_ROOT/sys"
    # no /run/systemd/system in there: maintainer scripts see a machine without systemd
    mount -t tmpfs tmpfs "$PKG_ROOT/run"
    mount -t tmpfs tmpfs "$PKG_ROOT/tmp"
    # other mounts of the machine (if any) are not part of the overlay: dpkg only touches
    # /etc, /lib, /usr and /var, which are on the root file system here
}

pkg_root_teardown() {
    [[ -n ${PKG_BASE:-} ]] || return 0
    local p
    # whatever still runs chrooted in there was started by the test
    for p in /proc/[0-9]*; do
        [[ $(readlink "$p/root" 2>/dev/null) == "$PKG_ROOT" ]] && kill -KILL "${p#/proc/}" 2>/dev/null
    done
    umount -R "$PKG_ROOT" 2>/dev/null || umount -lR "$PKG_ROOT" 2>/dev/null || true
    umount "$PKG_BASE" 2>/dev/null || umount -l "$PKG_BASE" 2>/dev/null || true
    PKG_BASE=
}

# pkg_in_root COMMAND...: run COMMAND chrooted in the throwaway root.
pkg_in_root() { chroot "$PKG_ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

# pkg_root_changes: every path the throwaway root changed compared with the machine, one
# a line, as "new PATH", "changed PATH" (content, mode or owner) or "deleted PATH"; paths
# relative to /. Directories that merely got copied up are not listed.
pkg_root_changes() {
    local p rel lower
    (cd "$PKG_UPPER" && find . -mindepth 1 | sed 's|^\./||' | sort) | while IFS= read -r rel; do
        p=$PKG_UPPER/$rel
        lower=/$rel
        if [[ -c $p && ! -L $p && $(stat -c '%t:%T' "$p") == 0:0 ]]; then
            echo "deleted /$rel"
        elif [[ ! -e $lower && ! -L $lower ]]; then
            echo "new /$rel"
        elif [[ -d $p && ! -L $p ]]; then
            [[ $(stat -c '%a %U %G' "$p") == "$(stat -c '%a %U %G' "$lower")" ]] || echo "changed /$rel"
        elif [[ -L $p ]]; then
            [[ -L $lower && $(readlink "$p") == "$(readlink "$lower")" ]] || echo "changed /$rel"
        elif [[ -f $p ]]; then
            if [[ ! -f $lower ]] || ! cmp -s "$p" "$lower" ||
                [[ $(stat -c '%a %U %G' "$p") != "$(stat -c '%a %U %G' "$lower")" ]]; then
                echo "changed /$rel"
            fi
        else
            echo "changed /$rel"
        fi
    done
}

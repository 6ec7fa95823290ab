# Shared set-up for scripts/test and scripts/demo (sourced, not run).
# Makes a fresh Debian 12 machine ready to build: system packages, Swift on PATH, C fixtures.

# What the build, the tests and the demo need from Debian. The first line is ours;
# the second the Debian programs the end-to-end tests run from the host's /usr;
# the third is what the Swift toolchain itself needs to compile and link.
RUNSC_PACKAGES=(
    libseccomp-dev liblz4-dev libzstd-dev gcc pkg-config busybox-static
    bash perl python3 sqlite3 gzip xz-utils tar redis-server redis-tools socat make util-linux postgresql
    ca-certificates git binutils libc6-dev libgcc-12-dev libstdc++-12-dev libcurl4 libxml2 libsqlite3-0 zlib1g-dev tzdata
)

log_step() {
    if [[ -t 1 ]]; then
        printf '\n\033[1m==> %s\033[0m\n' "$*"
    else
        printf '\n==> %s\n' "$*"
    fi
}

# Installs missing packages with apt-get; does nothing (and needs no network) when all are present.
ensure_packages() {
    local missing=() package
    for package in "${RUNSC_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$package")
        fi
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    if [[ $(id -u) -ne 0 ]]; then
        echo "missing packages: ${missing[*]}" >&2
        echo "run as root, or install them: apt-get install ${missing[*]}" >&2
        return 1
    fi
    log_step "Installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Puts the toolchain from /opt/swift on PATH when swift is not already there.
ensure_swift() {
    if ! command -v swift >/dev/null 2>&1 && [[ -x /opt/swift/usr/bin/swift ]]; then
        export PATH="/opt/swift/usr/bin:$PATH"
    fi
    if ! command -v swift >/dev/null 2>&1; then
        echo "swift not found: install a Swift 6 toolchain for Debian 12 from https://www.swift.org/install/ into /opt/swift" >&2
        return 1
    fi
}

# Whether `source`, or a fixture file it #includes by a quoted name
# (dynamic_thread_cases.c includes thread_cases.c), is newer than `binary`.
fixture_changed() {
    local source=$1 binary=$2 included
    [[ $source -nt $binary ]] && return 0
    while read -r included; do
        [[ -f fixtures/$included && fixtures/$included -nt $binary ]] && return 0
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$source")
    return 1
}

# Compiles each fixtures/NAME.c to fixtures/bin/NAME (static, so it runs in any rootfs), when it or what it includes is newer.
build_fixtures() {
    local source binary
    mkdir -p fixtures/bin
    shopt -s nullglob
    for source in fixtures/*.c; do
        binary="fixtures/bin/$(basename "$source" .c)"
        if [[ ! -x $binary ]] || fixture_changed "$source" "$binary"; then
            echo "gcc $source -> $binary"
            # dynamic_*.c stay dynamically linked: they test ld.so and the host's libraries.
            if [[ $(basename "$source") == dynamic_* ]]; then
                gcc -O2 -Wall -Werror -o "$binary" "$source"
            else
                gcc -static -O2 -Wall -Werror -o "$binary" "$source"
            fi
        fi
    done
    shopt -u nullglob
}

# Shared by the scripts: repository root and Debian package installation.

NAO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# need_packages PKG... installs whichever of the Debian packages are missing
need_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null \
            | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0

    echo "installing: ${missing[*]}" >&2
    local sudo=
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >&2
}

BUILD_PACKAGES=(g++ make nginx-core nginx-dev libcurl4-openssl-dev
    libjansson-dev libssl-dev libpcre2-dev zlib1g-dev)
TEST_PACKAGES=(libcmocka-dev libwww-perl libhttp-daemon-perl
    libcrypt-jwt-perl libcryptx-perl libjson-perl)

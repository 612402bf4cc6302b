#!/usr/bin/env bash
# Install flowmlp for C and C++ programs under PREFIX (Linux):
#
#   PREFIX/include/flowmlp.h, flowmlp.hpp
#   PREFIX/lib/libflowmlp.a
#   PREFIX/lib/libflowmlp.so.X.Y.Z, libflowmlp.so.0 -> it (the SONAME), libflowmlp.so -> .so.0
#   PREFIX/lib/pkgconfig/flowmlp.pc          pkg-config --cflags --libs flowmlp (shared)
#   PREFIX/lib/pkgconfig/flowmlp-static.pc   pkg-config --cflags --libs flowmlp-static
#   PREFIX/lib/cmake/flowmlp/flowmlpConfig.cmake, flowmlpConfigVersion.cmake
#                                            find_package(flowmlp): flowmlp::flowmlp (shared),
#                                            flowmlp::flowmlp_static
#
# Usage: scripts/install.sh PREFIX
#   It runs `cargo build --release` and installs from the release build.
# Environment:
#   DESTDIR          stage the files under DESTDIR/PREFIX (for packaging); the .pc files
#                    still name PREFIX.
#   LIBDIR           the library directory relative to PREFIX (default: lib).
#   FLOWMLP_LIB_DIR  install libflowmlp.a and libflowmlp.so from this directory instead
#                    of building (tests/install.rs passes the libraries `cargo test` built).
#   CARGO            the cargo to run (default: cargo).
set -euo pipefail

usage() {
    echo "usage: $0 PREFIX   (see the comment at the top of this script)" >&2
    exit 2
}
[ $# -eq 1 ] && [ -n "$1" ] || usage
case "$(uname -s)" in
Linux) ;;
*)
    echo "install.sh supports Linux only; elsewhere link target/release/libflowmlp.a" >&2
    exit 1
    ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
prefix=$1
case "$prefix" in
/*) ;;
*) prefix="$PWD/$prefix" ;;
esac
prefix=${prefix%/}
[ -n "$prefix" ] || prefix=/
case "$prefix" in
*[[:space:]]*)
    echo "install.sh: PREFIX must not contain whitespace (pkg-config cannot quote it)" >&2
    exit 1
    ;;
esac
libdir=${LIBDIR:-lib}
libdir=${libdir%/}
case "$libdir" in
/* | *..* | "")
    echo "install.sh: LIBDIR must be a relative path below PREFIX, like lib or lib64" >&2
    exit 1
    ;;
esac
dest=${DESTDIR:-}

version=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$root/Cargo.toml" | head -n 1)
[ -n "$version" ] || {
    echo "install.sh: no version in $root/Cargo.toml" >&2
    exit 1
}
major=${version%%.*}
minor=${version#*.}
minor=${minor%%.*}
# build.rs links the cdylib with this SONAME: the versions that keep the ABI, major
# from 1.0 on, major.minor before.
if [ "$major" = 0 ]; then abi="0.$minor"; else abi=$major; fi
soname="libflowmlp.so.$abi"

if [ -n "${FLOWMLP_LIB_DIR:-}" ]; then
    built=$FLOWMLP_LIB_DIR
else
    cargo=${CARGO:-cargo}
    "$cargo" build --release --lib --manifest-path "$root/Cargo.toml"
    target_dir=$("$cargo" metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    built="${target_dir:-$root/target}/release"
fi
for f in libflowmlp.a libflowmlp.so; do
    [ -f "$built/$f" ] || {
        echo "install.sh: $built/$f not found" >&2
        exit 1
    }
done
if command -v readelf >/dev/null 2>&1; then
    found=$(readelf -d "$built/libflowmlp.so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
    [ "$found" = "$soname" ] || {
        echo "install.sh: $built/libflowmlp.so has SONAME '$found', expected $soname (build.rs)" >&2
        exit 1
    }
fi

inc="$dest$prefix/include"
lib="$dest$prefix/$libdir"
install -d "$inc" "$lib/pkgconfig" "$lib/cmake/flowmlp"
install -m 0644 "$root/include/flowmlp.h" "$root/include/flowmlp.hpp" "$inc/"
install -m 0644 "$built/libflowmlp.a" "$lib/libflowmlp.a"
install -m 0755 "$built/libflowmlp.so" "$lib/libflowmlp.so.$version"
ln -sfn "libflowmlp.so.$version" "$lib/$soname"
ln -sfn "$soname" "$lib/libflowmlp.so"

# What a Rust static library needs from the system (cargo's native-static-libs).
native_libs="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
description="Train and run small multilayer perceptrons on the CPU (C and C++ API)"

cat >"$lib/pkgconfig/flowmlp.pc" <<EOF
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/$libdir
includedir=\${prefix}/include

Name: flowmlp
Description: $description
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -lflowmlp
Libs.private: $native_libs
EOF

cat >"$lib/pkgconfig/flowmlp-static.pc" <<EOF
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/$libdir
includedir=\${prefix}/include

Name: flowmlp-static
Description: $description; links libflowmlp.a
Version: $version
Cflags: -I\${includedir}
Libs: \${libdir}/libflowmlp.a $native_libs
EOF

# PREFIX relative to PREFIX/LIBDIR/cmake/flowmlp, so the CMake package is relocatable.
up="../../.."
rest=$libdir
while [ "${rest#*/}" != "$rest" ]; do
    rest=${rest#*/}
    up="$up/.."
done
cmake_libs=$(echo "$native_libs" | sed 's/-l//g; s/ /;/g')

cat >"$lib/cmake/flowmlp/flowmlpConfig.cmake" <<EOF
# find_package(flowmlp) support for flowmlp $version, written by scripts/install.sh.
#
# Imported targets:
#   flowmlp::flowmlp         the shared library ($soname) with include/flowmlp.h(pp)
#   flowmlp::flowmlp_static  the static library libflowmlp.a and the system libraries it needs
# Variables: flowmlp_VERSION, flowmlp_INCLUDE_DIR, flowmlp_LIBRARY, flowmlp_STATIC_LIBRARY.
#
# The paths are relative to this file: the installed tree may be moved as a whole.

get_filename_component(_flowmlp_prefix "\${CMAKE_CURRENT_LIST_DIR}/$up" ABSOLUTE)
set(flowmlp_VERSION "$version")
set(flowmlp_INCLUDE_DIR "\${_flowmlp_prefix}/include")
set(flowmlp_LIBRARY "\${_flowmlp_prefix}/$libdir/libflowmlp.so.$version")
set(flowmlp_STATIC_LIBRARY "\${_flowmlp_prefix}/$libdir/libflowmlp.a")

foreach(_flowmlp_file "\${flowmlp_INCLUDE_DIR}/flowmlp.h" "\${flowmlp_LIBRARY}" "\${flowmlp_STATIC_LIBRARY}")
  if(NOT EXISTS "\${_flowmlp_file}")
    set(flowmlp_FOUND FALSE)
    set(flowmlp_NOT_FOUND_MESSAGE "flowmlp: \${_flowmlp_file} is missing; reinstall with scripts/install.sh")
    return()
  endif()
endforeach()

if(NOT TARGET flowmlp::flowmlp)
  add_library(flowmlp::flowmlp SHARED IMPORTED)
  set_target_properties(flowmlp::flowmlp PROPERTIES
    IMPORTED_LOCATION "\${flowmlp_LIBRARY}"
    IMPORTED_SONAME "$soname"
    INTERFACE_INCLUDE_DIRECTORIES "\${flowmlp_INCLUDE_DIR}")
endif()

if(NOT TARGET flowmlp::flowmlp_static)
  add_library(flowmlp::flowmlp_static STATIC IMPORTED)
  set_target_properties(flowmlp::flowmlp_static PROPERTIES
    IMPORTED_LOCATION "\${flowmlp_STATIC_LIBRARY}"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "\${flowmlp_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "$cmake_libs")
endif()

unset(_flowmlp_file)
unset(_flowmlp_prefix)
EOF

cat >"$lib/cmake/flowmlp/flowmlpConfigVersion.cmake" <<EOF
# Version check for find_package(flowmlp X.Y), written by scripts/install.sh.
# Compatible: the same major version (and, while the major version is 0, the same
# minor version: 0.x releases may break the ABI), not older than requested; 64-bit only.
set(PACKAGE_VERSION "$version")
if(NOT PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
elseif(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif(NOT PACKAGE_FIND_VERSION_MAJOR STREQUAL "$major")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif("$major" STREQUAL "0" AND PACKAGE_FIND_VERSION_COUNT GREATER 1
       AND NOT PACKAGE_FIND_VERSION_MINOR STREQUAL "$(echo "$version" | cut -d. -f2)")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
if(CMAKE_SIZEOF_VOID_P AND NOT CMAKE_SIZEOF_VOID_P STREQUAL "8")
  set(PACKAGE_VERSION "\${PACKAGE_VERSION} (64-bit)")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
endif()
EOF

echo "installed flowmlp $version under $dest$prefix:"
echo "  $inc/flowmlp.h, flowmlp.hpp"
echo "  $lib/libflowmlp.a, libflowmlp.so.$version ($soname, libflowmlp.so)"
echo "  $lib/pkgconfig/flowmlp.pc, flowmlp-static.pc"
echo "  $lib/cmake/flowmlp/flowmlpConfig.cmake, flowmlpConfigVersion.cmake"

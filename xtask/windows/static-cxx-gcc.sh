#!/bin/bash
# (Named *-gcc so that rustc takes it for gcc, not for MSVC's link.exe.)
# The linker of Windows builds made here (x86_64-pc-windows-gnu, see
# .cargo/config.toml): mingw-w64's gcc, with the C++ runtime OpenH264 needs
# linked into the executable rather than left as libstdc++-6.dll, which no
# Windows machine has. libssp answers the stack protector libopus's CMake
# build turns on (`__stack_chk_fail`); rustc passes -nodefaultlibs, so it is
# named here, after every object that may need it (and the C runtime it
# calls, after it).
args=()
for arg in "$@"; do
  case "$arg" in
    -lstdc++) args+=("-l:libstdc++.a") ;;
    *) args+=("$arg") ;;
  esac
done
exec x86_64-w64-mingw32-gcc "${args[@]}" -l:libssp.a -lmsvcrt -ladvapi32 -lkernel32

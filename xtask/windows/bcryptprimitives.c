/* A test-rig shim, never shipped: wine 8.0 has no bcryptprimitives.dll, from
 * which Rust's standard library imports ProcessPrng (its random numbers on
 * Windows 10 and later). Built beside the .exe files the wine tests run, it
 * answers ProcessPrng from RtlGenRandom (advapi32's SystemFunction036),
 * which wine has. Windows itself has the real DLL. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
  while (length > 0) {
    ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
    if (!SystemFunction036(data, chunk)) return FALSE;
    data += chunk;
    length -= chunk;
  }
  return TRUE;
}

/* le.h: explicit little-endian stores and loads at byte offsets, for the format's codecs only. */
#ifndef GS_FORMAT_LE_H
#define GS_FORMAT_LE_H

/* Byte by byte, so the result never depends on the host's endianness or alignment; compilers
 * turn these loops into single moves on little-endian hosts. Private to shim/format. */

#include <stddef.h>
#include <stdint.h>

/* Stores the low `width` bytes of v at p + off, least significant first. */
static inline void gs__le_put(uint8_t *p, size_t off, unsigned width, uint64_t v) {
  for (unsigned i = 0; i < width; i++) p[off + i] = (uint8_t)(v >> (8 * i));
}

/* Loads `width` bytes at off from a payload of n bytes; 0 when the field lies past its end (a
 * record from an older minor version, which did not have the field). */
static inline uint64_t gs__le_get(const uint8_t *p, size_t n, size_t off, unsigned width) {
  uint64_t v = 0;
  if (off + width > n) return 0;
  for (unsigned i = 0; i < width; i++) v |= (uint64_t)p[off + i] << (8 * i);
  return v;
}

#endif

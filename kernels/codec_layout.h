/* codec_layout.h: where header, metas and packed data sit in a compressed buffer (host only). */
#ifndef GS_CODEC_LAYOUT_H
#define GS_CODEC_LAYOUT_H

#include "gactshim.h"
#include "codec_core.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

int gs_codec_validate(const gs_codec_params *p);

/* Normalised parameters (bool: bits 1, group 0) and byte offsets of one buffer. */
typedef struct gs__layout {
  gs_codec_params p;
  uint64_t ngroups, meta_off, data_off, total;
} gs__layout;

static inline int gs__layout_of(const gs_codec_params *p, gs__layout *l) {
  if (gs_codec_validate(p) != 0) return -EINVAL;
  l->p = *p;
  if (p->dtype == GS_DTYPE_BOOL) {
    l->p.bits = 1;
    l->p.group = 0;
    l->ngroups = 0;
  } else {
    l->ngroups = (p->n + p->group - 1) / p->group;
  }
  l->meta_off = GS_FMT_HEADER_BYTES;
  /* Data starts 16-byte aligned so that GPU threads can use wide stores. */
  l->data_off = (l->meta_off + l->ngroups * GS_FMT_META_BYTES + 15u) & ~(uint64_t)15u;
  l->total = l->data_off + (l->p.n + 7) / 8 * l->p.bits;
  return 0;
}

static inline void gs__layout_header(const gs__layout *l, gs__header *h) {
  memset(h, 0, sizeof *h);
  h->magic = GS_FMT_MAGIC;
  h->version = GS_FMT_VERSION;
  h->dtype = (uint8_t)l->p.dtype;
  h->bits = (uint8_t)l->p.bits;
  h->group = l->p.group;
  h->n = l->p.n;
  h->check = gs__header_check(h->dtype, h->bits, h->group, h->n);
}

static inline void gs__layout_write_header(const gs__layout *l, uint8_t *dst) {
  gs__header h;
  gs__layout_header(l, &h);
  memcpy(dst, &h, sizeof h);
}

/* Parses and validates a header; -EINVAL for anything a writer of this version cannot have
 * produced, or a buffer shorter than the layout it announces. */
static inline int gs__layout_read_header(const void *src, size_t bytes, gs__layout *l) {
  gs__header h;
  if (bytes < sizeof h) return -EINVAL;
  memcpy(&h, src, sizeof h);
  if (h.magic != GS_FMT_MAGIC || h.version != GS_FMT_VERSION || h.reserved0 != 0 ||
      h.reserved1 != 0 || h.check != gs__header_check(h.dtype, h.bits, h.group, h.n))
    return -EINVAL;
  gs_codec_params p = {.n = h.n, .dtype = (gs_dtype)h.dtype, .bits = h.bits, .group = h.group,
                       .seed = 0, .tensor_id = 0};
  if (h.dtype == GS_DTYPE_BOOL && (h.bits != 1 || h.group != 0)) return -EINVAL;
  if (gs__layout_of(&p, l) != 0 || l->total > bytes) return -EINVAL;
  return 0;
}

#endif

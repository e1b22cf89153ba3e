/* symbolize.c: function names for recorded instruction pointers, from the modules' ELF symbols. */
#include "report.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct rp_sym {
  uint64_t value, size;
  const char *name;
} rp_sym;

typedef struct rp_elf {
  char *path;
  uint8_t *map;
  size_t len;
  rp_sym *syms;
  size_t n;
} rp_elf;

/* Loaded objects by path, read once per run of the tool. Global: a cache shared by every trace. */
static rp_elf *rp_elves;
static size_t rp_nelves;

static int rp_cmp_sym(const void *a, const void *b) {
  const rp_sym *x = a, *y = b;
  return x->value < y->value ? -1 : x->value > y->value;
}

/* Collects the function symbols of one symbol table section, bounds-checked against the file. */
static void rp_collect(rp_elf *e, const Elf64_Shdr *sh, const Elf64_Shdr *strs) {
  if (sh->sh_offset > e->len || sh->sh_size > e->len - sh->sh_offset || sh->sh_entsize != sizeof(Elf64_Sym))
    return;
  if (strs->sh_offset > e->len || strs->sh_size > e->len - strs->sh_offset) return;
  size_t n = sh->sh_size / sizeof(Elf64_Sym);
  rp_sym *s = realloc(e->syms, (e->n + n) * sizeof(rp_sym));
  if (!s) return;
  e->syms = s;
  const char *strtab = (const char *)e->map + strs->sh_offset;
  for (size_t i = 0; i < n; i++) {
    Elf64_Sym sym;
    memcpy(&sym, e->map + sh->sh_offset + i * sizeof(sym), sizeof(sym));
    if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_value == 0 || sym.st_name >= strs->sh_size) continue;
    if (!memchr(strtab + sym.st_name, '\0', strs->sh_size - sym.st_name)) continue;
    e->syms[e->n++] = (rp_sym){sym.st_value, sym.st_size, strtab + sym.st_name};
  }
}

static void rp_elf_load(rp_elf *e) {
  int fd = open(e->path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0) return;
  if (fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(Elf64_Ehdr)) {
    close(fd);
    return;
  }
  e->len = (size_t)st.st_size;
  e->map = mmap(NULL, e->len, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (e->map == MAP_FAILED) {
    e->map = NULL;
    return;
  }
  Elf64_Ehdr eh;
  memcpy(&eh, e->map, sizeof(eh));
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shoff > e->len ||
      (size_t)eh.e_shnum * sizeof(Elf64_Shdr) > e->len - eh.e_shoff)
    return;
  const Elf64_Shdr *sh = (const Elf64_Shdr *)(e->map + eh.e_shoff);
  /* .symtab when the object is not stripped, .dynsym otherwise (exported functions only). */
  static const unsigned kinds[2] = {SHT_SYMTAB, SHT_DYNSYM};
  for (int k = 0; k < 2 && e->n == 0; k++)
    for (unsigned i = 0; i < eh.e_shnum; i++)
      if (sh[i].sh_type == kinds[k] && sh[i].sh_link < eh.e_shnum) rp_collect(e, &sh[i], &sh[sh[i].sh_link]);
  qsort(e->syms, e->n, sizeof(rp_sym), rp_cmp_sym);
}

static rp_elf *rp_elf_get(const char *path) {
  for (size_t i = 0; i < rp_nelves; i++)
    if (strcmp(rp_elves[i].path, path) == 0) return &rp_elves[i];
  rp_elf *v = realloc(rp_elves, (rp_nelves + 1) * sizeof(rp_elf));
  if (!v) return NULL;
  rp_elves = v;
  rp_elf *e = &rp_elves[rp_nelves++];
  memset(e, 0, sizeof(*e));
  e->path = strdup(path);
  if (e->path) rp_elf_load(e);
  return e;
}

const char *rp_symbolize(const rp_trace *t, uint64_t ip, const char **module, uint64_t *offset) {
  *module = NULL;
  *offset = ip;
  for (size_t i = 0; i < t->nmods; i++) {
    const rp_module *m = &t->mods[i];
    if (ip < m->r.lo || ip >= m->r.hi) continue;
    *module = m->path;
    *offset = ip - m->r.bias;
    rp_elf *e = rp_elf_get(m->path);
    if (!e || !e->n) return NULL;
    /* ip is a return address: ip - 1 lies inside the calling instruction's function. */
    uint64_t a = ip - 1 - m->r.bias;
    size_t lo = 0, hi = e->n;
    while (hi - lo > 1) {
      size_t mid = (lo + hi) / 2;
      if (e->syms[mid].value <= a) lo = mid;
      else hi = mid;
    }
    const rp_sym *s = &e->syms[lo];
    if (s->value > a || (s->size && a >= s->value + s->size)) return NULL;
    return s->name;
  }
  return NULL;
}

void rp_symbolize_cleanup(void) {
  for (size_t i = 0; i < rp_nelves; i++) {
    if (rp_elves[i].map) munmap(rp_elves[i].map, rp_elves[i].len);
    free(rp_elves[i].syms);
    free(rp_elves[i].path);
  }
  free(rp_elves);
  rp_elves = NULL;
  rp_nelves = 0;
}

typedef char *(*rp_demangle_fn)(const char *, char *, size_t *, int *);

/* C++ names read better demangled; libstdc++ is loaded only if a name needs it (the tool itself
 * is C and links no C++ runtime). */
static rp_demangle_fn rp_demangler(void) {
  static bool tried;
  static rp_demangle_fn fn;
  if (!tried) {
    tried = true;
    void *h = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_LOCAL);
    if (h) *(void **)&fn = dlsym(h, "__cxa_demangle");
  }
  return fn;
}

const char *rp_pretty(const char *sym, char *buf, size_t len) {
  rp_demangle_fn dm = strncmp(sym, "_Z", 2) == 0 ? rp_demangler() : NULL;
  int status = -1;
  char *full = dm ? dm(sym, NULL, NULL, &status) : NULL;
  if (!full || status != 0) {
    free(full);
    return sym;
  }
  /* Drop the parameter list: "ns::Class::f(at::Tensor const&)" -> "ns::Class::f". */
  size_t n = strlen(full), depth = 0, cut = n;
  for (size_t i = 0; i < n; i++) {
    if (full[i] == '<') depth++;
    else if (full[i] == '>' && depth) depth--;
    else if (full[i] == '(' && depth == 0 && i > 0) {
      cut = i;
      break;
    }
  }
  snprintf(buf, len, "%.*s", (int)cut, full);
  free(full);
  return buf;
}

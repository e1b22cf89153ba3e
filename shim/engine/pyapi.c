/* pyapi.c: resolves the Python stable-ABI table with dlsym (no link to libpython). */
#include "engine.h"

#include <dlfcn.h>
#include <errno.h>

/* Written once by gs__pyapi_load under the GIL before any hook can call through it. */
gs_pyapi gs__py;

static void *gs__pysym(const char *name, int *missing) {
  void *p = dlsym(RTLD_DEFAULT, name);
  if (p == NULL) {
    gs__log(GS_LOG_ERROR, "Python symbol %s not found; torch hooks stay off", name);
    (*missing)++;
  }
  return p;
}

/* Exception types are exported as `PyObject *PyExc_X`: dlsym gives the variable's address. */
static PyObject *gs__pyexc(const char *name, int *missing) {
  PyObject **slot = gs__pysym(name, missing);
  return slot ? *slot : NULL;
}

int gs__pyapi_load(void) {
  int missing = 0;
#define GS__PYAPI_RESOLVE(ret, name, args) \
  *(void **)(&gs__py.name) = gs__pysym(#name, &missing);
  GS__PYAPI_FUNCS(GS__PYAPI_RESOLVE)
#undef GS__PYAPI_RESOLVE
  gs__py.none = gs__pysym("_Py_NoneStruct", &missing);
  gs__py.py_true = gs__pysym("_Py_TrueStruct", &missing);
  gs__py.exc_runtime = gs__pyexc("PyExc_RuntimeError", &missing);
  gs__py.exc_type = gs__pyexc("PyExc_TypeError", &missing);
  return missing ? -ENOENT : 0;
}

PyObject *gs__py_none(void) {
  gs__py.Py_IncRef(gs__py.none);
  return gs__py.none;
}

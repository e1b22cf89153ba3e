/* pyapi.h: the Python stable-ABI functions the shim calls, resolved with dlsym at run time. */
#ifndef GS_PYAPI_H
#define GS_PYAPI_H

/* libgactshim.so is loaded into every process, Python or not, and one build serves several
 * Python versions: it links no libpython and names no Python symbol. Every function and data
 * object below comes from dlsym(RTLD_DEFAULT) once the interpreter imports our module, and only
 * stable-ABI (limited API) entries and struct layouts are used. */

#include "common.h"

#include <sys/types.h>

typedef struct _object PyObject; /* opaque: reference counts go through Py_IncRef/Py_DecRef */
typedef ssize_t Py_ssize_t;
typedef PyObject *(*PyCFunction)(PyObject *self, PyObject *args);
typedef void (*PyCapsule_Destructor)(PyObject *capsule);

/* Stable-ABI layouts (Include/moduleobject.h, methodobject.h; unchanged since 3.5). */
typedef struct gs_py_head {
  Py_ssize_t ob_refcnt;
  void *ob_type;
} gs_py_head;
typedef struct PyMethodDef {
  const char *ml_name;
  PyCFunction ml_meth;
  int ml_flags;
  const char *ml_doc;
} PyMethodDef;
typedef struct PyModuleDef {
  gs_py_head m_base_head;
  PyObject *(*m_init)(void);
  Py_ssize_t m_index;
  PyObject *m_copy;
  const char *m_name;
  const char *m_doc;
  Py_ssize_t m_size;
  PyMethodDef *m_methods;
  void *m_slots;
  void *m_traverse;
  void *m_clear;
  void *m_free;
} PyModuleDef;

#define GS_METH_VARARGS 0x0001
#define GS_METH_NOARGS 0x0004
#define GS_METH_O 0x0008
#define GS_PYTHON_ABI_VERSION 3

/* X(return type, name, parameter list): every function the shim calls. */
#define GS__PYAPI_FUNCS(X)                                                                  \
  X(PyObject *, PyModule_Create2, (PyModuleDef *, int))                                     \
  X(void, Py_IncRef, (PyObject *))                                                          \
  X(void, Py_DecRef, (PyObject *))                                                          \
  X(PyObject *, PyObject_GetAttr, (PyObject *, PyObject *))                                 \
  X(PyObject *, PyObject_GetAttrString, (PyObject *, const char *))                         \
  X(int, PyObject_SetAttrString, (PyObject *, const char *, PyObject *))                    \
  X(PyObject *, PyObject_Call, (PyObject *, PyObject *, PyObject *))                        \
  X(PyObject *, PyObject_CallObject, (PyObject *, PyObject *))                              \
  X(PyObject *, PyObject_Type, (PyObject *))                                                \
  X(int, PyObject_IsTrue, (PyObject *))                                                     \
  X(PyObject *, PyUnicode_InternFromString, (const char *))                                 \
  X(PyObject *, PyUnicode_FromString, (const char *))                                       \
  X(const char *, PyUnicode_AsUTF8AndSize, (PyObject *, Py_ssize_t *))                      \
  X(PyObject *, PyFloat_FromDouble, (double))                                               \
  X(double, PyFloat_AsDouble, (PyObject *))                                                 \
  X(PyObject *, PyLong_FromLongLong, (long long))                                           \
  X(PyObject *, PyLong_FromUnsignedLongLong, (unsigned long long))                          \
  X(long long, PyLong_AsLongLong, (PyObject *))                                             \
  X(unsigned long long, PyLong_AsUnsignedLongLongMask, (PyObject *))                        \
  X(PyObject *, PyTuple_New, (Py_ssize_t))                                                  \
  X(int, PyTuple_SetItem, (PyObject *, Py_ssize_t, PyObject *))                             \
  X(PyObject *, PyTuple_GetItem, (PyObject *, Py_ssize_t))                                  \
  X(Py_ssize_t, PyTuple_Size, (PyObject *))                                                 \
  X(PyObject *, PyDict_New, (void))                                                         \
  X(int, PyDict_SetItemString, (PyObject *, const char *, PyObject *))                      \
  X(PyObject *, PyCapsule_New, (void *, const char *, PyCapsule_Destructor))                \
  X(void *, PyCapsule_GetPointer, (PyObject *, const char *))                               \
  X(int, PyCapsule_IsValid, (PyObject *, const char *))                                     \
  X(PyObject *, PyWeakref_NewRef, (PyObject *, PyObject *))                                 \
  X(PyObject *, PyWeakref_GetObject, (PyObject *))                                          \
  X(PyObject *, PyErr_Occurred, (void))                                                     \
  X(void, PyErr_Clear, (void))                                                              \
  X(void, PyErr_SetString, (PyObject *, const char *))                                      \
  X(void, PyErr_Fetch, (PyObject **, PyObject **, PyObject **))                             \
  X(void, PyErr_Restore, (PyObject *, PyObject *, PyObject *))                              \
  X(PyObject *, PyEval_SaveThread, (void))                                                  \
  X(void, PyEval_RestoreThread, (PyObject *))

#define GS__PYAPI_MEMBER(ret, name, args) ret(*name) args;

/* The resolved table, with the data objects the shim needs. */
typedef struct gs_pyapi {
  GS__PYAPI_FUNCS(GS__PYAPI_MEMBER)
  PyObject *none;          /* &_Py_NoneStruct */
  PyObject *py_true;       /* &_Py_TrueStruct */
  PyObject *exc_runtime;   /* PyExc_RuntimeError */
  PyObject *exc_type;      /* PyExc_TypeError */
} gs_pyapi;

/* Global because every Python-facing function of the shim calls through it; written once by
 * gs__pyapi_load (under the GIL, before any hook is installed), read-only afterwards. */
extern gs_pyapi gs__py;

/* Resolves the table from the running interpreter. 0, or -ENOENT naming nothing in Python (the
 * interpreter may not be able to raise yet); the caller then refuses to load the module. */
int gs__pyapi_load(void);

/* A new reference to None, for functions that return nothing. */
PyObject *gs__py_none(void);

#endif

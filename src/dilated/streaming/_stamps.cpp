// Many tensors' stamps read and compared in one call: a CPython extension module for dilated.streaming._stamps
// (which compiles this file against the installed torch's own headers and Python's, and imports it from its cache).
//
// A tensor's stamp, as int64 words: its in-place version counter, its storage (the StorageImpl's address), its
// storage offset, its dtype (ScalarType), its number of dimensions, its sizes, its strides. Any in-place op bumps
// the version; `p.data = other` keeps the version counter but changes the storage, the offset, the sizes or the
// strides. Only inline TensorImpl / Storage accessors are used: no layout is guessed.
//
// `Stamps(impls)` reads the stamps of the tensors whose TensorImpl addresses (`t._cdata`) it is given, and holds
// them; its `changed()` (METH_NOARGS: nothing to convert per call) returns 1 + the first tensor whose stamp differs
// now, 0 if none, -1 if torch refused to read one. The caller keeps the tensors alive. The GIL is held throughout
// (the loop takes a few nanoseconds per tensor).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <c10/core/TensorImpl.h>

#include <exception>

namespace {

using Word = long long;
using Impl = c10::TensorImpl;

// A stamp's head: version, storage, offset, dtype << 32 | dim (compared before the sizes and strides).
constexpr Word kHead = 4;

Word version(const Impl *t) { return static_cast<Word>(t->version_counter().current_version()); }
Word storage(const Impl *t) { return reinterpret_cast<Word>(t->unsafe_storage().unsafeGetStorageImpl()); }
Word kind(const Impl *t, Word dim) { return (static_cast<Word>(t->dtype().toScalarType()) << 32) | dim; }

// The stamps held, in arrays of their own (read in order, no word depending on another's value): the tensors, each
// one's head, its dim as read, and its sizes then strides (2 * dim words, one tensor after another).
struct Stamps {
  PyObject_HEAD
  Py_ssize_t n;
  const Impl **impls;
  Word *heads, *dims, *shapes;
};

// Reads the stamps of s's tensors (torch may throw).
void read(Stamps *s) {
  Word *shape = s->shapes;
  for (Py_ssize_t i = 0; i < s->n; ++i) {
    const Impl *t = s->impls[i];
    const c10::IntArrayRef sizes = t->sizes(), strides = t->strides();
    const Word dim = static_cast<Word>(sizes.size());
    Word *head = s->heads + kHead * i;
    head[0] = version(t), head[1] = storage(t), head[2] = t->storage_offset(), head[3] = kind(t, dim);
    s->dims[i] = dim;
    for (Word j = 0; j < dim; ++j) shape[j] = sizes[j], shape[dim + j] = strides[j];
    shape += 2 * dim;
  }
}

// 1 + the first tensor whose stamp differs from the one held, 0 if none. A tensor's head (its dim included) is
// compared before its sizes and strides, so these are never read past its dim as read.
Word first_changed(const Stamps *s) {
  const Impl *const *impls = s->impls;  // (in locals: torch's accessors may call out, which would reload s's fields)
  const Word *head = s->heads, *dims = s->dims, *shape = s->shapes, n = s->n;
  for (Word i = 0; i < n; ++i, head += kHead) {
    const Impl *t = impls[i];
    const Word dim = dims[i];
    const c10::IntArrayRef sizes = t->sizes(), strides = t->strides();
    Word difference = (version(t) ^ head[0]) | (storage(t) ^ head[1]) | (t->storage_offset() ^ head[2]) |
                      (kind(t, static_cast<Word>(sizes.size())) ^ head[3]);
    if (difference) return i + 1;
    for (Word j = 0; j < dim; ++j) difference |= (sizes[j] ^ shape[j]) | (strides[j] ^ shape[dim + j]);
    if (difference) return i + 1;
    shape += 2 * dim;
  }
  return 0;
}

void stamps_dealloc(PyObject *self) {
  Stamps *s = reinterpret_cast<Stamps *>(self);
  PyMem_Free(s->impls);
  PyMem_Free(s->heads);
  PyMem_Free(s->dims);
  PyMem_Free(s->shapes);
  Py_TYPE(self)->tp_free(self);
}

PyObject *refused(const char *what) {
  PyErr_Format(PyExc_RuntimeError, "torch refused to read a tensor's stamp: %s", what);
  return nullptr;
}

template <typename T>
T *allocate(Py_ssize_t count) {
  return static_cast<T *>(PyMem_Malloc(sizeof(T) * (count > 0 ? count : 1)));
}

PyObject *stamps_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
  PyObject *sequence;
  if (kwargs != nullptr && PyDict_GET_SIZE(kwargs) != 0) {
    PyErr_SetString(PyExc_TypeError, "Stamps() takes no keyword arguments");
    return nullptr;
  }
  if (!PyArg_ParseTuple(args, "O:Stamps", &sequence)) return nullptr;
  PyObject *fast = PySequence_Fast(sequence, "Stamps() takes a sequence of TensorImpl addresses");
  if (fast == nullptr) return nullptr;
  Stamps *s = reinterpret_cast<Stamps *>(type->tp_alloc(type, 0));  // (zeroed: the arrays are null until allocated)
  if (s == nullptr) return Py_DECREF(fast), nullptr;
  s->n = PySequence_Fast_GET_SIZE(fast);
  s->impls = allocate<const Impl *>(s->n);
  if (s->impls == nullptr) return Py_DECREF(fast), Py_DECREF(s), PyErr_NoMemory();
  for (Py_ssize_t i = 0; i < s->n; ++i) {
    void *address = PyLong_AsVoidPtr(PySequence_Fast_GET_ITEM(fast, i));
    if (address == nullptr) {
      if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a TensorImpl address is 0");
      return Py_DECREF(fast), Py_DECREF(s), nullptr;
    }
    s->impls[i] = static_cast<const Impl *>(address);
  }
  Py_DECREF(fast);
  try {
    Py_ssize_t words = 0;
    for (Py_ssize_t i = 0; i < s->n; ++i) words += 2 * static_cast<Py_ssize_t>(s->impls[i]->dim());
    s->heads = allocate<Word>(kHead * s->n), s->dims = allocate<Word>(s->n), s->shapes = allocate<Word>(words);
    if (s->heads == nullptr || s->dims == nullptr || s->shapes == nullptr) return Py_DECREF(s), PyErr_NoMemory();
    read(s);
  } catch (const std::exception &error) {
    return Py_DECREF(s), refused(error.what());
  } catch (...) {
    return Py_DECREF(s), refused("unknown error");
  }
  return reinterpret_cast<PyObject *>(s);
}

PyObject *stamps_changed(PyObject *self, PyObject *) {
  Word first;
  try {
    first = first_changed(reinterpret_cast<const Stamps *>(self));
  } catch (...) {
    first = -1;
  }
  return PyLong_FromLongLong(first);
}

PyObject *stamps_words(PyObject *self, PyObject *) {
  const Stamps *s = reinterpret_cast<const Stamps *>(self);
  PyObject *list = PyList_New(0);
  const Word *shape = s->shapes;
  for (Py_ssize_t i = 0; list != nullptr && i < s->n; ++i) {
    const Word *head = s->heads + kHead * i, dim = s->dims[i];
    const Word stamp[] = {head[0], head[1], head[2], head[3] >> 32, dim};
    for (Word k = 0; list != nullptr && k < 5 + 2 * dim; ++k) {
      PyObject *word = PyLong_FromLongLong(k < 5 ? stamp[k] : shape[k - 5]);
      if (word == nullptr || PyList_Append(list, word) < 0) Py_CLEAR(list);
      Py_XDECREF(word);
    }
    shape += 2 * dim;
  }
  return list;
}

PyMethodDef stamps_methods[] = {
    {"changed", stamps_changed, METH_NOARGS,
     "1 + the first tensor whose stamp differs from the one read, 0 if none, -1 if torch refused to read one."},
    {"words", stamps_words, METH_NOARGS,
     "The stamps held, as a list of ints: each tensor's version, storage, offset, dtype, dim, sizes, strides."},
    {nullptr, nullptr, 0, nullptr},
};

PyTypeObject StampsType = {PyVarObject_HEAD_INIT(nullptr, 0)};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "dilated_stamps", "Many tensors' stamps read in one call.", -1};

}  // namespace

PyMODINIT_FUNC PyInit_dilated_stamps() {
  StampsType.tp_name = "dilated_stamps.Stamps";
  StampsType.tp_basicsize = sizeof(Stamps);
  StampsType.tp_flags = Py_TPFLAGS_DEFAULT;
  StampsType.tp_doc = "Stamps(impls): the stamps of the tensors at these TensorImpl addresses, read now.";
  StampsType.tp_new = stamps_new;
  StampsType.tp_dealloc = stamps_dealloc;
  StampsType.tp_methods = stamps_methods;
  if (PyType_Ready(&StampsType) < 0) return nullptr;
  PyObject *m = PyModule_Create(&module);
  if (m == nullptr) return nullptr;
  Py_INCREF(&StampsType);
  if (PyModule_AddObject(m, "Stamps", reinterpret_cast<PyObject *>(&StampsType)) < 0) {
    Py_DECREF(&StampsType);
    Py_DECREF(m);
    return nullptr;
  }
  return m;
}

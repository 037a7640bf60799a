// Many tensors' stamps read and compared in one call: a CPython extension module for dilated.streaming._stamps
// (which compiles this file against the installed torch's own headers and Python's, and imports it from its cache).
//
// A tensor's stamp, as int64 words: its in-place version counter, its storage (the StorageImpl's address), its
// storage offset, its dtype (ScalarType), its number of dimensions, its sizes, its strides. Any in-place op bumps
// the version; `p.data = other` keeps the version counter but changes the storage, the offset, the sizes or the
// strides. Only inline TensorImpl / Storage accessors are used: no layout is guessed.
//
// `Stamps(impls)` reads the stamps of the tensors whose TensorImpl addresses (`t._cdata`) it is given, and holds
// them; its `changed()` returns 1 + the first tensor whose stamp differs now, 0 if none, -1 if torch refused to read
// one. The caller keeps the tensors alive. The GIL is held throughout (the loop is a fraction of a microsecond).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <c10/core/TensorImpl.h>

#include <exception>

namespace {

using Word = long long;
using Impl = c10::TensorImpl;

// The stamp's first words (before the sizes and strides).
constexpr Word kHead = 5;

void head(const Impl *t, Word dim, Word *out) {
  out[0] = static_cast<Word>(t->version_counter().current_version());
  out[1] = reinterpret_cast<Word>(t->unsafe_storage().unsafeGetStorageImpl());
  out[2] = t->storage_offset();
  out[3] = static_cast<Word>(t->dtype().toScalarType());
  out[4] = dim;
}

// The stamp of t written to out (kHead + 2 * dim words): the number of words.
Word stamp(const Impl *t, Word *out) {
  const c10::IntArrayRef sizes = t->sizes(), strides = t->strides();
  const Word dim = static_cast<Word>(sizes.size());
  head(t, dim, out);
  for (Word j = 0; j < dim; ++j) out[kHead + j] = sizes[j], out[kHead + dim + j] = strides[j];
  return kHead + 2 * dim;
}

// 1 + the first of the n tensors whose stamp differs from seen, 0 if none. Each tensor's head (its dim included) is
// compared before its sizes and strides, so seen is never read past a stamp of another dim.
Word first_changed(const Impl *const *impls, Word n, const Word *seen) {
  for (Word i = 0; i < n; ++i) {
    const Impl *t = impls[i];
    const c10::IntArrayRef sizes = t->sizes(), strides = t->strides();
    const Word dim = static_cast<Word>(sizes.size());
    Word now[kHead], difference = 0;
    head(t, dim, now);
    for (Word j = 0; j < kHead; ++j) difference |= now[j] ^ seen[j];
    seen += kHead;
    for (Word j = 0; j < dim && !difference; ++j) difference |= (sizes[j] ^ seen[j]) | (strides[j] ^ seen[dim + j]);
    if (difference) return i + 1;
    seen += 2 * dim;
  }
  return 0;
}

struct Stamps {
  PyObject_HEAD
  Py_ssize_t n, words;
  const Impl **impls;
  Word *seen;
};

void stamps_dealloc(PyObject *self) {
  Stamps *s = reinterpret_cast<Stamps *>(self);
  PyMem_Free(s->impls);
  PyMem_Free(s->seen);
  Py_TYPE(self)->tp_free(self);
}

PyObject *refused(const char *what) {
  PyErr_Format(PyExc_RuntimeError, "torch refused to read a tensor's stamp: %s", what);
  return nullptr;
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
  Stamps *s = reinterpret_cast<Stamps *>(type->tp_alloc(type, 0));
  const Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
  if (s == nullptr) return Py_DECREF(fast), nullptr;
  s->n = n;
  s->impls = static_cast<const Impl **>(PyMem_Malloc(sizeof(Impl *) * (n ? n : 1)));
  if (s->impls == nullptr) return Py_DECREF(fast), Py_DECREF(s), PyErr_NoMemory();
  for (Py_ssize_t i = 0; i < n; ++i) {
    void *address = PyLong_AsVoidPtr(PySequence_Fast_GET_ITEM(fast, i));
    if (address == nullptr) {
      if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a TensorImpl address is 0");
      return Py_DECREF(fast), Py_DECREF(s), nullptr;
    }
    s->impls[i] = static_cast<const Impl *>(address);
  }
  Py_DECREF(fast);
  try {
    for (Py_ssize_t i = 0; i < n; ++i) s->words += kHead + 2 * static_cast<Py_ssize_t>(s->impls[i]->dim());
    s->seen = static_cast<Word *>(PyMem_Malloc(sizeof(Word) * (s->words ? s->words : 1)));
    if (s->seen == nullptr) return Py_DECREF(s), PyErr_NoMemory();
    Word *out = s->seen;
    for (Py_ssize_t i = 0; i < n; ++i) out += stamp(s->impls[i], out);
  } catch (const std::exception &error) {
    return Py_DECREF(s), refused(error.what());
  } catch (...) {
    return Py_DECREF(s), refused("unknown error");
  }
  return reinterpret_cast<PyObject *>(s);
}

PyObject *stamps_changed(PyObject *self, PyObject *) {
  const Stamps *s = reinterpret_cast<const Stamps *>(self);
  Word first;
  try {
    first = first_changed(s->impls, s->n, s->seen);
  } catch (...) {
    first = -1;
  }
  return PyLong_FromLongLong(first);
}

PyObject *stamps_words(PyObject *self, PyObject *) {
  const Stamps *s = reinterpret_cast<const Stamps *>(self);
  PyObject *list = PyList_New(s->words);
  if (list == nullptr) return nullptr;
  for (Py_ssize_t k = 0; k < s->words; ++k) {
    PyObject *word = PyLong_FromLongLong(s->seen[k]);
    if (word == nullptr) return Py_DECREF(list), nullptr;
    PyList_SET_ITEM(list, k, word);
  }
  return list;
}

PyMethodDef stamps_methods[] = {
    {"changed", stamps_changed, METH_NOARGS,
     "1 + the first tensor whose stamp differs from the one read, 0 if none, -1 if torch refused to read one."},
    {"words", stamps_words, METH_NOARGS, "The stamps read, every tensor's words in order, as a list of ints."},
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

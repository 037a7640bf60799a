// Many tensors' stamps read in one call, for dilated.streaming._stamps (which compiles this file against the
// installed torch's own headers and loads it with ctypes).
//
// A tensor's stamp, as int64 words: its in-place version counter, its storage (the StorageImpl's address), its
// storage offset, its dtype (ScalarType), its number of dimensions, its sizes, its strides. Any in-place op bumps
// the version; `p.data = other` keeps the version counter but changes the storage, the offset, the sizes or the
// strides. Only inline TensorImpl / Storage accessors are used: no layout is guessed.
#include <c10/core/TensorImpl.h>

namespace {

using Word = long long;

const c10::TensorImpl *impl(const Word *impls, Word i) { return reinterpret_cast<const c10::TensorImpl *>(impls[i]); }

// The stamp's first words (before the sizes and strides).
constexpr Word kHead = 5;

void head(const c10::TensorImpl *t, Word dim, Word *out) {
  out[0] = static_cast<Word>(t->version_counter().current_version());
  out[1] = reinterpret_cast<Word>(t->unsafe_storage().unsafeGetStorageImpl());
  out[2] = t->storage_offset();
  out[3] = static_cast<Word>(t->dtype().toScalarType());
  out[4] = dim;
}

}  // namespace

// Writes the stamps of the n tensors (TensorImpl addresses) to out: the number of words written, -1 if they need
// more than capacity words, -2 if torch refused to read a tensor (e.g. an inference tensor has no version).
extern "C" Word dilated_stamps(const Word *impls, Word n, Word *out, Word capacity) {
  Word k = 0;
  try {
    for (Word i = 0; i < n; ++i) {
      const c10::TensorImpl *t = impl(impls, i);
      const c10::IntArrayRef sizes = t->sizes(), strides = t->strides();
      const Word dim = static_cast<Word>(sizes.size());
      if (k + kHead + 2 * dim > capacity) return -1;
      head(t, dim, out + k);
      k += kHead;
      for (Word j = 0; j < dim; ++j) out[k + j] = sizes[j], out[k + dim + j] = strides[j];
      k += 2 * dim;
    }
  } catch (...) {
    return -2;
  }
  return k;
}

// 1 + the first of the n tensors whose stamp differs from seen (written by dilated_stamps for the same tensors), 0 if
// none (so that "nonzero" reads "changed"), -1 if torch refused to read a tensor. Each tensor's head (its dim
// included) is compared before its sizes and strides, so seen is never read past a stamp of another dim.
extern "C" Word dilated_changed(const Word *impls, Word n, const Word *seen) {
  try {
    for (Word i = 0; i < n; ++i) {
      const c10::TensorImpl *t = impl(impls, i);
      const c10::IntArrayRef sizes = t->sizes(), strides = t->strides();
      const Word dim = static_cast<Word>(sizes.size());
      Word now[kHead], difference = 0;
      head(t, dim, now);
      for (Word j = 0; j < kHead; ++j) difference |= now[j] ^ seen[j];
      if (difference) return i + 1;
      seen += kHead;
      for (Word j = 0; j < dim; ++j) difference |= (sizes[j] ^ seen[j]) | (strides[j] ^ seen[dim + j]);
      if (difference) return i + 1;
      seen += 2 * dim;
    }
  } catch (...) {
    return -1;
  }
  return 0;
}

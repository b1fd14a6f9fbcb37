/* Whitespace collapsing for the exact-dedupe hash, compiled ahead of time: the twin of
 * `exact_dedupe.py`'s numba kernel (same definition, same bytes out; tests/test_exact_dedupe.py
 * runs both). Built at install when a C compiler is there, it spares each process numba's
 * start-up on the hashing path.
 *
 * collapse(data, offsets, out, out_offsets, table, suspect)
 *   data: UTF-8 bytes of n strings at int64 `offsets` (n + 1 of them, into data);
 *   out: writable, at least offsets[n] - offsets[0] bytes (at least 1);
 *   out_offsets: writable int64, n + 1; table: uint8 per code point (1: NFC may change it,
 *   2: a Unicode space); suspect: writable uint8, n, set to 1 for a row holding a code point
 *   NFC may change (or one past the table).
 * Each string is stripped and each whitespace run (as `str.split` sees it) becomes one space.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define LOW7 0x7F7F7F7F7F7F7F7FULL
#define HIGH 0x8080808080808080ULL
#define SPACES 0x2020202020202020ULL

/* 0 = ASCII non-space, 1 = ASCII whitespace (\t \n \v \f \r, \x1c-\x1f, ' '), 2 = non-ASCII */
static uint8_t byte_class[256];

/* 0 if the 8 bytes need the one-byte step, else 1 + (is the last byte a space). Plain: all
 * ASCII, none a control or whitespace other than ' ', no two spaces side by side, and no
 * space first when `prev` (the byte before was a space, or this is the string's start). */
static inline uint64_t plain_word(uint64_t word, uint64_t prev) {
    uint64_t below_space = (word - SPACES) & ~word & HIGH;
    if ((word & HIGH) | below_space)
        return 0;
    uint64_t x = word ^ SPACES;
    uint64_t spaces = ~(((x & LOW7) + LOW7) | x | LOW7); /* 0x80 in every byte that is ' ' */
    if ((spaces & (spaces >> 8)) || (prev && (spaces & 0x80)))
        return 0;
    return 1 + (spaces >> 63);
}

static void collapse_rows(const uint8_t *restrict data, const int64_t *restrict offsets,
                          Py_ssize_t n, uint8_t *restrict out, int64_t *restrict out_offsets,
                          const uint8_t *restrict table, uint64_t table_len,
                          uint8_t *restrict suspect) {
    uint64_t o = 0;
    for (Py_ssize_t d = 0; d < n; d++) {
        out_offsets[d] = (int64_t)o;
        uint64_t start = o, prev = 1; /* leading spaces never advance the output */
        uint64_t i = (uint64_t)offsets[d], end = (uint64_t)offsets[d + 1];
        while (i < end) {
            if (i + 8 <= end) {
                uint64_t word;
                memcpy(&word, data + i, 8);
                uint64_t plain = plain_word(word, prev);
                if (plain) {
                    memcpy(out + o, &word, 8);
                    o += 8;
                    i += 8;
                    prev = plain - 1;
                    continue;
                }
            }
            uint8_t c = data[i];
            uint64_t cls = byte_class[c];
            if (cls == 2) {
                uint64_t width = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4, cp = 0x110000;
                if (i + width > end) /* cut short (not UTF-8): copy what is left */
                    width = end - i;
                else if (width == 2)
                    cp = ((uint64_t)(c & 0x1F) << 6) | (data[i + 1] & 0x3F);
                else if (width == 3)
                    cp = ((uint64_t)(c & 0x0F) << 12) | ((uint64_t)(data[i + 1] & 0x3F) << 6)
                         | (data[i + 2] & 0x3F);
                uint8_t kind = cp < table_len ? table[cp] : 1;
                if (kind != 2) {
                    if (kind == 1)
                        suspect[d] = 1;
                    for (uint64_t k = 0; k < width; k++)
                        out[o + k] = data[i + k];
                    o += width;
                    prev = 0;
                    i += width;
                    continue;
                }
                cls = 1;
                c = ' ';
                i += width - 1;
            }
            out[o] = cls ? ' ' : c;
            o += 1 - (cls & prev);
            prev = cls;
            i += 1;
        }
        if (prev == 1 && o > start)
            o -= 1; /* the trailing run left one space behind */
    }
    out_offsets[n] = (int64_t)o;
}

static PyObject *collapse(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer data, offsets, out, out_offsets, table, suspect;
    if (!PyArg_ParseTuple(args, "y*y*w*w*y*w*", &data, &offsets, &out, &out_offsets, &table,
                          &suspect))
        return NULL;
    Py_ssize_t n = offsets.len / 8 - 1;
    const int64_t *offs = (const int64_t *)offsets.buf;
    int ok = offsets.len % 8 == 0 && n >= 0 && out_offsets.len >= (n + 1) * 8
             && suspect.len >= n;
    for (Py_ssize_t d = 0; ok && d < n; d++) /* so that no row reads or writes out of range */
        ok = offs[d] >= offs[0] && offs[d] <= offs[d + 1];
    ok = ok && offs[n] <= data.len && offs[n] - offs[0] <= out.len;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        collapse_rows((const uint8_t *)data.buf, offs, n, (uint8_t *)out.buf,
                      (int64_t *)out_offsets.buf, (const uint8_t *)table.buf,
                      (uint64_t)table.len, (uint8_t *)suspect.buf);
        Py_END_ALLOW_THREADS
    } else {
        PyErr_SetString(PyExc_ValueError, "collapse: buffers do not match the offsets");
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&out);
    PyBuffer_Release(&out_offsets);
    PyBuffer_Release(&table);
    PyBuffer_Release(&suspect);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"collapse", collapse, METH_VARARGS,
     "collapse(data, offsets, out, out_offsets, table, suspect): strip and collapse rows"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_whitespace", "Whitespace collapsing, compiled.", -1, methods,
};

PyMODINIT_FUNC PyInit__whitespace(void) {
    static const uint8_t spaces[] = {9, 10, 11, 12, 13, 28, 29, 30, 31, 32};
    for (size_t k = 0; k < sizeof spaces; k++)
        byte_class[spaces[k]] = 1;
    for (int c = 0x80; c < 256; c++)
        byte_class[c] = 2;
    return PyModule_Create(&module);
}

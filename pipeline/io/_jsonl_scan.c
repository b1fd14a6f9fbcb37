/* The JSON Lines screen's one pass, compiled ahead of time: the twin of `jsonl_scan.py`'s
 * numba kernel (same definition, same results; tests/test_jsonl_scan.py runs both). Built at
 * install when a C compiler is there, it spares each process numba's start-up (~0.6 s: its
 * target, registries and BLAS check) on the read path.
 *
 * count_newlines(data) -> the number of b"\n" in data: room enough, plus one, for
 * scan_lines(data, depth_limit, ends, flagged) -> count
 *   data: the block (any bytes-like); ends (int64) and flagged (uint8): writable. Fills each
 *   line's end and flag (as `jsonl_scan.scan_lines` defines them); returns how many.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define ONES 0x0101010101010101ULL
#define HIGH 0x8080808080808080ULL

static inline uint64_t has_byte(uint64_t word, uint64_t pattern) {
    uint64_t v = word ^ pattern;
    return (v - ONES) & ~v & HIGH;
}

/* Nonzero iff the eight bytes hold a newline, `{` or `[` (`[` | 0x20 == `{`), `I` or `N`. */
static inline uint64_t special(uint64_t word) {
    return has_byte(word, 0x0A0A0A0A0A0A0A0AULL)
           | has_byte(word | 0x2020202020202020ULL, 0x7B7B7B7B7B7B7B7BULL)
           | has_byte(word, 0x4949494949494949ULL) | has_byte(word, 0x4E4E4E4E4E4E4E4EULL);
}

/* After optional JSON whitespace (newlines included), a `,`, `}` or `]` at or after j. */
static int closed_after(const uint8_t *data, Py_ssize_t n, Py_ssize_t j) {
    while (j < n && (data[j] == ' ' || data[j] == '\t' || data[j] == '\r' || data[j] == '\n'))
        j++;
    return j < n && (data[j] == ',' || data[j] == '}' || data[j] == ']');
}

/* `Inf` at i, or `-NaN` with its `N` at i, closed as a JSON value would be. */
static int arrow_only_number(const uint8_t *data, Py_ssize_t n, Py_ssize_t i) {
    if (i + 2 >= n)
        return 0;
    if (data[i] == 'I')
        return data[i + 1] == 'n' && data[i + 2] == 'f' && closed_after(data, n, i + 3);
    return i >= 1 && data[i - 1] == '-' && data[i + 1] == 'a' && data[i + 2] == 'N'
           && closed_after(data, n, i + 3);
}

typedef struct {
    Py_ssize_t lines, brackets;
    int odd;
} ScanState;

/* One byte; returns -1 when `ends` has no room for the line it closes. */
static inline int step(const uint8_t *data, Py_ssize_t n, Py_ssize_t i, int64_t *ends,
                       uint8_t *flagged, Py_ssize_t capacity, Py_ssize_t depth_limit,
                       ScanState *s) {
    uint8_t b = data[i];
    if (b == '\n') {
        if (s->lines >= capacity)
            return -1;
        ends[s->lines] = i;
        flagged[s->lines] = s->odd || s->brackets >= depth_limit;
        s->lines++;
        s->brackets = 0;
        s->odd = 0;
    } else if (b == '{' || b == '[') {
        s->brackets++;
    } else if ((b == 'I' || b == 'N') && arrow_only_number(data, n, i)) {
        s->odd = 1;
    }
    return 0;
}

#define CHUNK 32 /* words per run tested at once: a newline or `{` is in ~1 run in 4 of prose */

static inline uint64_t load64(const uint8_t *p) {
    uint64_t word;
    memcpy(&word, p, 8);
    return word;
}

static Py_ssize_t scan(const uint8_t *data, Py_ssize_t n, Py_ssize_t depth_limit,
                       int64_t *ends, uint8_t *flagged, Py_ssize_t capacity) {
    ScanState s = {0, 0, 0};
    Py_ssize_t i = 0;
    while (i + 8 <= n) {
        /* a run tested as a whole first (a loop the compiler vectorises), then word by word */
        Py_ssize_t words = (n - i) / 8 < CHUNK ? (n - i) / 8 : CHUNK;
        uint64_t seen = 0;
        for (Py_ssize_t k = 0; k < words; k++)
            seen |= special(load64(data + i + 8 * k));
        for (Py_ssize_t k = 0; seen && k < words; k++) {
            if (!special(load64(data + i + 8 * k)))
                continue;
            for (Py_ssize_t b = i + 8 * k; b < i + 8 * k + 8; b++)
                if (step(data, n, b, ends, flagged, capacity, depth_limit, &s) < 0)
                    return -1;
        }
        i += 8 * words;
    }
    for (; i < n; i++)
        if (step(data, n, i, ends, flagged, capacity, depth_limit, &s) < 0)
            return -1;
    if (n && data[n - 1] != '\n') {
        if (s.lines >= capacity)
            return -1;
        ends[s.lines] = n;
        flagged[s.lines] = s.odd || s.brackets >= depth_limit;
        s.lines++;
    }
    return s.lines;
}

static int writable(Py_buffer *view, Py_ssize_t itemsize, const char *name) {
    if (view->readonly || view->len % itemsize) {
        PyErr_Format(PyExc_ValueError, "%s: a writable buffer of %zd-byte items is needed",
                     name, itemsize);
        return 0;
    }
    return 1;
}

static PyObject *scan_lines(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer data, ends, flagged;
    Py_ssize_t depth_limit, count = -1;
    if (!PyArg_ParseTuple(args, "y*nw*w*", &data, &depth_limit, &ends, &flagged))
        return NULL;
    if (writable(&ends, 8, "ends") && writable(&flagged, 1, "flagged")) {
        Py_ssize_t capacity = ends.len / 8 < flagged.len ? ends.len / 8 : flagged.len;
        Py_BEGIN_ALLOW_THREADS
        count = scan((const uint8_t *)data.buf, data.len, depth_limit, (int64_t *)ends.buf,
                     (uint8_t *)flagged.buf, capacity);
        Py_END_ALLOW_THREADS
        if (count < 0)
            PyErr_SetString(PyExc_ValueError, "ends: more lines than room for them");
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&ends);
    PyBuffer_Release(&flagged);
    return count < 0 ? NULL : PyLong_FromSsize_t(count);
}

static PyObject *count_newlines(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*", &data))
        return NULL;
    Py_ssize_t count = 0;
    const char *p = data.buf, *end = p + data.len;
    Py_BEGIN_ALLOW_THREADS
    while (p < end && (p = memchr(p, '\n', end - p)) != NULL) {
        count++;
        p++;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    return PyLong_FromSsize_t(count);
}

static PyMethodDef methods[] = {
    {"count_newlines", count_newlines, METH_VARARGS, "count_newlines(data) -> count"},
    {"scan_lines", scan_lines, METH_VARARGS,
     "scan_lines(data, depth_limit, ends, flagged) -> number of lines"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jsonl_scan", "The JSON Lines screen's compiled pass.", -1, methods,
};

PyMODINIT_FUNC PyInit__jsonl_scan(void) { return PyModule_Create(&module); }

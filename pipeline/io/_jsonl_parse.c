/* JSON Lines parsed in one pass, for the common shape: a flat object whose wanted keys (text,
 * id, domain) are top-level. It is sound, not complete: a line it accepts (FAST) is read
 * exactly as `jsonl.line_result` reads it (`json.loads`, then the field rules), and any line it
 * is not sure of (SLOW) goes to that line path, which writes its row or its reject. So it
 * never needs to explain an error; it only needs to recognise the lines that have none.
 *
 * parse_block(block, text_key, id_key, domain_key, read_domain, depth_limit, id_prefix, base,
 *             unknown, kinds, ends, text_data, text_offsets, id_data, id_offsets,
 *             domain_data, domain_offsets) -> (lines, rows, text_bytes, id_bytes, domain_bytes)
 *
 *   block: the lines (each ends in '\n', but the last may not);
 *   kinds (uint8) and ends (int64): per line, BLANK 0 / FAST 1 / SLOW 2 and its newline's
 *   offset; the three outputs are Arrow string buffers (int32 offsets) of the FAST lines:
 *   text; id (a string as decoded, an integer as written, else id_prefix + the line's offset
 *   base + start); domain (when read_domain, else untouched but for domain_offsets[0]; a
 *   missing, null or empty one becomes `unknown`).
 *
 * FAST asks of a line: JSON whitespace, an object, whitespace; keys with escapes at most 256
 * bytes long (they are decoded to be compared); each wanted key at most once, with text a
 * string, id a string, an integer (not -0) or null, and domain a string or null; valid UTF-8
 * in every string, no control character in one, no unpaired surrogate escape; numbers of at
 * most 64 characters in JSON's own grammar (not NaN/Infinity); nesting under depth_limit.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum { BLANK = 0, FAST = 1, SLOW = 2 };
enum { K_NONE = 0, K_TEXT = 1, K_ID = 2, K_DOMAIN = 4 };
#define ONES 0x0101010101010101ULL
#define HIGH 0x8080808080808080ULL
#define MAX_NUMBER 64
#define MAX_DEPTH 4096
#define MAX_ESCAPED_KEY 256

typedef struct {
    uint8_t *data;
    int32_t *offsets;
    int64_t len;
} Column;

typedef struct {
    const uint8_t *p, *end;
} Cursor;

static inline uint64_t load64(const uint8_t *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static inline uint64_t has_byte(uint64_t w, uint64_t pattern) {
    uint64_t v = w ^ pattern;
    return (v - ONES) & ~v & HIGH;
}

/* Nonzero iff one of the 8 bytes is '"', '\\', a control character or not ASCII. */
static inline uint64_t string_special(uint64_t w) {
    return (w & HIGH) | ((w - 0x20 * ONES) & ~w & HIGH) | has_byte(w, 0x22 * ONES)
           | has_byte(w, 0x5C * ONES);
}

static inline void skip_ws(Cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
        c->p++;
}

static inline int hex4(const uint8_t *p, uint32_t *out) {
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        uint8_t h = p[k];
        uint32_t d;
        if (h >= '0' && h <= '9')
            d = h - '0';
        else if (h >= 'a' && h <= 'f')
            d = h - 'a' + 10;
        else if (h >= 'A' && h <= 'F')
            d = h - 'A' + 10;
        else
            return 0;
        v = v << 4 | d;
    }
    *out = v;
    return 1;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), 0 if invalid (as Python's
 * strict decoder sees it: no overlong form, no surrogate, nothing past U+10FFFF). */
static inline int utf8_sequence(const uint8_t *p, const uint8_t *end) {
    uint8_t c = p[0];
    int n;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (end - p < n || p[1] < lo || p[1] > hi)
        return 0;
    for (int k = 2; k < n; k++)
        if ((p[k] & 0xC0) != 0x80)
            return 0;
    return n;
}

static inline uint8_t *put_utf8(uint8_t *o, uint32_t cp) {
    if (cp < 0x80) {
        *o++ = (uint8_t)cp;
    } else if (cp < 0x800) {
        *o++ = (uint8_t)(0xC0 | cp >> 6);
        *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (uint8_t)(0xE0 | cp >> 12);
        *o++ = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (uint8_t)(0xF0 | cp >> 18);
        *o++ = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
        *o++ = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* A string at c->p (its opening quote), decoded into `out` when not NULL (then `*written` is
 * the end of what was written). Returns 0 if the line must take the slow path. `escaped` is
 * set when the raw string held a backslash. */
static int string(Cursor *c, uint8_t *out, uint8_t **written, int *escaped) {
    const uint8_t *p = c->p + 1, *end = c->end;
    uint8_t *o = out;
    *escaped = 0;
    for (;;) {
        while (end - p >= 8) {
            uint64_t w = load64(p);
            if (string_special(w))
                break;
            if (o) {
                memcpy(o, &w, 8);
                o += 8;
            }
            p += 8;
        }
        if (p >= end)
            return 0; /* unterminated */
        uint8_t ch = *p;
        if (ch == '"') {
            c->p = p + 1;
            if (written)
                *written = o;
            return 1;
        }
        if (ch < 0x20)
            return 0; /* json.loads (strict) rejects raw control characters */
        if (ch < 0x80 && ch != '\\') {
            if (o)
                *o++ = ch;
            p++;
            continue;
        }
        if (ch >= 0x80) {
            int n = utf8_sequence(p, end);
            if (!n)
                return 0;
            if (o) {
                memcpy(o, p, (size_t)n);
                o += n;
            }
            p += n;
            continue;
        }
        *escaped = 1;
        if (end - p < 2)
            return 0;
        uint8_t e = p[1], plain;
        switch (e) {
        case '"': plain = '"'; break;
        case '\\': plain = '\\'; break;
        case '/': plain = '/'; break;
        case 'b': plain = '\b'; break;
        case 'f': plain = '\f'; break;
        case 'n': plain = '\n'; break;
        case 'r': plain = '\r'; break;
        case 't': plain = '\t'; break;
        case 'u': {
            uint32_t cp, low;
            if (end - p < 6 || !hex4(p + 2, &cp))
                return 0;
            p += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return 0; /* an unpaired low surrogate */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, &low)
                    || low < 0xDC00 || low > 0xDFFF)
                    return 0; /* an unpaired high surrogate */
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                p += 6;
            }
            if (o)
                o = put_utf8(o, cp);
            continue;
        }
        default:
            return 0;
        }
        if (o)
            *o++ = plain;
        p += 2;
    }
}

static inline int is_digit(uint8_t ch) { return ch >= '0' && ch <= '9'; }

/* A number in JSON's grammar at c->p; returns its length (0: not one, or too long), and sets
 * `integer` when it has no fraction or exponent. */
static Py_ssize_t number(Cursor *c, int *integer) {
    const uint8_t *p = c->p, *end = c->end, *start = p;
    *integer = 1;
    if (p < end && *p == '-')
        p++;
    if (p >= end || !is_digit(*p))
        return 0;
    if (*p == '0')
        p++;
    else
        while (p < end && is_digit(*p))
            p++;
    if (p < end && *p == '.') {
        *integer = 0;
        p++;
        if (p >= end || !is_digit(*p))
            return 0;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *integer = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p))
            return 0;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p - start > MAX_NUMBER)
        return 0;
    c->p = p;
    return p - start;
}

static inline int literal(Cursor *c, const char *word, Py_ssize_t n) {
    if (c->end - c->p < n || memcmp(c->p, word, (size_t)n) != 0)
        return 0;
    c->p += n;
    return 1;
}

/* Any JSON value, checked and skipped; containers with an explicit stack. */
static int skip_value(Cursor *c, Py_ssize_t depth_limit, Py_ssize_t depth) {
    char stack[MAX_DEPTH];
    Py_ssize_t top = 0;
    int escaped, integer;
    for (;;) {
        /* a value */
        skip_ws(c);
        if (c->p >= c->end)
            return 0;
        uint8_t ch = *c->p;
        if (ch == '{' || ch == '[') {
            if (depth + top + 1 >= depth_limit || top + 1 >= MAX_DEPTH)
                return 0;
            stack[top++] = (char)ch;
            c->p++;
            skip_ws(c);
            if (c->p < c->end && *c->p == (ch == '{' ? '}' : ']')) {
                c->p++;
                top--;
                goto after_value;
            }
            if (ch == '{')
                goto member;
            continue;
        } else if (ch == '"') {
            if (!string(c, NULL, NULL, &escaped))
                return 0;
        } else if (ch == 't') {
            if (!literal(c, "true", 4))
                return 0;
        } else if (ch == 'f') {
            if (!literal(c, "false", 5))
                return 0;
        } else if (ch == 'n') {
            if (!literal(c, "null", 4))
                return 0;
        } else if (!number(c, &integer))
            return 0;
    after_value:
        for (;;) {
            if (top == 0)
                return 1;
            skip_ws(c);
            if (c->p >= c->end)
                return 0;
            ch = *c->p++;
            char open = stack[top - 1];
            if (ch == ',') {
                if (open == '{')
                    goto member;
                break; /* the next array element */
            }
            if ((open == '{' && ch == '}') || (open == '[' && ch == ']')) {
                top--;
                continue;
            }
            return 0;
        }
        continue;
    member:
        skip_ws(c);
        if (c->p >= c->end || *c->p != '"' || !string(c, NULL, NULL, &escaped))
            return 0;
        skip_ws(c);
        if (c->p >= c->end || *c->p != ':')
            return 0;
        c->p++;
    }
}

typedef struct {
    const uint8_t *key[3];
    Py_ssize_t key_len[3];
    int read_domain;
    Py_ssize_t depth_limit;
    const uint8_t *prefix, *unknown;
    Py_ssize_t prefix_len, unknown_len;
} Spec;

static int which_key(const Spec *s, const uint8_t *k, Py_ssize_t n) {
    for (int i = 0; i < 3; i++) {
        if (i == 2 && !s->read_domain)
            break;
        if (n == s->key_len[i] && memcmp(k, s->key[i], (size_t)n) == 0)
            return 1 << i;
    }
    return K_NONE;
}

/* One line [p, end): FAST with its values appended (the columns' lengths move only then), or
 * BLANK, or SLOW. */
static int line(const Spec *s, const uint8_t *p, const uint8_t *end, int64_t at, Column *text,
                Column *id, Column *domain) {
    Cursor c = {p, end};
    int found = 0, escaped, integer;
    int64_t text_end = text->len, id_end = id->len, domain_end = domain->len;
    uint8_t *w;
    skip_ws(&c);
    if (c.p == end)
        return BLANK;
    if (*c.p != '{')
        return SLOW;
    c.p++;
    skip_ws(&c);
    for (;;) {
        if (c.p >= end || *c.p != '"')
            return SLOW; /* (an empty object has no text either) */
        const uint8_t *key = c.p + 1;
        Cursor raw_key = c;
        if (!string(&c, NULL, NULL, &escaped))
            return SLOW;
        int k;
        if (!escaped) {
            k = which_key(s, key, c.p - 1 - key);
        } else { /* compared once decoded (no longer than its raw bytes) */
            uint8_t decoded[MAX_ESCAPED_KEY];
            if (c.p - 1 - key > MAX_ESCAPED_KEY || !string(&raw_key, decoded, &w, &escaped))
                return SLOW;
            k = which_key(s, decoded, w - decoded);
        }
        skip_ws(&c);
        if (c.p >= end || *c.p != ':')
            return SLOW;
        c.p++;
        skip_ws(&c);
        if (c.p >= end || (k & found))
            return SLOW; /* a wanted key twice: json.loads keeps the last */
        found |= k;
        uint8_t ch = *c.p;
        if (k == K_TEXT) {
            if (ch != '"' || !string(&c, text->data + text->len, &w, &escaped))
                return SLOW;
            text_end = w - text->data;
        } else if (k == K_ID || k == K_DOMAIN) {
            Column *col = k == K_ID ? id : domain;
            int64_t *col_end = k == K_ID ? &id_end : &domain_end;
            if (ch == '"') {
                if (!string(&c, col->data + col->len, &w, &escaped))
                    return SLOW;
                *col_end = w - col->data;
            } else if (ch == 'n') {
                if (!literal(&c, "null", 4))
                    return SLOW;
                found &= ~k; /* as if absent */
            } else if (k == K_ID) {
                const uint8_t *start = c.p;
                Py_ssize_t n = number(&c, &integer);
                if (!n || !integer || (n == 2 && start[0] == '-' && start[1] == '0'))
                    return SLOW; /* (json.loads reads -0 as 0) */
                memcpy(col->data + col->len, start, (size_t)n);
                *col_end = col->len + n;
            } else {
                return SLOW;
            }
        } else if (!skip_value(&c, s->depth_limit, 1)) {
            return SLOW;
        }
        skip_ws(&c);
        if (c.p < end && *c.p == ',') {
            c.p++;
            skip_ws(&c);
            continue;
        }
        if (c.p >= end || *c.p != '}')
            return SLOW;
        c.p++;
        break;
    }
    skip_ws(&c);
    if (c.p != end || !(found & K_TEXT))
        return SLOW;
    if (!(found & K_ID)) {
        memcpy(id->data + id->len, s->prefix, (size_t)s->prefix_len);
        id_end = id->len + s->prefix_len;
        id_end += snprintf((char *)id->data + id_end, 24, "%lld", (long long)at);
    }
    if (s->read_domain && domain_end == domain->len) { /* missing, null or empty */
        memcpy(domain->data + domain->len, s->unknown, (size_t)s->unknown_len);
        domain_end = domain->len + s->unknown_len;
    }
    text->len = text_end;
    id->len = id_end;
    domain->len = domain_end;
    return FAST;
}

/* The whole block; -1 when `kinds`/`ends` have too few entries. */
static Py_ssize_t parse(const Spec *s, const uint8_t *data, Py_ssize_t n, int64_t base,
                        uint8_t *kinds, int64_t *ends, Py_ssize_t capacity, Column *text,
                        Column *id, Column *domain, Py_ssize_t *rows) {
    Py_ssize_t lines = 0, r = 0;
    const uint8_t *p = data, *stop = data + n;
    text->offsets[0] = id->offsets[0] = domain->offsets[0] = 0;
    while (p < stop) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(stop - p));
        const uint8_t *e = nl ? nl : stop;
        if (lines >= capacity)
            return -1;
        int kind = line(s, p, e, base + (p - data), text, id, domain);
        if (kind == FAST) {
            r++;
            text->offsets[r] = (int32_t)text->len;
            id->offsets[r] = (int32_t)id->len;
            if (s->read_domain)
                domain->offsets[r] = (int32_t)domain->len;
        }
        kinds[lines] = (uint8_t)kind;
        ends[lines] = e - data;
        lines++;
        p = nl ? nl + 1 : stop;
    }
    *rows = r;
    return lines;
}

static int writable(Py_buffer *view, Py_ssize_t itemsize, Py_ssize_t items, const char *name) {
    if (view->readonly || view->len % itemsize || view->len / itemsize < items) {
        PyErr_Format(PyExc_ValueError, "%s: a writable buffer of %zd %zd-byte items is needed",
                     name, items, itemsize);
        return 0;
    }
    return 1;
}

static PyObject *parse_block(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer block, text_key, id_key, domain_key, prefix, unknown, kinds, ends;
    Py_buffer text_data, text_offsets, id_data, id_offsets, domain_data, domain_offsets;
    int read_domain;
    Py_ssize_t depth_limit, lines, rows = 0;
    PyObject *result = NULL;
    long long base;
    if (!PyArg_ParseTuple(args, "y*y*y*y*pny*Ly*w*w*w*w*w*w*w*w*", &block, &text_key, &id_key,
                          &domain_key, &read_domain, &depth_limit, &prefix, &base, &unknown,
                          &kinds, &ends, &text_data, &text_offsets, &id_data, &id_offsets,
                          &domain_data, &domain_offsets))
        return NULL;
    Py_ssize_t capacity = kinds.len < ends.len / 8 ? kinds.len : ends.len / 8;
    Py_ssize_t per_line_id = prefix.len + 24, per_line_domain = unknown.len;
    Py_ssize_t n = block.len;
    /* every value is at most as long as its raw bytes, plus what a line may add */
    if (n + capacity * (per_line_id > per_line_domain ? per_line_id : per_line_domain)
        >= INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "block: too large for int32 offsets");
    } else if (writable(&kinds, 1, 0, "kinds") && writable(&ends, 8, 0, "ends")
               && writable(&text_data, 1, n, "text_data")
               && writable(&text_offsets, 4, capacity + 1, "text_offsets")
               && writable(&id_data, 1, n + capacity * per_line_id, "id_data")
               && writable(&id_offsets, 4, capacity + 1, "id_offsets")
               && writable(&domain_data, 1, read_domain ? n + capacity * per_line_domain : 0,
                           "domain_data")
               && writable(&domain_offsets, 4, read_domain ? capacity + 1 : 1, "domain_offsets")) {
        Spec s = {{text_key.buf, id_key.buf, domain_key.buf},
                  {text_key.len, id_key.len, domain_key.len},
                  read_domain, depth_limit, prefix.buf, unknown.buf, prefix.len, unknown.len};
        Column text = {text_data.buf, text_offsets.buf, 0};
        Column id = {id_data.buf, id_offsets.buf, 0};
        Column domain = {domain_data.buf, domain_offsets.buf, 0};
        Py_BEGIN_ALLOW_THREADS
        lines = parse(&s, block.buf, n, (int64_t)base, kinds.buf, ends.buf, capacity, &text,
                      &id, &domain, &rows);
        Py_END_ALLOW_THREADS
        if (lines < 0)
            PyErr_SetString(PyExc_ValueError, "kinds/ends: more lines than room for them");
        else
            result = Py_BuildValue("nnLLL", lines, rows, (long long)text.len,
                                   (long long)id.len, (long long)domain.len);
    }
    Py_buffer *all[] = {&block, &text_key, &id_key, &domain_key, &prefix, &unknown, &kinds,
                        &ends, &text_data, &text_offsets, &id_data, &id_offsets, &domain_data,
                        &domain_offsets};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        PyBuffer_Release(all[k]);
    return result;
}

static PyMethodDef methods[] = {
    {"parse_block", parse_block, METH_VARARGS,
     "parse_block(block, text_key, id_key, domain_key, read_domain, depth_limit, id_prefix, "
     "base, unknown, kinds, ends, text_data, text_offsets, id_data, id_offsets, domain_data, "
     "domain_offsets) -> (lines, rows, text_bytes, id_bytes, domain_bytes)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jsonl_parse", "JSON Lines parsed in one compiled pass.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__jsonl_parse(void) { return PyModule_Create(&module); }

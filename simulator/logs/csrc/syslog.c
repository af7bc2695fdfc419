/* SyslogEvents: traditional syslog lines -> Event objects (parser.parse_lines' fast path). */
#include "speedups.h"

typedef struct {
    PyObject_HEAD
    PyObject *lines;      /* iterator of str */
    PyObject *interpret;  /* msg -> (level, body, relay, spec, groups, name) */
    PyObject *slow;       /* (n, raw) -> Event */
    PyObject *is_sshd;    /* program -> bool */
    PyObject *seen;       /* dict: msg -> interpretation (shared with the Python loop) */
    PyObject *sshd_cache; /* dict: program -> bool */
    Py_ssize_t seen_limit;
    long long n;
    /* the previous line's prefix parts: consecutive lines mostly repeat them */
    PyObject *last_ts, *last_host, *last_prog, *last_pid;
    PyObject *sshd_prog; /* the program object last found to be sshd's */
    long long last_pid_value;
    PyObject *s_syslog, *s_other, *empty;
    EventLayout layout;
    /* the catalogue's caches (Catalogue.cache, _shapes, _own), used exactly as Catalogue.match
     * uses them, so that both loops make the same choices in the same order */
    PyObject *cat_cache, *cat_shapes, *cat_own;
    Py_ssize_t max_message;
    /* a front for `seen` keyed by the message's bytes (see front_find) */
    struct FrontEntry *front;
    SlotRef spec_regex, spec_level, spec_name;
} SyslogEvents;

/* The front of `seen`: most lines repeat a message seen before, and finding it by its bytes
 * saves making a str of it and hashing that. An entry always mirrors an item of `seen`; when
 * `seen` is cleared (by either loop) the front is emptied. */
#define FRONT_SIZE 8192
struct FrontEntry {
    uint64_t hash;
    PyObject *msg;   /* the key in `seen` */
    PyObject *known; /* seen[msg] */
};

static uint64_t
bytes_hash(const char *s, Py_ssize_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n, w;
    while (n >= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
        s += 8;
        n -= 8;
    }
    w = 0;
    memcpy(&w, s, (size_t)n);
    h = (h ^ w) * 0x94D049BB133111EBull;
    return h ^ (h >> 29);
}

typedef struct {
    Py_ssize_t ts_end, host0, host1, prog0, prog1, msg0;
    long long pid;
} Prefix;

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* parser._FAST_LINE's character classes as a table: bit 1 host [!-Z\\-~], bit 2 program
 * [!-9;-Z\\^-~] (filled at module init). */
static unsigned char CHAR_CLASS[256];
enum { C_HOST = 1, C_PROG = 2 };

void
char_classes(void)
{
    for (int c = 0; c < 256; c++) {
        CHAR_CLASS[c] = (unsigned char)((((c >= 0x21 && c <= 0x5A) || (c >= 0x5C && c <= 0x7E)) ? C_HOST : 0)
            | (((c >= 0x21 && c <= 0x39) || (c >= 0x3B && c <= 0x5A) || c == 0x5C || (c >= 0x5E && c <= 0x7E))
               ? C_PROG : 0));
    }
}

static const char MONTHS[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

/* parser._FAST_LINE written out: 1 when `s` is a line it matches, with the parts' bounds. */
static int
split_prefix(const char *s, Py_ssize_t len, Prefix *p)
{
    Py_ssize_t i, j, k, m;
    int month = 0;
    long long pid = 0;
    if (len < 16 || s[3] != ' ')
        return 0;
    for (i = 0; i < 36; i += 3)
        if (s[0] == MONTHS[i] && s[1] == MONTHS[i + 1] && s[2] == MONTHS[i + 2]) {
            month = 1;
            break;
        }
    if (!month)
        return 0;
    if ((s[4] == ' ' || is_digit(s[4])) && is_digit(s[5]) && s[6] == ' ')
        i = 7;
    else if (is_digit(s[4]) && s[5] == ' ')
        i = 6;
    else
        return 0;
    if (i + 9 > len)
        return 0;
    if (!(is_digit(s[i]) && is_digit(s[i + 1]) && s[i + 2] == ':' && is_digit(s[i + 3])
          && is_digit(s[i + 4]) && s[i + 5] == ':' && is_digit(s[i + 6]) && is_digit(s[i + 7])
          && s[i + 8] == ' '))
        return 0;
    p->ts_end = i + 8;
    j = p->host0 = i + 9;
    while (j < len && (CHAR_CLASS[(unsigned char)s[j]] & C_HOST))
        j++;
    if (j == p->host0 || j >= len || s[j] != ' ')
        return 0;
    p->host1 = j;
    k = p->prog0 = j + 1;
    while (k < len && (CHAR_CLASS[(unsigned char)s[k]] & C_PROG))
        k++;
    if (k == p->prog0 || k >= len || s[k] != '[')
        return 0;
    p->prog1 = k;
    m = k + 1;
    while (m < len && is_digit(s[m])) {
        if (m - k > 18)
            return 0; /* leave huge pids to Python's int() */
        pid = pid * 10 + (s[m] - '0');
        m++;
    }
    /* "]: " complete; the message may be empty */
    if (m == k + 1 || m + 2 >= len || s[m] != ']' || s[m + 1] != ':' || s[m + 2] != ' ')
        return 0;
    p->msg0 = m + 3;
    p->pid = pid;
    /* (?!\[ID |kernel:) */
    if (len - p->msg0 >= 4 && memcmp(s + p->msg0, "[ID ", 4) == 0)
        return 0;
    if (len - p->msg0 >= 7 && memcmp(s + p->msg0, "kernel:", 7) == 0)
        return 0;
    return 1;
}

/* `cached` if it holds exactly s[a:b] (an ASCII str), else a new str that replaces it. */
static PyObject *
reuse_str(PyObject **cached, const char *s, Py_ssize_t a, Py_ssize_t b)
{
    PyObject *c = *cached;
    Py_ssize_t n = b - a;
    if (c != NULL && PyUnicode_GET_LENGTH(c) == n && memcmp(PyUnicode_DATA(c), s + a, n) == 0)
        return c;
    c = ascii_str(s + a, n);
    if (c == NULL)
        return NULL;
    Py_XSETREF(*cached, c);
    return c;
}

/* The program's "is it sshd" answer, asked of Python once per program name. */
static int
program_is_sshd(SyslogEvents *self, PyObject *prog)
{
    PyObject *hit = PyDict_GetItemWithError(self->sshd_cache, prog);
    int r;
    if (hit != NULL)
        return PyObject_IsTrue(hit);
    if (PyErr_Occurred())
        return -1;
    hit = PyObject_CallOneArg(self->is_sshd, prog);
    if (hit == NULL)
        return -1;
    r = PyObject_IsTrue(hit);
    if (r >= 0 && PyDict_SetItem(self->sshd_cache, prog, r ? Py_True : Py_False) < 0)
        r = -1;
    Py_DECREF(hit);
    return r;
}

/* _interpret + Catalogue.match(remember=False) for an ASCII message, in C, for the case where
 * the exact-text cache or the shape cache answers (every other case: 0, nothing touched, Python decides).
 * 1 with *out a new (level, body, relay, spec, groups, name); -1 on error. */
static int
interpret_fast(SyslogEvents *self, PyObject *msg, PyObject **out)
{
    const char *s = (const char *)PyUnicode_DATA(msg);
    Py_ssize_t len = PyUnicode_GET_LENGTH(msg), a = 0, b = len, i, k;
    PyObject *level = Py_None, *relay = Py_None, *body, *hit, *result = NULL, *shape = NULL;
    PyObject *spec = NULL, *regex = NULL, *m = NULL, *groups = NULL, *lv = NULL, *name = NULL;
    char stack[512], *buf = stack;
    int rc = -1;

    /* parser.split_message */
    if (len >= 8 && memcmp(s, "debug", 5) == 0 && s[6] == ':' && s[7] == ' ' && s[5] >= '1' && s[5] <= '3') {
        level = S_DEBUG[s[5] - '1'];
        a = 8;
    } else if (len >= 7 && memcmp(s, "error: ", 7) == 0) {
        level = S_ERROR;
        a = 7;
    } else if (len >= 7 && memcmp(s, "fatal: ", 7) == 0) {
        level = S_FATAL;
        a = 7;
    }
    if (b - a >= 1 && s[b - 1] == ']') {
        if (b - a >= 10 && memcmp(s + b - 10, " [preauth]", 10) == 0) {
            relay = S_preauth;
            b -= 10;
        } else if (b - a >= 11 && memcmp(s + b - 11, " [postauth]", 11) == 0) {
            relay = S_postauth;
            b -= 11;
        }
    }
    if (b - a > self->max_message)
        return 0; /* Catalogue.match: longer than sshd ever writes */
    if (a == 0 && b == len) {
        Py_INCREF(msg);
        body = msg;
    } else if ((body = PyUnicode_Substring(msg, a, b)) == NULL) {
        return -1;
    }
    hit = PyDict_GetItemWithError(self->cat_cache, body);
    if (hit != NULL) {
        Py_INCREF(hit);
        result = hit;
    } else if (PyErr_Occurred()) {
        goto done;
    } else {
        /* the shape: the message without its digits */
        if (b - a > (Py_ssize_t)sizeof(stack) && (buf = PyMem_Malloc(b - a)) == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        for (i = a, k = 0; i < b; i++)
            if (!is_digit(s[i]))
                buf[k++] = s[i];
        shape = PyBytes_FromStringAndSize(buf, k);
        if (shape == NULL)
            goto done;
        spec = PyDict_GetItemWithError(self->cat_shapes, shape);
        if (spec == NULL) {
            rc = PyErr_Occurred() ? -1 : 0;
            goto done;
        }
        Py_INCREF(spec);
        if ((regex = slot_get(&self->spec_regex, spec)) == NULL)
            goto done;
        hit = PyDict_GetItemWithError(self->cat_own, regex);
        if (hit == NULL) {
            rc = PyErr_Occurred() ? -1 : 0;
            goto done;
        }
        if ((m = PyObject_CallMethodOneArg(hit, S_fullmatch, body)) == NULL)
            goto done;
        if (m == Py_None) {
            rc = 0;
            goto done;
        }
        if ((groups = PyObject_CallMethodNoArgs(m, S_groups)) == NULL)
            goto done;
        if ((result = PyTuple_Pack(2, spec, groups)) == NULL)
            goto done;
        untrack(groups);
        untrack(result); /* not kept in the exact-text cache: Catalogue.match(remember=False) */
    }
    if (result == Py_None) {
        *out = PyTuple_Pack(6, level, body, relay, Py_None, self->empty, S_unknown);
    } else {
        if (!PyTuple_Check(result) || PyTuple_GET_SIZE(result) != 2) {
            PyErr_SetString(PyExc_TypeError, "catalogue cache holds an unexpected value");
            goto done;
        }
        Py_XSETREF(spec, PyTuple_GET_ITEM(result, 0));
        Py_INCREF(spec);
        if (level == Py_None) {
            if ((lv = slot_get(&self->spec_level, spec)) == NULL)
                goto done;
            level = str_is(lv, "VARIES") ? S_INFO : lv;
        }
        if ((name = slot_get(&self->spec_name, spec)) == NULL)
            goto done;
        *out = PyTuple_Pack(6, level, body, relay, spec, PyTuple_GET_ITEM(result, 1), name);
    }
    if (*out != NULL)
        untrack(*out);
    rc = *out == NULL ? -1 : 1;
done:
    if (buf != stack)
        PyMem_Free(buf);
    Py_XDECREF(name);
    Py_XDECREF(lv);
    Py_XDECREF(groups);
    Py_XDECREF(m);
    Py_XDECREF(regex);
    Py_XDECREF(spec);
    Py_XDECREF(shape);
    Py_XDECREF(result);
    Py_DECREF(body);
    return rc;
}

static void
front_empty(SyslogEvents *self)
{
    if (self->front == NULL)
        return;
    for (Py_ssize_t i = 0; i < FRONT_SIZE; i++) {
        Py_CLEAR(self->front[i].msg);
        Py_CLEAR(self->front[i].known);
    }
}

/* What a message means: from `seen`, or from interpret(msg) (then kept in `seen`). New ref. */
static PyObject *
interpretation(SyslogEvents *self, PyObject *msg)
{
    PyObject *known = PyDict_GetItemWithError(self->seen, msg);
    if (known != NULL) {
        Py_INCREF(known);
        return known;
    }
    if (PyErr_Occurred())
        return NULL;
    known = NULL;
    if (self->cat_cache != NULL) {
        int r = interpret_fast(self, msg, &known);
        if (r < 0)
            return NULL;
    }
    if (known == NULL)
        known = PyObject_CallOneArg(self->interpret, msg);
    if (known == NULL)
        return NULL;
    if (!PyTuple_CheckExact(known) || PyTuple_GET_SIZE(known) != 6) {
        Py_DECREF(known);
        PyErr_SetString(PyExc_TypeError, "interpret() must return a 6-tuple");
        return NULL;
    }
    if (self->cat_cache != NULL && PyUnicode_GET_LENGTH(msg) > self->max_message)
        return known; /* longer than sshd writes: unknown at once, not worth keeping (memory) */
    if (PyDict_GET_SIZE(self->seen) >= self->seen_limit) {
        PyDict_Clear(self->seen);
        front_empty(self);
    }
    if (PyDict_SetItem(self->seen, msg, known) < 0) {
        Py_DECREF(known);
        return NULL;
    }
    return known;
}

/* seen[msg] for the message s[0:n] if the front holds it (borrowed), else NULL. */
static PyObject *
front_find(SyslogEvents *self, const char *s, Py_ssize_t n, uint64_t h)
{
    struct FrontEntry *e = &self->front[h & (FRONT_SIZE - 1)];
    if (e->msg != NULL && e->hash == h && PyUnicode_GET_LENGTH(e->msg) == n
        && memcmp(PyUnicode_DATA(e->msg), s, (size_t)n) == 0)
        return e->known;
    return NULL;
}

static void
front_keep(SyslogEvents *self, uint64_t h, PyObject *msg, PyObject *known)
{
    struct FrontEntry *e = &self->front[h & (FRONT_SIZE - 1)];
    Py_INCREF(msg);
    Py_INCREF(known);
    Py_XSETREF(e->msg, msg);
    Py_XSETREF(e->known, known);
    e->hash = h;
}

/* A line through Python (`slow`); if that cleared `seen`, the front follows. */
static PyObject *
slow_line(SyslogEvents *self, PyObject *lineno, PyObject *raw)
{
    Py_ssize_t before = PyDict_GET_SIZE(self->seen);
    PyObject *ev = PyObject_CallFunctionObjArgs(self->slow, lineno, raw, NULL);
    if (PyDict_GET_SIZE(self->seen) < before)
        front_empty(self);
    return ev;
}

static PyObject *
syslog_line(SyslogEvents *self, PyObject *raw, PyObject *lineno)
{
    Py_ssize_t len, end;
    const char *s;
    Prefix p;
    PyObject *ts, *host, *prog, *pid, *msg = NULL, *known = NULL, *ev = NULL, *line = raw;
    PyObject *vals[E_NSLOTS] = {NULL};
    int sshd;

    if (!PyUnicode_Check(raw) || !PyUnicode_IS_COMPACT_ASCII(raw))
        return slow_line(self, lineno, raw);
    len = PyUnicode_GET_LENGTH(raw);
    s = (const char *)PyUnicode_DATA(raw);
    end = len;
    while (end > 0 && (s[end - 1] == '\n' || s[end - 1] == '\r'))
        end--;
    if (!split_prefix(s, end, &p))
        return slow_line(self, lineno, raw);
    if (end != len) {
        line = PyUnicode_Substring(raw, 0, end);
        if (line == NULL)
            return NULL;
    } else {
        Py_INCREF(line);
    }
    if ((ts = reuse_str(&self->last_ts, s, 0, p.ts_end)) == NULL
        || (host = reuse_str(&self->last_host, s, p.host0, p.host1)) == NULL
        || (prog = reuse_str(&self->last_prog, s, p.prog0, p.prog1)) == NULL)
        goto done;
    if (self->last_pid == NULL || self->last_pid_value != p.pid) {
        PyObject *v = PyLong_FromLongLong(p.pid);
        if (v == NULL)
            goto done;
        Py_XSETREF(self->last_pid, v);
        self->last_pid_value = p.pid;
    }
    pid = self->last_pid;
    if (prog == self->sshd_prog)
        sshd = 1;
    else if ((sshd = program_is_sshd(self, prog)) < 0)
        goto done;
    else if (sshd) {
        Py_INCREF(prog); /* reuse_str gives this same object while the program repeats */
        Py_XSETREF(self->sshd_prog, prog);
    }
    if (sshd) {
        uint64_t h = bytes_hash(s + p.msg0, end - p.msg0);
        known = front_find(self, s + p.msg0, end - p.msg0, h);
        if (known != NULL) {
            Py_INCREF(known);
        } else {
            msg = ascii_str(s + p.msg0, end - p.msg0);
            if (msg == NULL || (known = interpretation(self, msg)) == NULL)
                goto done;
            if (self->cat_cache == NULL || end - p.msg0 <= self->max_message)
                front_keep(self, h, msg, known);
        }
    } else if ((msg = ascii_str(s + p.msg0, end - p.msg0)) == NULL) {
        goto done;
    }
    vals[E_LINE] = lineno;
    vals[E_RAW] = line;
    vals[E_FORMAT] = self->s_syslog;
    vals[E_TS] = ts;
    vals[E_HOST] = host;
    vals[E_PROGRAM] = prog;
    vals[E_PID] = pid;
    if (!sshd) {
        vals[E_EVENT] = self->s_other;
        vals[E_MESSAGE] = msg;
        vals[E_GROUPS] = self->empty;
    } else {
        vals[E_LEVEL] = PyTuple_GET_ITEM(known, 0);
        vals[E_MESSAGE] = PyTuple_GET_ITEM(known, 1);
        vals[E_RELAY] = PyTuple_GET_ITEM(known, 2);
        vals[E_SPEC] = PyTuple_GET_ITEM(known, 3);
        vals[E_GROUPS] = PyTuple_GET_ITEM(known, 4);
        vals[E_EVENT] = PyTuple_GET_ITEM(known, 5);
    }
    ev = ev_new(&self->layout, vals);
done:
    Py_XDECREF(known);
    Py_XDECREF(msg);
    Py_DECREF(line);
    return ev;
}

static PyObject *
syslog_next(SyslogEvents *self)
{
    PyObject *raw, *lineno, *ev;
    if (self->lines == NULL)
        return NULL;
    raw = PyIter_Next(self->lines);
    if (raw == NULL)
        return NULL;
    self->n++;
    lineno = PyLong_FromLongLong(self->n);
    if (lineno == NULL) {
        Py_DECREF(raw);
        return NULL;
    }
    ev = syslog_line(self, raw, lineno);
    Py_DECREF(lineno);
    Py_DECREF(raw);
    return ev;
}

static PyObject *
syslog_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"lines", "event_type", "interpret", "slow", "is_sshd", "seen",
                             "seen_limit", "start", "catalogue", NULL};
    PyObject *lines, *etype, *interpret, *slow, *is_sshd, *seen, *catalogue = Py_None;
    Py_ssize_t limit;
    long long start = 0;
    SyslogEvents *self;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOO!n|LO", kwlist, &lines, &etype, &interpret,
                                     &slow, &is_sshd, &PyDict_Type, &seen, &limit, &start, &catalogue))
        return NULL;
    self = (SyslogEvents *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->spec_regex.name = S_regex;
    self->spec_level.name = S_level;
    self->spec_name.name = S_name;
    if (catalogue != Py_None) {
        PyObject *size;
        if ((self->cat_cache = PyObject_GetAttrString(catalogue, "cache")) == NULL
            || (self->cat_shapes = PyObject_GetAttrString(catalogue, "_shapes")) == NULL
            || (self->cat_own = PyObject_GetAttrString(catalogue, "_own")) == NULL
            || (size = PyObject_GetAttrString(catalogue, "max_message")) == NULL)
            goto fail;
        self->max_message = PyLong_AsSsize_t(size);
        Py_DECREF(size);
        if (self->max_message < 0 && PyErr_Occurred())
            goto fail;
        if (!PyDict_Check(self->cat_cache) || !PyDict_Check(self->cat_shapes) || !PyDict_Check(self->cat_own)) {
            PyErr_SetString(PyExc_TypeError, "catalogue caches must be dicts");
            goto fail;
        }
    }
    if (event_layout(etype, &self->layout) < 0)
        goto fail;
    Py_INCREF(etype);
    if ((self->lines = PyObject_GetIter(lines)) == NULL)
        goto fail;
    Py_INCREF(interpret);
    self->interpret = interpret;
    Py_INCREF(slow);
    self->slow = slow;
    Py_INCREF(is_sshd);
    self->is_sshd = is_sshd;
    Py_INCREF(seen);
    self->seen = seen;
    self->seen_limit = limit > 1 ? limit : 2; /* slow_line tells a clear by the size dropping */
    if ((self->front = PyMem_Calloc(FRONT_SIZE, sizeof(struct FrontEntry))) == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    self->n = start;
    if ((self->sshd_cache = PyDict_New()) == NULL
        || (self->s_syslog = PyUnicode_InternFromString("syslog")) == NULL
        || (self->s_other = PyUnicode_InternFromString("other")) == NULL
        || (self->empty = PyTuple_New(0)) == NULL)
        goto fail;
    return (PyObject *)self;
fail:
    Py_DECREF(self);
    return NULL;
}

static int
syslog_traverse(SyslogEvents *self, visitproc visit, void *arg)
{
    Py_VISIT(self->lines);
    Py_VISIT(self->interpret);
    Py_VISIT(self->slow);
    Py_VISIT(self->is_sshd);
    Py_VISIT(self->seen);
    Py_VISIT(self->sshd_cache);
    if (self->front != NULL)
        for (Py_ssize_t i = 0; i < FRONT_SIZE; i++) {
            Py_VISIT(self->front[i].msg);
            Py_VISIT(self->front[i].known);
        }
    Py_VISIT(self->cat_cache);
    Py_VISIT(self->cat_shapes);
    Py_VISIT(self->cat_own);
    Py_VISIT((PyObject *)self->layout.type);
    return 0;
}

static int
syslog_clear(SyslogEvents *self)
{
    front_empty(self);
    Py_CLEAR(self->lines);
    Py_CLEAR(self->interpret);
    Py_CLEAR(self->slow);
    Py_CLEAR(self->is_sshd);
    Py_CLEAR(self->seen);
    Py_CLEAR(self->sshd_cache);
    Py_CLEAR(self->last_ts);
    Py_CLEAR(self->last_host);
    Py_CLEAR(self->last_prog);
    Py_CLEAR(self->sshd_prog);
    Py_CLEAR(self->last_pid);
    Py_CLEAR(self->s_syslog);
    Py_CLEAR(self->s_other);
    Py_CLEAR(self->empty);
    Py_CLEAR(self->cat_cache);
    Py_CLEAR(self->cat_shapes);
    Py_CLEAR(self->cat_own);
    Py_CLEAR(self->spec_regex.type);
    Py_CLEAR(self->spec_level.type);
    Py_CLEAR(self->spec_name.type);
    layout_clear(&self->layout);
    return 0;
}

static void
syslog_dealloc(SyslogEvents *self)
{
    PyObject_GC_UnTrack(self);
    syslog_clear(self);
    PyMem_Free(self->front);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
syslog_lineno(SyslogEvents *self, void *closure)
{
    return PyLong_FromLongLong(self->n);
}

static PyGetSetDef syslog_getset[] = {
    {"lineno", (getter)syslog_lineno, NULL, "lines read so far", NULL},
    {NULL},
};

PyTypeObject SyslogEventsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "simulator.logs._speedups.SyslogEvents",
    .tp_basicsize = sizeof(SyslogEvents),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Traditional syslog lines -> Event objects (parser.parse_lines' fast path).",
    .tp_new = syslog_new,
    .tp_dealloc = (destructor)syslog_dealloc,
    .tp_traverse = (traverseproc)syslog_traverse,
    .tp_clear = (inquiry)syslog_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)syslog_next,
    .tp_getset = syslog_getset,
};

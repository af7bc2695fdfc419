/*
 * C twins of the parser's two hot loops (simulator/logs/parser.py and connections.py).
 *
 * Why C: parse plus grouping must run at well over a million lines a second on one core, and
 * in CPython the per-line cost of a generator step, an Event() call and a dozen attribute
 * look-ups is already more than that budget. These iterators keep the Python objects and the
 * Python algorithms exactly as they are; they only take the common case out of the
 * interpreter and call back into Python for everything else:
 *
 *   SyslogEvents(lines, Event, interpret, slow, is_sshd, seen, seen_limit)
 *       traditional syslog lines -> Event objects. A line it cannot take on the fast path
 *       (non-ASCII, another format, furniture after the prefix) goes to slow(n, raw); a
 *       message not in `seen` goes to interpret(msg), whose answer it caches there.
 *
 *   ChunkLines(file, chunk, on_error, errors)
 *       the text lines of a plain log file (reader.LogReader), split and decoded in C.
 *
 *   GroupRun(tracker, events, Event)
 *       ConnectionTracker.run's loop: a line of a pid already placed is settled here, every
 *       other line through tracker._assign / _fold / _learn / _sweep / flush.
 *
 * Event is a Python class with __slots__: its instances are made with tp_alloc and their
 * slots filled through the member descriptors' offsets, which is what Event.__init__ does,
 * without the call.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- Event slots ------------------------------------------------------------------------ */

enum {
    E_LINE, E_RAW, E_FORMAT, E_TS, E_HOST, E_PROGRAM, E_PID, E_LEVEL, E_EVENT, E_MESSAGE,
    E_RELAY, E_SPEC, E_GROUPS, E_EXTRA, E_CONN, E_ROLE, E_FIELDS, E_NSLOTS
};
static const char *const EVENT_SLOTS[E_NSLOTS] = {
    "line", "raw", "format", "ts", "host", "program", "pid", "level", "event", "message",
    "relay", "spec", "_groups", "extra", "conn", "role", "_fields",
};

typedef struct {
    PyTypeObject *type;
    Py_ssize_t off[E_NSLOTS];
    int exact; /* the instance is its header and these slots only (see ev_new) */
} EventLayout;

/* Offsets of Event's slots, from its member descriptors; fails unless every name is a slot. */
static int
event_layout(PyObject *type, EventLayout *out)
{
    if (!PyType_Check(type)) {
        PyErr_SetString(PyExc_TypeError, "Event must be a class");
        return -1;
    }
    for (int i = 0; i < E_NSLOTS; i++) {
        PyObject *d = PyObject_GetAttrString(type, EVENT_SLOTS[i]);
        if (d == NULL)
            return -1;
        if (!PyObject_TypeCheck(d, &PyMemberDescr_Type)
            || ((PyMemberDescrObject *)d)->d_member->type != T_OBJECT_EX) {
            Py_DECREF(d);
            PyErr_Format(PyExc_TypeError, "Event.%s is not a slot", EVENT_SLOTS[i]);
            return -1;
        }
        out->off[i] = ((PyMemberDescrObject *)d)->d_member->offset;
        Py_DECREF(d);
    }
    out->type = (PyTypeObject *)type;
    out->exact = out->type->tp_basicsize == (Py_ssize_t)(sizeof(PyObject) + E_NSLOTS * sizeof(PyObject *))
        && out->type->tp_itemsize == 0 && out->type->tp_dictoffset == 0
        && out->type->tp_weaklistoffset == 0 && PyType_IS_GC(out->type);
    return 0;
}

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

static void
layout_clear(EventLayout *L)
{
    PyTypeObject *t = L->type;
    L->type = NULL;
    Py_XDECREF(t);
}

/* interned attribute names and constants (module init) */
static PyObject *S_conn, *S_end, *S_last_line, *S_role, *S_relayed, *S_id, *S_name, *S_addr,
    *S_fields, *S_n_events, *S_last_ts, *S_events, *S_preauth, *S_user, *S_unknown,
    *S_pids, *S_listeners, *S_seen_new;

/* A slot's value (borrowed), or NULL with AttributeError when it was never set. */
static PyObject *
ev_get(const EventLayout *L, PyObject *ev, int which)
{
    PyObject *v;
    if (Py_TYPE(ev) != L->type)
        return NULL;
    v = SLOT(ev, L->off[which]);
    if (v == NULL)
        PyErr_Format(PyExc_AttributeError, "Event.%s is not set", EVENT_SLOTS[which]);
    return v;
}

static void
ev_set(const EventLayout *L, PyObject *ev, int which, PyObject *value)
{
    PyObject **p = &SLOT(ev, L->off[which]);
    PyObject *old = *p;
    Py_INCREF(value);
    *p = value;
    Py_XDECREF(old);
}

/* A new Event with every slot set (NULL values stand for None), as Event.__init__ sets them. */
static PyObject *
ev_new(const EventLayout *L, PyObject *const vals[E_NSLOTS])
{
    /* An event holds strings, ints, tuples and its catalogue entry: it can be part of no
     * reference cycle, so the cycle collector need not visit the millions made (as CPython
     * does for tuples of atoms). PyObject_GC_New makes it untracked; when Event has more
     * than our slots (a subclass, a __weakref__), tp_alloc zeroes them and we untrack. */
    PyObject *ev = L->exact ? (PyObject *)_PyObject_GC_New(L->type) : L->type->tp_alloc(L->type, 0);
    if (ev == NULL)
        return NULL;
    for (int i = 0; i < E_NSLOTS; i++) {
        PyObject *v = vals[i] ? vals[i] : Py_None;
        Py_INCREF(v);
        SLOT(ev, L->off[i]) = v;
    }
    if (!L->exact)
        PyObject_GC_UnTrack(ev);
    return ev;
}

/* An attribute of a __slots__ class read or written through its member descriptor's offset,
 * found once per class; any other class goes through the generic attribute protocol. */
typedef struct {
    PyObject *name;
    PyTypeObject *type; /* the class the offset belongs to (a reference is held) */
    Py_ssize_t off;
} SlotRef;

static int
slot_find(SlotRef *r, PyTypeObject *t)
{
    PyObject *d = PyObject_GetAttr((PyObject *)t, r->name);
    int ok;
    if (d == NULL) {
        PyErr_Clear();
        return 0;
    }
    ok = PyObject_TypeCheck(d, &PyMemberDescr_Type)
        && ((PyMemberDescrObject *)d)->d_member->type == T_OBJECT_EX
        && !(((PyMemberDescrObject *)d)->d_member->flags & READONLY);
    if (ok) {
        r->off = ((PyMemberDescrObject *)d)->d_member->offset;
        Py_INCREF(t);
        Py_XSETREF(r->type, t);
    }
    Py_DECREF(d);
    return ok;
}

/* obj.<name> as a new reference (NULL with an exception when it fails). */
static PyObject *
slot_get(SlotRef *r, PyObject *obj)
{
    PyObject *v;
    if (Py_TYPE(obj) == r->type || slot_find(r, Py_TYPE(obj))) {
        v = SLOT(obj, r->off);
        if (v != NULL) {
            Py_INCREF(v);
            return v;
        }
    }
    return PyObject_GetAttr(obj, r->name);
}

static int
slot_set(SlotRef *r, PyObject *obj, PyObject *value)
{
    if (Py_TYPE(obj) == r->type || slot_find(r, Py_TYPE(obj))) {
        PyObject **p = &SLOT(obj, r->off);
        PyObject *old = *p;
        Py_INCREF(value);
        *p = value;
        Py_XDECREF(old);
        return 0;
    }
    return PyObject_SetAttr(obj, r->name, value);
}

/* Take a tuple of strings, numbers, None and catalogue entries (which refer to nothing of the
 * parse) out of the cycle collector's sight: tens of thousands sit in the parse caches, and
 * every full collection would walk them for nothing. */
static void
untrack(PyObject *obj)
{
    if (PyTuple_CheckExact(obj) && PyObject_GC_IsTracked(obj))
        PyObject_GC_UnTrack(obj);
}

static int
str_is(PyObject *obj, const char *text)
{
    return obj != NULL && PyUnicode_Check(obj) && PyUnicode_CompareWithASCIIString(obj, text) == 0;
}

/* ---- EventSlots ------------------------------------------------------------------------- */

/* The storage of events.Event: its seventeen attributes as a C struct, so that the millions of
 * events a parse makes are freed by a short C function rather than by the interpreter's walk
 * over a class's slot list. events.Event subclasses it (adding its methods and no storage);
 * without the extension, Event declares the same names as __slots__. */
typedef struct {
    PyObject_HEAD
    PyObject *slot[E_NSLOTS];
} EventSlots;

static PyMemberDef event_members[E_NSLOTS + 1];
static PyObject *NEWOBJ; /* copyreg.__newobj__: make an instance without calling __init__ */

static int
eventslots_traverse(EventSlots *self, visitproc visit, void *arg)
{
    for (int i = 0; i < E_NSLOTS; i++)
        Py_VISIT(self->slot[i]);
    return 0;
}

static int
eventslots_clear(EventSlots *self)
{
    for (int i = 0; i < E_NSLOTS; i++)
        Py_CLEAR(self->slot[i]);
    return 0;
}

static void
eventslots_dealloc(EventSlots *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    for (int i = 0; i < E_NSLOTS; i++)
        Py_XDECREF(self->slot[i]);
    type->tp_free((PyObject *)self);
}

static PyObject *
eventslots_reduce(EventSlots *self, PyObject *unused)
{
    /* copy and pickle: the class, no arguments, and the slots as state */
    PyObject *state = PyDict_New(), *out;
    if (state == NULL)
        return NULL;
    for (int i = 0; i < E_NSLOTS; i++)
        if (self->slot[i] != NULL && PyDict_SetItemString(state, EVENT_SLOTS[i], self->slot[i]) < 0) {
            Py_DECREF(state);
            return NULL;
        }
    out = Py_BuildValue("(O(O)(OO))", NEWOBJ, Py_TYPE(self), Py_None, state);
    Py_DECREF(state);
    return out;
}

static PyMethodDef eventslots_methods[] = {
    {"__reduce__", (PyCFunction)eventslots_reduce, METH_NOARGS, "copy and pickle support"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EventSlotsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "simulator.logs._speedups.EventSlots",
    .tp_basicsize = sizeof(EventSlots),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The attributes of events.Event, stored in C.",
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)eventslots_dealloc,
    .tp_traverse = (traverseproc)eventslots_traverse,
    .tp_clear = (inquiry)eventslots_clear,
    .tp_members = event_members,
    .tp_methods = eventslots_methods,
};

/* ---- SyslogEvents ----------------------------------------------------------------------- */

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
    Py_ssize_t cat_size, max_message;
    /* a front for `seen` keyed by the message's bytes (see front_find) */
    struct FrontEntry *front;
    SlotRef spec_regex, spec_level, spec_name;
} SyslogEvents;

static PyObject *S_named, *S_int_fields, *S_append, *S_pam_dot, *S_pam, *S_session;
static PyObject *S_pids_attr, *S_programs, *S_listener, *S_monitor, *S_user_child_map,
    *S_user_child_prev;
static PyObject *S_fields_prop, *S_pid, *S_first_line, *S_first_ts, *S_ts_format, *S_outcome,
    *S_kind, *S_port, *S_indexed, *S_accepted, *S_dropped, *S_connection;
static PyObject *S_DEBUG[3], *S_ERROR, *S_FATAL, *S_INFO, *S_VARIES, *S_postauth, *S_fullmatch,
    *S_groups, *S_regex, *S_level;

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

static void
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

/* A str of n bytes known to be ASCII: PyUnicode_FromKindAndData would scan them for the
 * widest character first. */
static PyObject *
ascii_str(const char *s, Py_ssize_t n)
{
    PyObject *u = PyUnicode_New(n, 127);
    if (u != NULL)
        memcpy(PyUnicode_DATA(u), s, (size_t)n);
    return u;
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
            || (size = PyObject_GetAttrString(catalogue, "_cache_size")) == NULL)
            goto fail;
        self->cat_size = PyLong_AsSsize_t(size);
        Py_DECREF(size);
        if (self->cat_size < 0 && PyErr_Occurred())
            goto fail;
        if ((size = PyObject_GetAttrString(catalogue, "max_message")) == NULL)
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

static PyTypeObject SyslogEventsType = {
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

/* ---- GroupRun --------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *tracker;
    PyObject *events;     /* iterator of Event */
    PyObject *rest;       /* tracker.flush() once the input has ended */
    PyObject **ring;      /* the look-ahead window: events waiting to be settled */
    Py_ssize_t cap, head, count, window;
    PyObject *learn_events, *start_events, *endpoint_events, *session_pid_events,
        *listener_events, *endpoint_pids, *handlers,
        *listeners, *pids, *buffer;
    PyObject *assign, *assign_slow, *fold, *sweep, *add_pid;
    PyObject *checked_prog;  /* the last program found not to be sshd-session / sshd-auth */
    int seen_new, tally, summaries;
    Py_ssize_t sweep_every, since_sweep;
    EventLayout layout;
    /* what the tracker's sets say of an event name, by the name object (see name_flags) */
    struct NameFlags { PyObject *name; int flags; } names[256];
    /* attributes of _PidState (st), Connection (conn) and EventSpec (spec) */
    SlotRef conn_first_line, conn_first_ts, conn_ts_format, conn_outcome, conn_kind, conn_port,
        conn_indexed, conn_pids, conn_programs, spec_named, spec_int_fields;
    PyObject *state_type, *user_children, *monitors, *new_conn, *dropped_done,
        *listener_child_events;
    SlotRef st_conn, st_last_line, st_role, st_relayed, conn_end, conn_id, conn_addr, conn_last_line, conn_n_events, conn_last_ts, conn_events, spec_name, spec_fields;
} GroupRun;



/* The tracker's state that its sweep may replace with new objects. */
static int
group_refresh(GroupRun *self)
{
    PyObject *pids = PyObject_GetAttr(self->tracker, S_pids);
    PyObject *listeners = PyObject_GetAttr(self->tracker, S_listeners);
    PyObject *endpoint_pids = PyObject_GetAttrString(self->tracker, "_endpoint_pids");
    if (pids == NULL || listeners == NULL || endpoint_pids == NULL) {
        Py_XDECREF(pids);
        Py_XDECREF(listeners);
        Py_XDECREF(endpoint_pids);
        return -1;
    }
    Py_XSETREF(self->pids, pids);
    Py_XSETREF(self->listeners, listeners);
    Py_XSETREF(self->endpoint_pids, endpoint_pids);
    if (!PyDict_Check(pids) || !PyAnySet_Check(listeners) || !PySet_Check(endpoint_pids)) {
        PyErr_SetString(PyExc_TypeError, "tracker's pids / listeners / endpoint pids have unexpected types");
        return -1;
    }
    return 0;
}

static int
call1(PyObject *fn, PyObject *arg)
{
    PyObject *r = PyObject_CallOneArg(fn, arg);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* True for a set member test that may fail (-1). */
static int
in_set(PyObject *set, PyObject *key)
{
    return PySet_Contains(set, key);
}

static PyObject *build_fields(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* Event.fields (events.py), without the property's Python frame: the cached dict, else one
 * built from the match groups and kept on the event. New ref. */
static PyObject *
event_fields(GroupRun *self, PyObject *ev)
{
    const EventLayout *L = &self->layout;
    PyObject *f = ev_get(L, ev, E_FIELDS), *spec, *args[3];
    if (f == NULL)
        return NULL;
    if (f != Py_None) {
        Py_INCREF(f);
        return f;
    }
    if ((spec = ev_get(L, ev, E_SPEC)) == NULL || (args[0] = ev_get(L, ev, E_GROUPS)) == NULL)
        return NULL;
    if (spec == Py_None) {
        f = PyDict_New();
    } else {
        if ((args[1] = slot_get(&self->spec_named, spec)) == NULL)
            return NULL;
        if ((args[2] = slot_get(&self->spec_int_fields, spec)) == NULL) {
            Py_DECREF(args[1]);
            return NULL;
        }
        f = build_fields(NULL, args, 3);
        Py_DECREF(args[1]);
        Py_DECREF(args[2]);
    }
    if (f != NULL)
        ev_set(L, ev, E_FIELDS, f);
    return f;
}

/* Grouping steps (connections.py, _GROUPING_ACTIONS and _apply_grouping). */
enum { G_FROM = 1, G_ENDPOINT = 2, G_ACCEPTED = 4, G_DROPPED = 8, G_END = 16 };

static PyObject *
dict_get(PyObject *d, PyObject *key)
{
    PyObject *v = PyDict_GetItemWithError(d, key);
    return v != NULL ? v : (PyErr_Occurred() ? NULL : Py_None);
}

/* _h_endpoint: the client's address and port, where not known yet. */
static int
fill_endpoint(GroupRun *self, PyObject *conn, PyObject *f)
{
    PyObject *cur, *v;
    int r;
    if ((cur = slot_get(&self->conn_addr, conn)) == NULL)
        return -1;
    r = cur == Py_None;
    Py_DECREF(cur);
    if (r) {
        if ((v = dict_get(f, S_addr)) == NULL || (r = PyObject_IsTrue(v)) < 0)
            return -1;
        if (r && slot_set(&self->conn_addr, conn, v) < 0)
            return -1;
    }
    if ((cur = slot_get(&self->conn_port, conn)) == NULL)
        return -1;
    r = cur == Py_None;
    Py_DECREF(cur);
    if (r) {
        if ((v = dict_get(f, S_port)) == NULL)
            return -1;
        if (v != Py_None && slot_set(&self->conn_port, conn, v) < 0)
            return -1;
    }
    return 0;
}

/* ConnectionTracker._fold for summaries=False: the same bookkeeping, the grouping steps. */
static int
fold_lean(GroupRun *self, PyObject *conn, PyObject *ev, PyObject *spec, PyObject *name)
{
    const EventLayout *L = &self->layout;
    PyObject *v, *f = NULL, *line = ev_get(L, ev, E_LINE), *ts = ev_get(L, ev, E_TS);
    long long n;
    long actions = 0;
    int r, rc = -1;
    if (line == NULL || ts == NULL || (v = slot_get(&self->conn_n_events, conn)) == NULL)
        return -1;
    n = PyLong_AsLongLong(v);
    Py_DECREF(v);
    if (n == -1 && PyErr_Occurred())
        return -1;
    if (n == 0) {
        PyObject *format = ev_get(L, ev, E_FORMAT);
        if (format == NULL || slot_set(&self->conn_first_line, conn, line) < 0
            || slot_set(&self->conn_first_ts, conn, ts) < 0 || slot_set(&self->conn_ts_format, conn, format) < 0)
            return -1;
    }
    if ((v = PyLong_FromLongLong(n + 1)) == NULL)
        return -1;
    r = slot_set(&self->conn_n_events, conn, v);
    Py_DECREF(v);
    if (r < 0 || slot_set(&self->conn_last_line, conn, line) < 0)
        return -1;
    if (ts != Py_None && slot_set(&self->conn_last_ts, conn, ts) < 0)
        return -1;
    if ((v = dict_get(self->handlers, name)) == NULL)
        return -1;
    if (v != Py_None && (actions = PyLong_AsLong(v)) == -1 && PyErr_Occurred())
        return -1;
    if (actions == 0) {
        if ((v = slot_get(&self->conn_addr, conn)) == NULL)
            return -1;
        r = v == Py_None;
        Py_DECREF(v);
        if (r) {
            if ((v = slot_get(&self->spec_fields, spec)) == NULL)
                return -1;
            r = PySequence_Contains(v, S_addr);
            Py_DECREF(v);
            if (r < 0)
                return -1;
            actions = r ? G_ENDPOINT : 0;
        }
    }
    if (actions) {
        if ((f = event_fields(self, ev)) == NULL)
            return -1;
        if (!PyDict_Check(f)) {
            PyErr_SetString(PyExc_TypeError, "Event.fields must be a dict");
            goto done;
        }
        if (actions & G_FROM) {
            if ((v = dict_get(f, S_addr)) == NULL || slot_set(&self->conn_addr, conn, v) < 0
                || (v = dict_get(f, S_port)) == NULL || slot_set(&self->conn_port, conn, v) < 0)
                goto done;
        }
        if ((actions & G_ENDPOINT) && fill_endpoint(self, conn, f) < 0)
            goto done;
        if ((actions & G_ACCEPTED) && slot_set(&self->conn_outcome, conn, S_accepted) < 0)
            goto done;
        if (actions & G_DROPPED) {
            if (slot_set(&self->conn_kind, conn, S_dropped) < 0 || fill_endpoint(self, conn, f) < 0
                || slot_set(&self->conn_end, conn, name) < 0)
                goto done;
        }
        if (actions & G_END) {
            if ((v = slot_get(&self->conn_end, conn)) == NULL)
                goto done;
            r = v == Py_None;
            Py_DECREF(v);
            if (r && slot_set(&self->conn_end, conn, name) < 0)
                goto done;
        }
        /* index the connection under its client endpoint, once */
        if ((v = slot_get(&self->conn_indexed, conn)) == NULL || (r = PyObject_IsTrue(v)) < 0) {
            Py_XDECREF(v);
            goto done;
        }
        Py_DECREF(v);
        if (!r) {
            PyObject *addr = slot_get(&self->conn_addr, conn), *port = NULL, *kind = NULL;
            int ok = addr != NULL && (port = slot_get(&self->conn_port, conn)) != NULL;
            if (ok && addr != Py_None && port != Py_None) {
                ok = slot_set(&self->conn_indexed, conn, Py_True) == 0
                    && (kind = slot_get(&self->conn_kind, conn)) != NULL;
                if (ok && str_is(kind, "connection")) {
                    PyObject *key = PyTuple_Pack(2, addr, port);
                    PyObject *endpoints = PyObject_GetAttrString(self->tracker, "_endpoints");
                    ok = key != NULL && endpoints != NULL && PyObject_SetItem(endpoints, key, conn) == 0;
                    Py_XDECREF(key);
                    Py_XDECREF(endpoints);
                }
            }
            Py_XDECREF(addr);
            Py_XDECREF(port);
            Py_XDECREF(kind);
            if (!ok)
                goto done;
        }
    }
    if ((v = slot_get(&self->conn_events, conn)) == NULL)
        goto done;
    r = v != Py_None ? PyList_Append(v, ev) : 0;
    Py_DECREF(v);
    if (r < 0)
        goto done;
    rc = 0;
done:
    Py_XDECREF(f);
    return rc;
}

enum { N_LEARN = 1, N_START = 2, N_HANDLER = 4 };

/* Whether an event name is in the tracker's learn events, start events and handlers (which do
 * not change during a run), remembered per name object: a few hundred names make millions
 * of events, and three hash look-ups per event were a tenth of the loop. */
static int
name_flags(GroupRun *self, PyObject *name)
{
    struct NameFlags *e = &self->names[((uintptr_t)name >> 4) & 255];
    int r, flags = 0;
    if (e->name == name)
        return e->flags;
    if ((r = in_set(self->learn_events, name)) < 0)
        return -1;
    flags |= r ? N_LEARN : 0;
    if ((r = in_set(self->start_events, name)) < 0)
        return -1;
    flags |= r ? N_START : 0;
    if ((r = PyDict_Contains(self->handlers, name)) < 0)
        return -1;
    flags |= r ? N_HANDLER : 0;
    Py_INCREF(name);
    Py_XSETREF(e->name, name);
    e->flags = flags;
    return flags;
}

/* Connection.add_pid(role, pid) */
static int
add_pid(GroupRun *self, PyObject *conn, PyObject *role, PyObject *pid)
{
    PyObject *pids = slot_get(&self->conn_pids, conn), *list;
    int r = -1;
    if (pids == NULL)
        return -1;
    if (!PyDict_Check(pids)) {
        PyErr_SetString(PyExc_TypeError, "Connection.pids must be a dict");
        goto done;
    }
    list = PyDict_GetItemWithError(pids, role);
    if (list == NULL) {
        if (PyErr_Occurred() || (list = PyList_New(0)) == NULL)
            goto done;
        r = PyDict_SetItem(pids, role, list);
        Py_DECREF(list);
        if (r < 0)
            goto done;
    }
    if ((r = PySequence_Contains(list, pid)) == 0)
        r = PyList_Append(list, pid);
    r = r < 0 ? -1 : 0;
done:
    Py_DECREF(pids);
    return r;
}

/* ConnectionTracker._new_conn(kind). New ref. */
static PyObject *
new_conn(GroupRun *self, PyObject *kind)
{
    return PyObject_CallOneArg(self->new_conn, kind);
}

/* ConnectionTracker._monitor_conn(pid): a new connection, remembered as a recent monitor. */
static PyObject *
new_monitor_conn(GroupRun *self, PyObject *pid)
{
    PyObject *conn = new_conn(self, S_connection), *pair, *r;
    if (conn == NULL)
        return NULL;
    if ((pair = PyTuple_Pack(2, pid, conn)) == NULL) {
        Py_DECREF(conn);
        return NULL;
    }
    r = PyObject_CallMethodOneArg(self->monitors, S_append, pair);
    Py_DECREF(pair);
    if (r == NULL) {
        Py_DECREF(conn);
        return NULL;
    }
    Py_DECREF(r);
    return conn;
}

/* ConnectionTracker._bind(pid, conn, role, line). */
static int
bind_pid(GroupRun *self, PyObject *pid, PyObject *conn, PyObject *role, PyObject *line)
{
    PyObject *st = PyObject_CallFunctionObjArgs(self->state_type, conn, role, line, NULL);
    int r;
    if (st == NULL)
        return -1;
    r = PyDict_SetItem(self->pids, pid, st);
    Py_DECREF(st);
    return r < 0 ? -1 : add_pid(self, conn, role, pid);
}

/* ConnectionTracker._conn_of(pid, line, role). New ref. */
static PyObject *
conn_of(GroupRun *self, PyObject *pid, PyObject *line, PyObject *role)
{
    PyObject *st = PyDict_GetItemWithError(self->pids, pid), *conn;
    if (st != NULL)
        return slot_get(&self->st_conn, st);
    if (PyErr_Occurred())
        return NULL;
    conn = role == S_monitor ? new_monitor_conn(self, pid) : new_conn(self, S_connection);
    if (conn == NULL)
        return NULL;
    if (bind_pid(self, pid, conn, role, line) < 0) {
        Py_DECREF(conn);
        return NULL;
    }
    return conn;
}

/* dict.get on a tracker attribute (a dict the sweep may replace). Borrowed-as-new ref or NULL. */
static PyObject *
tracker_get(GroupRun *self, const char *attr, PyObject *key, int *failed)
{
    PyObject *map = PyObject_GetAttrString(self->tracker, attr), *v = NULL;
    *failed = 0;
    if (map == NULL || !PyDict_Check(map)) {
        if (map != NULL)
            PyErr_Format(PyExc_TypeError, "tracker.%s must be a dict", attr);
        Py_XDECREF(map);
        *failed = 1;
        return NULL;
    }
    v = PyDict_GetItemWithError(map, key);
    Py_XINCREF(v);
    if (v == NULL && PyErr_Occurred())
        *failed = 1;
    Py_DECREF(map);
    return v;
}

static int
tracker_has(GroupRun *self, const char *attr, PyObject *key)
{
    PyObject *c = PyObject_GetAttrString(self->tracker, attr);
    int r;
    if (c == NULL)
        return -1;
    r = PySequence_Contains(c, key);
    Py_DECREF(c);
    return r;
}

/* The recent (pid, conn) entry whose pid is nearest below `pid` within 256 and, with `open`,
 * whose connection has not ended: PAM's child of a monitor, a user child's session child. */
static PyObject *
nearest_below(GroupRun *self, PyObject *pairs, long long pid, int open, int *failed)
{
    PyObject *it = PyObject_GetIter(pairs), *item, *best = NULL;
    long long best_pid = 0;
    *failed = 0;
    if (it == NULL) {
        *failed = 1;
        return NULL;
    }
    while ((item = PyIter_Next(it)) != NULL) {
        long long p;
        int overflow = 0;
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2
            || ((p = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(item, 0), &overflow)) == -1 && PyErr_Occurred())) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "expected (pid, connection) pairs");
            Py_DECREF(item);
            break;
        }
        if (overflow) { /* a pid too large for C: never within 256 below a pid that is not */
            Py_DECREF(item);
            continue;
        }
        if (pid - 256 <= p && p < pid && (best == NULL || p > best_pid)) {
            int ok = 1;
            if (open) {
                PyObject *end = slot_get(&self->conn_end, PyTuple_GET_ITEM(item, 1));
                if (end == NULL) {
                    Py_DECREF(item);
                    break;
                }
                ok = end == Py_None;
                Py_DECREF(end);
            }
            if (ok) {
                best_pid = p;
                Py_XSETREF(best, Py_NewRef(PyTuple_GET_ITEM(item, 1)));
            }
        }
        Py_DECREF(item);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        Py_XDECREF(best);
        *failed = 1;
        return NULL;
    }
    return best;
}

/* ConnectionTracker._place_new_pid: the connection (new ref) and role of a pid seen for the
 * first time; NULL with *role unset on error. */
static PyObject *
place_new_pid(GroupRun *self, PyObject *ev, PyObject *spec, PyObject *name, PyObject *pid,
              PyObject *line, PyObject **role)
{
    PyObject *monitor, *conn, *parent;
    long long p;
    int failed, r;
    if ((monitor = tracker_get(self, "_user_child", pid, &failed)) == NULL && !failed)
        monitor = tracker_get(self, "_user_child_prev", pid, &failed);
    if (failed)
        return NULL;
    if (monitor != NULL && monitor != Py_None) {
        PyObject *pair;
        conn = conn_of(self, monitor, line, S_monitor);
        Py_DECREF(monitor);
        if (conn == NULL)
            return NULL;
        if ((pair = PyTuple_Pack(2, pid, conn)) == NULL || PyList_Append(self->user_children, pair) < 0
            || (PyList_GET_SIZE(self->user_children) > 64
                && PyList_SetSlice(self->user_children, 0, 32, NULL) < 0)) {
            Py_XDECREF(pair);
            Py_DECREF(conn);
            return NULL;
        }
        Py_DECREF(pair);
        *role = S_user;
        return conn;
    }
    Py_XDECREF(monitor);
    if ((r = tracker_has(self, "_forked", pid)) == 0)
        r = tracker_has(self, "_forked_prev", pid);
    if (r != 0) {
        *role = S_monitor;
        return r < 0 ? NULL : new_monitor_conn(self, pid);
    }
    p = PyLong_AsLongLong(pid); /* assign_common checked that it fits */
    if (PyUnicode_Check(name) && PyUnicode_Tailmatch(name, S_pam_dot, 0, PY_SSIZE_T_MAX, -1) == 1) {
        if ((r = tracker_has(self, "_endpoint_pids", pid)) == 0)
            r = tracker_has(self, "_endpoint_pids_prev", pid);
        if (r < 0)
            return NULL;
        if (r == 0) {
            conn = nearest_below(self, self->monitors, p, 1, &failed);
            if (failed)
                return NULL;
            if (conn != NULL) {
                *role = S_pam;
                return conn;
            }
        }
    }
    parent = tracker_get(self, "_session_child", pid, &failed);
    if (!failed && parent == NULL)
        parent = tracker_get(self, "_session_child_prev", pid, &failed);
    if (failed)
        return NULL;
    if (parent != NULL && parent != Py_None) {
        r = PyDict_Contains(self->pids, parent);
        if (r != 0) {
            conn = r < 0 ? NULL : conn_of(self, parent, line, S_user);
            Py_DECREF(parent);
            *role = S_session;
            return conn;
        }
    }
    Py_XDECREF(parent);
    if (str_is(name, "session.controlling_tty")) {
        conn = nearest_below(self, self->user_children, p, 0, &failed);
        if (failed)
            return NULL;
        if (conn != NULL) {
            *role = S_session;
            return conn;
        }
    }
    if (spec != Py_None) {
        PyObject *f = event_fields(self, ev), *addr, *port;
        if (f == NULL)
            return NULL;
        addr = PyDict_Check(f) ? PyDict_GetItemWithError(f, S_addr) : NULL;
        port = PyDict_Check(f) ? PyDict_GetItemWithError(f, S_port) : NULL;
        if (PyErr_Occurred()) {
            Py_DECREF(f);
            return NULL;
        }
        if (addr != NULL && addr != Py_None && port != NULL && PyLong_Check(port)) {
            if ((r = name_flags(self, name)) < 0) {
                Py_DECREF(f);
                return NULL;
            }
            if (!(r & N_START)) {
                PyObject *key = PyTuple_Pack(2, addr, port), *endpoints, *found = NULL;
                endpoints = key != NULL ? PyObject_GetAttrString(self->tracker, "_endpoints") : NULL;
                if (endpoints != NULL)
                    found = PyObject_GetItem(endpoints, key);
                Py_XDECREF(key);
                Py_XDECREF(endpoints);
                if (found == NULL) {
                    if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
                        Py_DECREF(f);
                        return NULL;
                    }
                    PyErr_Clear();
                } else {
                    PyObject *outcome = slot_get(&self->conn_outcome, found);
                    Py_DECREF(f);
                    if (outcome == NULL) {
                        Py_DECREF(found);
                        return NULL;
                    }
                    *role = str_is(outcome, "accepted") ? S_user : S_monitor;
                    Py_DECREF(outcome);
                    return found;
                }
            }
        }
        Py_DECREF(f);
    }
    *role = S_monitor;
    return new_monitor_conn(self, pid);
}

/* ConnectionTracker._assign_slow for a line with a pid. 1 done; 0 a line with no pid (the
 * Python method decides); -1 error. */
static int
assign_common(GroupRun *self, PyObject *ev, PyObject *spec, PyObject *name, PyObject *pid, PyObject *prog)
{
    const EventLayout *L = &self->layout;
    PyObject *line = ev_get(L, ev, E_LINE), *relay = ev_get(L, ev, E_RELAY);
    PyObject *conn = NULL, *role = S_monitor, *st, *tmp = NULL;
    int r, rc = -1;
    if (line == NULL || relay == NULL)
        return -1;
    if (pid == Py_None)
        return 0; /* sshd -d / -e output: rare, left to Python */
    if ((r = in_set(self->listeners, pid)) < 0)
        return -1;
    if (r || (self->seen_new && str_is(prog, "sshd"))) {
        PyObject *child = NULL;
        role = S_listener;
        if ((r = in_set(self->listener_child_events, name)) < 0)
            return -1;
        if (r) {
            PyObject *fields = event_fields(self, ev);
            if (fields == NULL)
                return -1;
            child = PyDict_Check(fields) ? PyDict_GetItemWithError(fields, S_pid) : NULL;
            Py_XINCREF(child);
            Py_DECREF(fields);
            if (child == NULL && PyErr_Occurred())
                return -1;
        }
        if (child != NULL && PyLong_Check(child)) {
            st = PyDict_GetItemWithError(self->pids, child);
            if (st != NULL && str_is(name, "listener.forked_child")) {
                PyObject *c = slot_get(&self->st_conn, st), *end;
                if (c == NULL || (end = slot_get(&self->conn_end, c)) == NULL) {
                    Py_XDECREF(c);
                    Py_DECREF(child);
                    return -1;
                }
                Py_DECREF(c);
                Py_DECREF(end);
                if (end != Py_None && PyDict_DelItem(self->pids, child) < 0) { /* the pid reused */
                    Py_DECREF(child);
                    return -1;
                }
            } else if (st == NULL && PyErr_Occurred()) {
                Py_DECREF(child);
                return -1;
            }
            conn = conn_of(self, child, line, S_monitor);
        } else if (str_is(name, "listener.drop_connection")) {
            conn = new_conn(self, S_connection);
        } else {
            PyObject *lconns = PyObject_GetAttrString(self->tracker, "_listener_conn");
            if (lconns != NULL && PyDict_Check(lconns)) {
                conn = PyDict_GetItemWithError(lconns, pid);
                Py_XINCREF(conn);
                if (conn == NULL && !PyErr_Occurred()) {
                    conn = new_conn(self, S_listener);
                    if (conn != NULL && PyDict_SetItem(lconns, pid, conn) < 0)
                        Py_CLEAR(conn);
                }
            }
            Py_XDECREF(lconns);
        }
        Py_XDECREF(child);
        if (conn == NULL || add_pid(self, conn, S_listener, pid) < 0)
            goto done;
    } else {
        int overflow = 0;
        if (!PyLong_Check(pid) || (PyLong_AsLongLongAndOverflow(pid, &overflow) == -1 && PyErr_Occurred()))
            return PyErr_Occurred() ? -1 : 0;
        if (overflow)
            return 0; /* a pid too large for C arithmetic: Python places it */
        st = PyDict_GetItemWithError(self->pids, pid);
        if (st != NULL) {
            /* only a start line of a pid whose connection ended comes here with a state */
            PyObject *c = slot_get(&self->st_conn, st), *end;
            if (c == NULL || (end = slot_get(&self->conn_end, c)) == NULL) {
                Py_XDECREF(c);
                return -1;
            }
            Py_DECREF(c);
            Py_DECREF(end);
            if (end == Py_None || (r = name_flags(self, name)) < 0 || !(r & N_START))
                return r < 0 ? -1 : 0;
            if (PyDict_DelItem(self->pids, pid) < 0)
                return -1;
        } else if (PyErr_Occurred()) {
            return -1;
        }
        if ((conn = place_new_pid(self, ev, spec, name, pid, line, &role)) == NULL
            || bind_pid(self, pid, conn, role, line) < 0)
            goto done;
        if (str_is(relay, "preauth")) {
            role = S_preauth;
            if (add_pid(self, conn, S_preauth, pid) < 0)
                goto done;
        } else if (str_is(relay, "postauth")) {
            role = S_user;
        } else if (str_is(prog, "sshd-auth")) {
            role = S_preauth;
        }
    }
    if ((r = PyObject_IsTrue(prog)) < 0)
        goto done;
    if (r) {
        if ((tmp = slot_get(&self->conn_programs, conn)) == NULL || PySet_Add(tmp, prog) < 0)
            goto done;
        Py_CLEAR(tmp);
    }
    if ((tmp = slot_get(&self->conn_id, conn)) == NULL)
        goto done;
    ev_set(L, ev, E_CONN, tmp);
    Py_CLEAR(tmp);
    ev_set(L, ev, E_ROLE, role);
    if (self->summaries) {
        if ((tmp = PyObject_CallFunctionObjArgs(self->fold, conn, ev, NULL)) == NULL)
            goto done;
        Py_CLEAR(tmp);
    } else if (fold_lean(self, conn, ev, spec, name) < 0) {
        goto done;
    }
    if ((tmp = slot_get(&self->conn_kind, conn)) == NULL)
        goto done;
    if (str_is(tmp, "dropped")) {
        Py_CLEAR(tmp);
        if ((tmp = PyObject_CallOneArg(self->dropped_done, conn)) == NULL)
            goto done;
    }
    rc = 1;
done:
    Py_XDECREF(tmp);
    Py_XDECREF(conn);
    return rc;
}

/* ConnectionTracker._assign_slow: the commonest cases here, the others in Python. */
static int
assign_slow(GroupRun *self, PyObject *ev, PyObject *spec, PyObject *name, PyObject *pid, PyObject *prog)
{
    int r = assign_common(self, ev, spec, name, pid, prog);
    return r != 0 ? (r < 0 ? -1 : 0) : call1(self->assign_slow, ev);
}

/* `_assign`'s fast path for one event leaving the window (connections.py, run()). */
static int
settle(GroupRun *self, PyObject *ev)
{
    const EventLayout *L = &self->layout;
    PyObject *spec, *pid, *name, *prog, *st, *conn = NULL, *tmp = NULL, *line, *relay;
    int r, handled, rc = -1;

    if ((spec = ev_get(L, ev, E_SPEC)) == NULL || (name = ev_get(L, ev, E_EVENT)) == NULL
        || (pid = ev_get(L, ev, E_PID)) == NULL || (prog = ev_get(L, ev, E_PROGRAM)) == NULL)
        return -1;
    if (spec == Py_None) {
        if (str_is(name, "unknown"))
            return call1(self->assign, ev); /* _assign: an unknown line of a placed pid */
        return 0;
    }
    if (pid == Py_None || (self->seen_new && str_is(prog, "sshd")))
        return assign_slow(self, ev, spec, name, pid, prog);
    if ((r = in_set(self->listeners, pid)) != 0)
        return r < 0 ? -1 : assign_slow(self, ev, spec, name, pid, prog);
    st = PyDict_GetItemWithError(self->pids, pid);
    if (st == NULL)
        return PyErr_Occurred() ? -1 : assign_slow(self, ev, spec, name, pid, prog);
    Py_INCREF(st);
    if ((conn = slot_get(&self->st_conn, st)) == NULL || (tmp = slot_get(&self->conn_end, conn)) == NULL)
        goto done;
    if (tmp != Py_None) {
        if ((r = name_flags(self, name)) < 0 || (r & N_START)) {
            rc = r < 0 ? -1 : assign_slow(self, ev, spec, name, pid, prog);
            goto done;
        }
    }
    Py_CLEAR(tmp);
    line = ev_get(L, ev, E_LINE);
    relay = ev_get(L, ev, E_RELAY);
    if (line == NULL || relay == NULL || slot_set(&self->st_last_line, st, line) < 0)
        goto done;
    if (relay == Py_None) {
        if (str_is(prog, "sshd-auth"))
            ev_set(L, ev, E_ROLE, S_preauth);
        else {
            if ((tmp = slot_get(&self->st_role, st)) == NULL)
                goto done;
            ev_set(L, ev, E_ROLE, tmp);
            Py_CLEAR(tmp);
        }
    } else if (str_is(relay, "preauth")) {
        ev_set(L, ev, E_ROLE, S_preauth);
        if ((tmp = slot_get(&self->st_relayed, st)) == NULL || (r = PyObject_IsTrue(tmp)) < 0)
            goto done;
        Py_CLEAR(tmp);
        if (!r) {
            if (slot_set(&self->st_relayed, st, Py_True) < 0)
                goto done;
            if ((tmp = PyObject_CallMethodObjArgs(conn, self->add_pid, S_preauth, pid, NULL)) == NULL)
                goto done;
            Py_CLEAR(tmp);
        }
    } else {
        ev_set(L, ev, E_ROLE, S_user);
    }
    if ((tmp = slot_get(&self->conn_id, conn)) == NULL)
        goto done;
    ev_set(L, ev, E_CONN, tmp);
    Py_CLEAR(tmp);
    /* spec.name in handlers or (conn.addr is None and "addr" in spec.fields) */
    if ((tmp = slot_get(&self->spec_name, spec)) == NULL)
        goto done;
    handled = name_flags(self, tmp);
    Py_CLEAR(tmp);
    if (handled > 0)
        handled = (handled & N_HANDLER) != 0;
    if (handled < 0)
        goto done;
    if (!handled) {
        if ((tmp = slot_get(&self->conn_addr, conn)) == NULL)
            goto done;
        if (tmp == Py_None) {
            Py_CLEAR(tmp);
            if ((tmp = slot_get(&self->spec_fields, spec)) == NULL)
                goto done;
            if ((handled = PySequence_Contains(tmp, S_addr)) < 0)
                goto done;
        }
        Py_CLEAR(tmp);
    }
    if (handled && !self->summaries) {
        if ((tmp = slot_get(&self->spec_name, spec)) == NULL)
            goto done;
        r = fold_lean(self, conn, ev, spec, tmp);
        Py_CLEAR(tmp);
        if (r < 0)
            goto done;
    } else if (handled) {
        tmp = PyObject_CallFunctionObjArgs(self->fold, conn, ev, NULL);
        if (tmp == NULL)
            goto done;
        Py_CLEAR(tmp);
    } else {
        if (slot_set(&self->conn_last_line, conn, line) < 0)
            goto done;
        if (self->tally) {
            PyObject *ts;
            long long count;
            if ((tmp = slot_get(&self->conn_n_events, conn)) == NULL)
                goto done;
            if ((count = PyLong_AsLongLong(tmp)) == -1 && PyErr_Occurred())
                goto done;
            Py_SETREF(tmp, PyLong_FromLongLong(count + 1));
            if (tmp == NULL || slot_set(&self->conn_n_events, conn, tmp) < 0)
                goto done;
            Py_CLEAR(tmp);
            if ((ts = ev_get(L, ev, E_TS)) == NULL)
                goto done;
            if (ts != Py_None && slot_set(&self->conn_last_ts, conn, ts) < 0)
                goto done;
            if ((tmp = slot_get(&self->conn_events, conn)) == NULL)
                goto done;
            if (tmp != Py_None && PyList_Append(tmp, ev) < 0)
                goto done;
            Py_CLEAR(tmp);
        }
    }
    rc = 0;
done:
    Py_XDECREF(tmp);
    Py_XDECREF(conn);
    Py_DECREF(st);
    return rc;
}

/* tracker.<attr>[fields["pid"]] = pid when the event's "pid" field is an int (and, with
 * `not_self`, not the event's own pid): ConnectionTracker._learn's facts about a child. */
static int
learn_child(GroupRun *self, PyObject *ev, PyObject *pid, const char *attr, int not_self)
{
    PyObject *fields = event_fields(self, ev), *child, *map;
    int rc = 0;
    if (fields == NULL)
        return -1;
    if (!PyDict_Check(fields)) {
        Py_DECREF(fields);
        PyErr_SetString(PyExc_TypeError, "Event.fields must be a dict");
        return -1;
    }
    child = PyDict_GetItemWithError(fields, S_pid);
    if (child != NULL && PyLong_Check(child)) {
        if (not_self && (rc = PyObject_RichCompareBool(child, pid, Py_NE)) <= 0) {
            Py_DECREF(fields);
            return rc;
        }
        if ((map = PyObject_GetAttrString(self->tracker, attr)) == NULL) {
            rc = -1;
        } else {
            rc = PyObject_SetItem(map, child, pid);
            Py_DECREF(map);
        }
    } else if (child == NULL && PyErr_Occurred()) {
        rc = -1;
    }
    Py_DECREF(fields);
    return rc;
}

/* Pass 1 for an event entering the window: ConnectionTracker._learn, then run()'s watch for
 * the 9.8+ program names. */
static int
learn(GroupRun *self, PyObject *ev)
{
    PyObject *name = ev_get(&self->layout, ev, E_EVENT), *prog, *pid;
    int r;
    if (name == NULL)
        return -1;
    if ((r = name_flags(self, name)) < 0)
        return -1;
    if (r & N_LEARN) {
        if (r < 0 || (pid = ev_get(&self->layout, ev, E_PID)) == NULL)
            return -1;
        if (pid == Py_None)
            return 0;
        if (str_is(name, "listener.forked_child")) {
            if (PySet_Add(self->listeners, pid) < 0)
                return -1;
            return learn_child(self, ev, pid, "_forked", 0);
        }
        if (str_is(name, "connection.user_child"))
            return learn_child(self, ev, pid, "_user_child", 0);
        if ((r = in_set(self->endpoint_events, name)) != 0)
            return r < 0 ? -1 : PySet_Add(self->endpoint_pids, pid);
        if ((r = in_set(self->session_pid_events, name)) != 0)
            return r < 0 ? -1 : learn_child(self, ev, pid, "_session_child", 1);
        if ((r = in_set(self->listener_events, name)) != 0)
            return r < 0 ? -1 : PySet_Add(self->listeners, pid);
        return 0;
    }
    if (self->seen_new)
        return 0;
    if ((prog = ev_get(&self->layout, ev, E_PROGRAM)) == NULL)
        return -1;
    if (prog == self->checked_prog)
        return 0;
    if (str_is(prog, "sshd-session") || str_is(prog, "sshd-auth")) {
        self->seen_new = 1;
        return PyObject_SetAttr(self->tracker, S_seen_new, Py_True);
    }
    Py_INCREF(prog);
    Py_XSETREF(self->checked_prog, prog);
    return 0;
}

/* Hand the events still in the window to the tracker's own buffer and flush it. */
static int
group_finish(GroupRun *self)
{
    while (self->count > 0) {
        PyObject *ev = self->ring[self->head];
        self->ring[self->head] = NULL;
        self->head = (self->head + 1) % self->cap;
        self->count--;
        PyObject *r = PyObject_CallMethod(self->buffer, "append", "O", ev);
        Py_DECREF(ev);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    PyObject *flushed = PyObject_CallMethod(self->tracker, "flush", NULL);
    if (flushed == NULL)
        return -1;
    self->rest = PyObject_GetIter(flushed);
    Py_DECREF(flushed);
    return self->rest == NULL ? -1 : 0;
}

static PyObject *
group_next(GroupRun *self)
{
    for (;;) {
        PyObject *ev, *old, *line;
        if (self->rest != NULL)
            return PyIter_Next(self->rest);
        if (self->events == NULL)
            return NULL;
        ev = PyIter_Next(self->events);
        if (ev == NULL) {
            if (PyErr_Occurred() || group_finish(self) < 0)
                return NULL;
            continue;
        }
        if (Py_TYPE(ev) != self->layout.type) {
            Py_DECREF(ev);
            PyErr_SetString(PyExc_TypeError, "GroupRun takes Event objects");
            return NULL;
        }
        if (learn(self, ev) < 0) {
            Py_DECREF(ev);
            return NULL;
        }
        self->ring[(self->head + self->count) % self->cap] = ev;
        self->count++;
        if (self->count <= self->window)
            continue;
        old = self->ring[self->head];
        self->ring[self->head] = NULL;
        self->head = (self->head + 1) % self->cap;
        self->count--;
        if (++self->since_sweep >= self->sweep_every) {
            self->since_sweep = 0;
            line = ev_get(&self->layout, old, E_LINE);
            if (line == NULL || call1(self->sweep, line) < 0 || group_refresh(self) < 0) {
                Py_DECREF(old);
                return NULL;
            }
        }
        if (settle(self, old) < 0) {
            Py_DECREF(old);
            return NULL;
        }
        return old;
    }
}

static PyObject *
group_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"tracker", "events", "event_type", NULL};
    PyObject *tracker, *events, *etype, *v;
    GroupRun *self;
    Py_ssize_t window;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO", kwlist, &tracker, &events, &etype))
        return NULL;
    self = (GroupRun *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->st_conn.name = S_conn;
    self->conn_first_line.name = S_first_line;
    self->conn_first_ts.name = S_first_ts;
    self->conn_ts_format.name = S_ts_format;
    self->conn_outcome.name = S_outcome;
    self->conn_kind.name = S_kind;
    self->conn_port.name = S_port;
    self->conn_indexed.name = S_indexed;
    self->conn_pids.name = S_pids_attr;
    self->conn_programs.name = S_programs;
    self->spec_named.name = S_named;
    self->spec_int_fields.name = S_int_fields;
    self->st_last_line.name = S_last_line;
    self->st_role.name = S_role;
    self->st_relayed.name = S_relayed;
    self->conn_end.name = S_end;
    self->conn_id.name = S_id;
    self->conn_addr.name = S_addr;
    self->conn_last_line.name = S_last_line;
    self->conn_n_events.name = S_n_events;
    self->conn_last_ts.name = S_last_ts;
    self->conn_events.name = S_events;
    self->spec_name.name = S_name;
    self->spec_fields.name = S_fields;
    if (event_layout(etype, &self->layout) < 0)
        goto fail;
    Py_INCREF(etype);
    Py_INCREF(tracker);
    self->tracker = tracker;
    if ((self->events = PyObject_GetIter(events)) == NULL)
        goto fail;
    if ((v = PyObject_GetAttrString(tracker, "window")) == NULL)
        goto fail;
    window = PyLong_AsSsize_t(v);
    Py_DECREF(v);
    if (window < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "window must be >= 0");
        goto fail;
    }
    self->window = window;
    self->cap = window + 1;
    if ((self->ring = PyMem_Calloc(self->cap, sizeof(PyObject *))) == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
#define TAKE(field, expr) if ((self->field = (expr)) == NULL) goto fail
    TAKE(learn_events, PyObject_GetAttrString(tracker, "_learn_events"));
    TAKE(start_events, PyObject_GetAttrString(tracker, "_start_events"));
    TAKE(endpoint_events, PyObject_GetAttrString(tracker, "_endpoint_events"));
    TAKE(session_pid_events, PyObject_GetAttrString(tracker, "_session_pid_events"));
    TAKE(listener_events, PyObject_GetAttrString(tracker, "_listener_events"));
    TAKE(handlers, PyObject_GetAttrString(tracker, "_handlers"));
    TAKE(buffer, PyObject_GetAttrString(tracker, "_buffer"));
    TAKE(assign, PyObject_GetAttrString(tracker, "_assign"));
    TAKE(assign_slow, PyObject_GetAttrString(tracker, "_assign_slow"));
    TAKE(state_type, PyObject_GetAttrString(tracker, "_state_type"));
    TAKE(user_children, PyObject_GetAttrString(tracker, "_user_children"));
    TAKE(monitors, PyObject_GetAttrString(tracker, "_monitors"));
    TAKE(new_conn, PyObject_GetAttrString(tracker, "_new_conn"));
    TAKE(listener_child_events, PyObject_GetAttrString(tracker, "_listener_child_events"));
    TAKE(dropped_done, PyObject_GetAttrString(tracker, "_dropped_done"));
    TAKE(fold, PyObject_GetAttrString(tracker, "_fold"));
    TAKE(sweep, PyObject_GetAttrString(tracker, "_sweep"));
    TAKE(add_pid, PyUnicode_InternFromString("add_pid"));
#undef TAKE
    if (!PyAnySet_Check(self->learn_events) || !PyAnySet_Check(self->start_events)
        || !PyAnySet_Check(self->endpoint_events) || !PyAnySet_Check(self->session_pid_events)
        || !PyAnySet_Check(self->listener_events) || !PyDict_Check(self->handlers)) {
        PyErr_SetString(PyExc_TypeError, "tracker's event sets / handlers have unexpected types");
        goto fail;
    }
    if (group_refresh(self) < 0)
        goto fail;
    if ((v = PyObject_GetAttrString(tracker, "sweep_every")) == NULL)
        goto fail;
    self->sweep_every = PyLong_AsSsize_t(v);
    Py_DECREF(v);
    if (self->sweep_every < 0 && PyErr_Occurred())
        goto fail;
    if ((v = PyObject_GetAttrString(tracker, "_summaries")) == NULL)
        goto fail;
    self->summaries = PyObject_IsTrue(v);
    Py_DECREF(v);
    if (self->summaries < 0)
        goto fail;
    if ((v = PyObject_GetAttrString(tracker, "_tally")) == NULL)
        goto fail;
    self->tally = PyObject_IsTrue(v);
    Py_DECREF(v);
    if ((v = PyObject_GetAttr(tracker, S_seen_new)) == NULL)
        goto fail;
    self->seen_new = PyObject_IsTrue(v);
    Py_DECREF(v);
    if (self->tally < 0 || self->seen_new < 0)
        goto fail;
    return (PyObject *)self;
fail:
    Py_DECREF(self);
    return NULL;
}

static int
group_traverse(GroupRun *self, visitproc visit, void *arg)
{
    Py_VISIT(self->tracker);
    Py_VISIT(self->events);
    Py_VISIT(self->rest);
    Py_VISIT(self->buffer);
    Py_VISIT(self->assign);
    Py_VISIT(self->assign_slow);
    Py_VISIT(self->state_type);
    Py_VISIT(self->user_children);
    Py_VISIT(self->monitors);
    Py_VISIT(self->new_conn);
    Py_VISIT(self->dropped_done);
    Py_VISIT(self->fold);
    Py_VISIT(self->sweep);
    Py_VISIT(self->handlers);
    Py_VISIT(self->pids);
    Py_VISIT(self->endpoint_pids);
    if (self->ring != NULL)
        for (Py_ssize_t i = 0; i < self->cap; i++)
            Py_VISIT(self->ring[i]);
    return 0;
}

static int
group_clear(GroupRun *self)
{
    if (self->ring != NULL) {
        for (Py_ssize_t i = 0; i < self->cap; i++)
            Py_CLEAR(self->ring[i]);
        self->count = 0;
    }
    Py_CLEAR(self->tracker);
    Py_CLEAR(self->events);
    Py_CLEAR(self->rest);
    Py_CLEAR(self->learn_events);
    Py_CLEAR(self->start_events);
    Py_CLEAR(self->endpoint_events);
    Py_CLEAR(self->session_pid_events);
    Py_CLEAR(self->listener_events);
    Py_CLEAR(self->endpoint_pids);
    Py_CLEAR(self->handlers);
    Py_CLEAR(self->listeners);
    Py_CLEAR(self->pids);
    Py_CLEAR(self->buffer);
    Py_CLEAR(self->assign);
    Py_CLEAR(self->assign_slow);
    Py_CLEAR(self->fold);
    Py_CLEAR(self->sweep);
    Py_CLEAR(self->add_pid);
    Py_CLEAR(self->checked_prog);
    for (int i = 0; i < 256; i++)
        Py_CLEAR(self->names[i].name);
    Py_CLEAR(self->st_conn.type);
    Py_CLEAR(self->conn_first_line.type);
    Py_CLEAR(self->conn_first_ts.type);
    Py_CLEAR(self->conn_ts_format.type);
    Py_CLEAR(self->conn_outcome.type);
    Py_CLEAR(self->conn_kind.type);
    Py_CLEAR(self->conn_port.type);
    Py_CLEAR(self->conn_indexed.type);
    Py_CLEAR(self->conn_pids.type);
    Py_CLEAR(self->conn_programs.type);
    Py_CLEAR(self->spec_named.type);
    Py_CLEAR(self->spec_int_fields.type);
    Py_CLEAR(self->state_type);
    Py_CLEAR(self->user_children);
    Py_CLEAR(self->monitors);
    Py_CLEAR(self->new_conn);
    Py_CLEAR(self->listener_child_events);
    Py_CLEAR(self->dropped_done);
    Py_CLEAR(self->st_last_line.type);
    Py_CLEAR(self->st_role.type);
    Py_CLEAR(self->st_relayed.type);
    Py_CLEAR(self->conn_end.type);
    Py_CLEAR(self->conn_id.type);
    Py_CLEAR(self->conn_addr.type);
    Py_CLEAR(self->conn_last_line.type);
    Py_CLEAR(self->conn_n_events.type);
    Py_CLEAR(self->conn_last_ts.type);
    Py_CLEAR(self->conn_events.type);
    Py_CLEAR(self->spec_name.type);
    Py_CLEAR(self->spec_fields.type);
    layout_clear(&self->layout);
    return 0;
}

static void
group_dealloc(GroupRun *self)
{
    PyObject_GC_UnTrack(self);
    group_clear(self);
    PyMem_Free(self->ring);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject GroupRunType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "simulator.logs._speedups.GroupRun",
    .tp_basicsize = sizeof(GroupRun),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "ConnectionTracker.run's loop (the fast path of grouping) for a bounded window.",
    .tp_new = group_new,
    .tp_dealloc = (destructor)group_dealloc,
    .tp_traverse = (traverseproc)group_traverse,
    .tp_clear = (inquiry)group_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)group_next,
};

/* ---- ChunkLines ------------------------------------------------------------------------- */

/* reader.LogReader's loop for a plain file: bytes read a chunk at a time, split at "\n" ("\r\n"
 * too), each line decoded as UTF-8 with backslash escapes for bytes that are not (a line never
 * splits a UTF-8 sequence, so line by line gives what decoding the whole file would), ASCII
 * lines copied without a decoder. A read error listed in `errors` ends the lines and goes to
 * on_error(exc); the file is closed at the end. */
typedef struct {
    PyObject_HEAD
    PyObject *file, *on_error, *errors;
    char *buf;
    Py_ssize_t cap, start, end, chunk;
    int eof, closed;
} ChunkLines;

static int
is_ascii(const char *s, Py_ssize_t n)
{
    uint64_t acc = 0, w;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= (unsigned char)s[i];
    return (acc & 0x8080808080808080ull) == 0;
}

static PyObject *
line_text(const char *s, Py_ssize_t n)
{
    if (is_ascii(s, n))
        return ascii_str(s, n);
    return PyUnicode_DecodeUTF8(s, n, "backslashreplace");
}

static void
lines_close(ChunkLines *self)
{
    PyObject *r;
    if (self->closed || self->file == NULL)
        return;
    self->closed = 1;
    r = PyObject_CallMethod(self->file, "close", NULL);
    if (r == NULL)
        PyErr_WriteUnraisable(self->file);
    Py_XDECREF(r);
}

/* Read one more chunk: 1 read, 0 end of file (or a read error handed to on_error), -1 error. */
static int
lines_fill(ChunkLines *self)
{
    PyObject *data;
    Py_ssize_t have = self->end - self->start, n;
    char *p;
    data = PyObject_CallMethod(self->file, "read", "n", self->chunk);
    if (data == NULL) {
        if (self->errors != NULL && PyErr_ExceptionMatches(self->errors)) {
            PyObject *type, *value, *tb, *r;
            PyErr_Fetch(&type, &value, &tb);
            PyErr_NormalizeException(&type, &value, &tb);
            r = PyObject_CallOneArg(self->on_error, value ? value : Py_None);
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
            if (r == NULL)
                return -1;
            Py_DECREF(r);
            self->start = self->end; /* a line cut by the error is not given */
            return 0;
        }
        return -1;
    }
    if (!PyBytes_Check(data)) {
        Py_DECREF(data);
        PyErr_SetString(PyExc_TypeError, "the log must be read as bytes");
        return -1;
    }
    n = PyBytes_GET_SIZE(data);
    if (n == 0) {
        Py_DECREF(data);
        return 0;
    }
    if (self->start > 0) {
        memmove(self->buf, self->buf + self->start, (size_t)have);
        self->start = 0;
        self->end = have;
    }
    if (have + n > self->cap) {
        Py_ssize_t cap = (have + n) * 2;
        if ((p = PyMem_Realloc(self->buf, (size_t)cap)) == NULL) {
            Py_DECREF(data);
            PyErr_NoMemory();
            return -1;
        }
        self->buf = p;
        self->cap = cap;
    }
    memcpy(self->buf + self->end, PyBytes_AS_STRING(data), (size_t)n);
    self->end += n;
    Py_DECREF(data);
    return 1;
}

static PyObject *
lines_next(ChunkLines *self)
{
    for (;;) {
        const char *s = self->buf + self->start;
        Py_ssize_t have = self->end - self->start;
        const char *nl = have > 0 ? memchr(s, '\n', (size_t)have) : NULL;
        if (nl != NULL) {
            Py_ssize_t n = nl - s;
            self->start += n + 1;
            if (n > 0 && s[n - 1] == '\r')
                n--;
            return line_text(s, n);
        }
        if (self->eof) {
            if (have > 0) {
                self->start = self->end;
                return line_text(s, have); /* the last line, with no line end */
            }
            lines_close(self);
            return NULL;
        }
        switch (lines_fill(self)) {
        case -1:
            lines_close(self);
            return NULL;
        case 0:
            self->eof = 1;
        }
    }
}

static PyObject *
lines_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"file", "chunk", "on_error", "errors", NULL};
    PyObject *file, *on_error = Py_None, *errors = NULL;
    Py_ssize_t chunk = 1 << 18;
    ChunkLines *self;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|nOO", kwlist, &file, &chunk, &on_error, &errors))
        return NULL;
    if (chunk < 1) {
        PyErr_SetString(PyExc_ValueError, "chunk must be positive");
        return NULL;
    }
    self = (ChunkLines *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    Py_INCREF(file);
    self->file = file;
    Py_INCREF(on_error);
    self->on_error = on_error;
    if (errors != NULL && errors != Py_None) {
        Py_INCREF(errors);
        self->errors = errors;
    }
    self->chunk = chunk;
    return (PyObject *)self;
}

static int
lines_traverse(ChunkLines *self, visitproc visit, void *arg)
{
    Py_VISIT(self->file);
    Py_VISIT(self->on_error);
    Py_VISIT(self->errors);
    return 0;
}

static int
lines_clear_refs(ChunkLines *self)
{
    Py_CLEAR(self->file);
    Py_CLEAR(self->on_error);
    Py_CLEAR(self->errors);
    return 0;
}

static void
lines_dealloc(ChunkLines *self)
{
    PyObject_GC_UnTrack(self);
    lines_clear_refs(self);
    PyMem_Free(self->buf);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject ChunkLinesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "simulator.logs._speedups.ChunkLines",
    .tp_basicsize = sizeof(ChunkLines),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The text lines of a plain binary file (reader.LogReader's fast path).",
    .tp_new = lines_new,
    .tp_dealloc = (destructor)lines_dealloc,
    .tp_traverse = (traverseproc)lines_traverse,
    .tp_clear = (inquiry)lines_clear_refs,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)lines_next,
};

/* ---- ConnectionTracker._sweep ---------------------------------------------------------- */

static int
line_before(SlotRef *r, PyObject *obj, PyObject *bound)
{
    PyObject *v = slot_get(r, obj);
    int lt;
    if (v == NULL)
        return -1;
    lt = PyObject_RichCompareBool(v, bound, Py_LT);
    Py_DECREF(v);
    return lt;
}

/* sweep_state(pids, listener_conns, live, endpoints, ended_before, idle_before)
 *     -> (connections done, endpoints still live)
 * The scans of ConnectionTracker._sweep (connections.py), which the tracker makes every
 * sweep_every lines over all it knows: pids of connections that ended before `ended_before`
 * or silent since before `idle_before` are deleted from `pids`; connections no pid refers to
 * and silent since before `ended_before` are deleted from `live` and returned, in `live`'s
 * order; the endpoints of connections still in `live` are returned as a new dict. */
static PyObject *
sweep_state(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *pids, *listener_conns, *live, *endpoints, *ended_before, *idle_before;
    PyObject *gone = NULL, *ids = NULL, *done = NULL, *kept = NULL, *key, *value, *out = NULL;
    SlotRef st_last = {S_last_line}, st_conn = {S_conn}, c_end = {S_end}, c_last = {S_last_line},
            c_id = {S_id};
    Py_ssize_t pos = 0;
    int r;
    if (nargs != 6 || !PyDict_Check(args[0]) || !PyDict_Check(args[1]) || !PyDict_Check(args[2])
        || !PyDict_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "sweep_state(pids, listener_conns, live, endpoints, ended_before, idle_before)");
        return NULL;
    }
    pids = args[0], listener_conns = args[1], live = args[2], endpoints = args[3];
    ended_before = args[4], idle_before = args[5];
    if ((gone = PyList_New(0)) == NULL || (ids = PySet_New(NULL)) == NULL || (done = PyList_New(0)) == NULL
        || (kept = PyDict_New()) == NULL)
        goto fail;
    while (PyDict_Next(pids, &pos, &key, &value)) {
        PyObject *conn, *end;
        if ((r = line_before(&st_last, value, idle_before)) < 0)
            goto fail;
        if (!r) {
            if ((conn = slot_get(&st_conn, value)) == NULL)
                goto fail;
            if ((end = slot_get(&c_end, conn)) == NULL) {
                Py_DECREF(conn);
                goto fail;
            }
            r = end != Py_None ? line_before(&c_last, conn, ended_before) : 0;
            Py_DECREF(end);
            Py_DECREF(conn);
            if (r < 0)
                goto fail;
        }
        if (r && PyList_Append(gone, key) < 0)
            goto fail;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(gone); i++)
        if (PyDict_DelItem(pids, PyList_GET_ITEM(gone, i)) < 0)
            goto fail;
    pos = 0;
    while (PyDict_Next(pids, &pos, &key, &value)) {
        PyObject *conn = slot_get(&st_conn, value), *id;
        if (conn == NULL)
            goto fail;
        id = slot_get(&c_id, conn);
        Py_DECREF(conn);
        if (id == NULL)
            goto fail;
        r = PySet_Add(ids, id);
        Py_DECREF(id);
        if (r < 0)
            goto fail;
    }
    pos = 0;
    while (PyDict_Next(listener_conns, &pos, &key, &value)) {
        PyObject *id = slot_get(&c_id, value);
        if (id == NULL)
            goto fail;
        r = PySet_Add(ids, id);
        Py_DECREF(id);
        if (r < 0)
            goto fail;
    }
    pos = 0;
    while (PyDict_Next(live, &pos, &key, &value)) {
        if ((r = line_before(&c_last, value, ended_before)) < 0)
            goto fail;
        if (r && (r = PySet_Contains(ids, key)) == 0)
            r = PyList_Append(done, value) < 0 ? -1 : 0;
        if (r < 0)
            goto fail;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(done); i++) {
        PyObject *id = slot_get(&c_id, PyList_GET_ITEM(done, i));
        if (id == NULL)
            goto fail;
        r = PyDict_DelItem(live, id);
        Py_DECREF(id);
        if (r < 0)
            goto fail;
    }
    pos = 0;
    while (PyDict_Next(endpoints, &pos, &key, &value)) {
        PyObject *id = slot_get(&c_id, value);
        if (id == NULL)
            goto fail;
        r = PyDict_Contains(live, id);
        Py_DECREF(id);
        if (r < 0 || (r && PyDict_SetItem(kept, key, value) < 0))
            goto fail;
    }
    out = PyTuple_Pack(2, done, kept);
fail:
    Py_XDECREF(gone);
    Py_XDECREF(ids);
    Py_XDECREF(done);
    Py_XDECREF(kept);
    Py_XDECREF(st_last.type);
    Py_XDECREF(st_conn.type);
    Py_XDECREF(c_end.type);
    Py_XDECREF(c_last.type);
    Py_XDECREF(c_id.type);
    return out;
}

/* ---- Event.fields ----------------------------------------------------------------------- */

/* build_fields(groups, named, int_fields): Event.fields' dict, built as events.py builds it
 * ({name: groups[i] for i, name in named}, then int() of the int-typed fields that parse).
 * Grouping asks for the fields of a few lines of every connection. */
static PyObject *
build_fields(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *groups, *named, *ints, *d, *it, *name;
    if (nargs != 3 || !PyTuple_Check(args[0]) || !PyTuple_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "build_fields(groups: tuple, named: tuple, int_fields)");
        return NULL;
    }
    groups = args[0], named = args[1], ints = args[2];
    if ((d = PyDict_New()) == NULL)
        return NULL;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(named); k++) {
        PyObject *pair = PyTuple_GET_ITEM(named, k);
        Py_ssize_t i;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2)
            goto bad;
        i = PyLong_AsSsize_t(PyTuple_GET_ITEM(pair, 0));
        if (i == -1 && PyErr_Occurred())
            goto fail;
        if (i < 0 || i >= PyTuple_GET_SIZE(groups)) {
            PyErr_SetString(PyExc_IndexError, "tuple index out of range");
            goto fail;
        }
        if (PyDict_SetItem(d, PyTuple_GET_ITEM(pair, 1), PyTuple_GET_ITEM(groups, i)) < 0)
            goto fail;
    }
    if ((it = PyObject_GetIter(ints)) == NULL)
        goto fail;
    while ((name = PyIter_Next(it)) != NULL) {
        PyObject *v = PyDict_GetItemWithError(d, name), *n;
        if (v == NULL) {
            Py_DECREF(name);
            if (PyErr_Occurred())
                break;
            continue;
        }
        if (v != Py_None) {
            if ((n = PyNumber_Long(v)) == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_ValueError)) {
                    Py_DECREF(name);
                    break;
                }
                PyErr_Clear();
            } else if (PyDict_SetItem(d, name, n) < 0) {
                Py_DECREF(n);
                Py_DECREF(name);
                break;
            } else {
                Py_DECREF(n);
            }
        }
        Py_DECREF(name);
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        goto fail;
    return d;
bad:
    PyErr_SetString(PyExc_TypeError, "named must hold (index, name) pairs");
fail:
    Py_DECREF(d);
    return NULL;
}

static PyMethodDef speedups_methods[] = {
    {"build_fields", (PyCFunction)(void (*)(void))build_fields, METH_FASTCALL,
     "Event.fields' dict from the match groups (see events.py)."},
    {"sweep_state", (PyCFunction)(void (*)(void))sweep_state, METH_FASTCALL,
     "The scans of ConnectionTracker._sweep (see connections.py)."},
    {NULL, NULL, 0, NULL},
};

/* ---- module ----------------------------------------------------------------------------- */

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "simulator.logs._speedups",
    .m_doc = "C twins of the parser's and the grouping's hot loops (see parser.py, connections.py).",
    .m_size = -1,
    .m_methods = speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *m;
    struct { const char *name; PyTypeObject *type; } types[] = {
        {"SyslogEvents", &SyslogEventsType}, {"GroupRun", &GroupRunType},
        {"ChunkLines", &ChunkLinesType}, {"EventSlots", &EventSlotsType},
    };
    char_classes();
    struct { PyObject **slot; const char *text; } names[] = {
        {&S_conn, "conn"}, {&S_end, "end"}, {&S_last_line, "last_line"}, {&S_role, "role"},
        {&S_relayed, "relayed"}, {&S_id, "id"}, {&S_name, "name"}, {&S_addr, "addr"},
        {&S_fields, "fields"}, {&S_n_events, "n_events"}, {&S_last_ts, "last_ts"},
        {&S_events, "events"}, {&S_preauth, "preauth"}, {&S_user, "user"},
        {&S_unknown, "unknown"}, {&S_pids, "_pids"}, {&S_listeners, "_listeners"},
        {&S_seen_new, "_seen_new_programs"}, {&S_DEBUG[0], "DEBUG1"}, {&S_DEBUG[1], "DEBUG2"},
        {&S_DEBUG[2], "DEBUG3"}, {&S_ERROR, "ERROR"}, {&S_FATAL, "FATAL"}, {&S_INFO, "INFO"},
        {&S_VARIES, "VARIES"}, {&S_postauth, "postauth"}, {&S_fullmatch, "fullmatch"},
        {&S_groups, "groups"}, {&S_regex, "regex"}, {&S_level, "level"},
        {&S_fields_prop, "fields"},
        {&S_pid, "pid"}, {&S_first_line, "first_line"}, {&S_first_ts, "first_ts"},
        {&S_ts_format, "_ts_format"}, {&S_outcome, "outcome"}, {&S_kind, "kind"}, {&S_port, "port"},
        {&S_indexed, "_indexed"}, {&S_accepted, "accepted"}, {&S_dropped, "dropped"},
        {&S_connection, "connection"}, {&S_pids_attr, "pids"}, {&S_programs, "programs"},
        {&S_listener, "listener"}, {&S_monitor, "monitor"}, {&S_user_child_map, "_user_child"},
        {&S_user_child_prev, "_user_child_prev"},
        {&S_named, "named"}, {&S_int_fields, "int_fields"},
        {&S_append, "append"}, {&S_pam_dot, "pam."}, {&S_pam, "pam"}, {&S_session, "session"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if ((*names[i].slot = PyUnicode_InternFromString(names[i].text)) == NULL)
            return NULL;
    {
        PyObject *copyreg = PyImport_ImportModule("copyreg");
        if (copyreg == NULL)
            return NULL;
        NEWOBJ = PyObject_GetAttrString(copyreg, "__newobj__");
        Py_DECREF(copyreg);
        if (NEWOBJ == NULL)
            return NULL;
    }
    for (int i = 0; i < E_NSLOTS; i++)
        event_members[i] = (PyMemberDef){(char *)EVENT_SLOTS[i], T_OBJECT_EX,
                                         offsetof(EventSlots, slot) + i * sizeof(PyObject *), 0, NULL};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (PyType_Ready(types[i].type) < 0)
            return NULL;
    m = PyModule_Create(&speedups_module);
    if (m == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        Py_INCREF(types[i].type);
        if (PyModule_AddObject(m, types[i].name, (PyObject *)types[i].type) < 0) {
            Py_DECREF(types[i].type);
            Py_DECREF(m);
            return NULL;
        }
    }
    return m;
}

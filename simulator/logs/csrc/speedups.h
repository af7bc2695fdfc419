/*
 * Shared by the C twins of the parser's hot loops (see module.c): the Event layout, slot access
 * by offset, interned names, and the types and functions the module puts together.
 */
#ifndef SSHSIM_SPEEDUPS_H
#define SSHSIM_SPEEDUPS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum {
    E_LINE, E_RAW, E_FORMAT, E_TS, E_HOST, E_PROGRAM, E_PID, E_LEVEL, E_EVENT, E_MESSAGE,
    E_RELAY, E_SPEC, E_GROUPS, E_EXTRA, E_CONN, E_ROLE, E_FIELDS, E_NSLOTS
};
extern const char *const EVENT_SLOTS[E_NSLOTS];

typedef struct {
    PyTypeObject *type;
    Py_ssize_t off[E_NSLOTS];
    int exact; /* the instance is its header and these slots only (see ev_new) */
} EventLayout;

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

/* A slot's value (borrowed), or NULL with AttributeError when it was never set. */
static inline PyObject *
ev_get(const EventLayout *L, PyObject *ev, int which)
{
    PyObject *v;
    if (Py_TYPE(ev) != L->type) {
        PyErr_SetString(PyExc_TypeError, "not an Event");
        return NULL;
    }
    v = SLOT(ev, L->off[which]);
    if (v == NULL)
        PyErr_Format(PyExc_AttributeError, "Event.%s is not set", EVENT_SLOTS[which]);
    return v;
}

static inline void
ev_set(const EventLayout *L, PyObject *ev, int which, PyObject *value)
{
    PyObject **p = &SLOT(ev, L->off[which]);
    PyObject *old = *p;
    Py_INCREF(value);
    *p = value;
    Py_XDECREF(old);
}

/* A new Event with every slot set (NULL values stand for None), as Event.__init__ sets them. */
static inline PyObject *
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

int slot_find(SlotRef *r, PyTypeObject *t);

/* obj.<name> as a new reference (NULL with an exception when it fails). */
static inline PyObject *
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

static inline int
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
static inline void
untrack(PyObject *obj)
{
    if (PyTuple_CheckExact(obj) && PyObject_GC_IsTracked(obj))
        PyObject_GC_UnTrack(obj);
}

static inline int
str_is(PyObject *obj, const char *text)
{
    return obj != NULL && PyUnicode_Check(obj) && PyUnicode_CompareWithASCIIString(obj, text) == 0;
}

/* A str of n bytes known to be ASCII: PyUnicode_FromKindAndData would scan them for the
 * widest character first. */
static inline PyObject *
ascii_str(const char *s, Py_ssize_t n)
{
    PyObject *u = PyUnicode_New(n, 127);
    if (u != NULL)
        memcpy(PyUnicode_DATA(u), s, (size_t)n);
    return u;
}

/* interned attribute names and constants (names.c, made at module init) */
extern PyObject *S_conn, *S_end, *S_last_line, *S_role, *S_relayed, *S_id, *S_name, *S_addr, *S_fields, *S_n_events, *S_last_ts, *S_events, *S_preauth, *S_user, *S_unknown, *S_pids, *S_listeners, *S_seen_new, *S_named, *S_int_fields, *S_append, *S_pam_dot, *S_pam, *S_session, *S_pids_attr, *S_programs, *S_listener, *S_monitor, *S_pid, *S_first_line, *S_first_ts, *S_ts_format, *S_outcome, *S_kind, *S_port, *S_indexed, *S_accepted, *S_dropped, *S_connection, *S_DEBUG[3], *S_ERROR, *S_FATAL, *S_INFO, *S_postauth, *S_fullmatch, *S_groups, *S_regex, *S_level;

int event_layout(PyObject *type, EventLayout *out);
void layout_clear(EventLayout *L);
int names_init(void);

/* the module's types and functions (one file each) */
extern PyTypeObject EventSlotsType, SyslogEventsType, GroupRunType, ChunkLinesType;
int eventslots_ready(void);
void char_classes(void);
PyObject *build_fields(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *sweep_state(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

#endif

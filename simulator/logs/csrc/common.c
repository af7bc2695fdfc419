/* Event layout and interned names: what every part of the module shares (speedups.h). */
#include "speedups.h"

const char *const EVENT_SLOTS[E_NSLOTS] = {
    "line", "raw", "format", "ts", "host", "program", "pid", "level", "event", "message",
    "relay", "spec", "_groups", "extra", "conn", "role", "_fields",
};

PyObject *S_conn, *S_end, *S_last_line, *S_role, *S_relayed, *S_id, *S_name, *S_addr, *S_fields, *S_n_events, *S_last_ts, *S_events, *S_preauth, *S_user, *S_unknown, *S_pids, *S_listeners, *S_seen_new, *S_named, *S_int_fields, *S_append, *S_pam_dot, *S_pam, *S_session, *S_pids_attr, *S_programs, *S_listener, *S_monitor, *S_pid, *S_first_line, *S_first_ts, *S_ts_format, *S_outcome, *S_kind, *S_port, *S_indexed, *S_accepted, *S_dropped, *S_connection, *S_DEBUG[3], *S_ERROR, *S_FATAL, *S_INFO, *S_postauth, *S_fullmatch, *S_groups, *S_regex, *S_level;

/* Offsets of Event's slots, from its member descriptors; fails unless every name is a slot. */
int
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

void
layout_clear(EventLayout *L)
{
    PyTypeObject *t = L->type;
    L->type = NULL;
    Py_XDECREF(t);
}

int
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

/* Make the interned names (once, at module init). */
int
names_init(void)
{
    struct { PyObject **slot; const char *text; } names[] = {
        {&S_conn, "conn"}, {&S_end, "end"}, {&S_last_line, "last_line"}, {&S_role, "role"},
        {&S_relayed, "relayed"}, {&S_id, "id"}, {&S_name, "name"}, {&S_addr, "addr"},
        {&S_fields, "fields"}, {&S_n_events, "n_events"}, {&S_last_ts, "last_ts"},
        {&S_events, "events"}, {&S_preauth, "preauth"}, {&S_user, "user"},
        {&S_unknown, "unknown"}, {&S_pids, "_pids"}, {&S_listeners, "_listeners"},
        {&S_seen_new, "_seen_new_programs"}, {&S_DEBUG[0], "DEBUG1"}, {&S_DEBUG[1], "DEBUG2"},
        {&S_DEBUG[2], "DEBUG3"}, {&S_ERROR, "ERROR"}, {&S_FATAL, "FATAL"}, {&S_INFO, "INFO"},
        {&S_postauth, "postauth"}, {&S_fullmatch, "fullmatch"},
        {&S_groups, "groups"}, {&S_regex, "regex"}, {&S_level, "level"},
        {&S_pid, "pid"}, {&S_first_line, "first_line"}, {&S_first_ts, "first_ts"},
        {&S_ts_format, "_ts_format"}, {&S_outcome, "outcome"}, {&S_kind, "kind"}, {&S_port, "port"},
        {&S_indexed, "_indexed"}, {&S_accepted, "accepted"}, {&S_dropped, "dropped"},
        {&S_connection, "connection"}, {&S_pids_attr, "pids"}, {&S_programs, "programs"},
        {&S_listener, "listener"}, {&S_monitor, "monitor"}, {&S_named, "named"}, {&S_int_fields, "int_fields"},
        {&S_append, "append"}, {&S_pam_dot, "pam."}, {&S_pam, "pam"}, {&S_session, "session"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if ((*names[i].slot = PyUnicode_InternFromString(names[i].text)) == NULL)
            return -1;
    return 0;
}

/* GroupRun: ConnectionTracker.run's loop, pass 1 and the placing of every line with a pid
 * (connections.py), for a bounded window. */
#include "speedups.h"

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
    if ((r = PySet_Contains(self->learn_events, name)) < 0)
        return -1;
    flags |= r ? N_LEARN : 0;
    if ((r = PySet_Contains(self->start_events, name)) < 0)
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
    if ((r = PySet_Contains(self->listeners, pid)) < 0)
        return -1;
    if (r || (self->seen_new && str_is(prog, "sshd"))) {
        PyObject *child = NULL;
        role = S_listener;
        if ((r = PySet_Contains(self->listener_child_events, name)) < 0)
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
    if ((r = PySet_Contains(self->listeners, pid)) != 0)
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
        if ((r = PySet_Contains(self->endpoint_events, name)) != 0)
            return r < 0 ? -1 : PySet_Add(self->endpoint_pids, pid);
        if ((r = PySet_Contains(self->session_pid_events, name)) != 0)
            return r < 0 ? -1 : learn_child(self, ev, pid, "_session_child", 1);
        if ((r = PySet_Contains(self->listener_events, name)) != 0)
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

PyTypeObject GroupRunType = {
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

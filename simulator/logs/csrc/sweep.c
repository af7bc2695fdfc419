/* sweep_state: the scans of ConnectionTracker._sweep (connections.py). */
#include "speedups.h"

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

/* Add to `ids` the connection id of every value of `d`: a _PidState's connection (through
 * `conn`), or the Connection itself (conn NULL). */
static int
add_ids(PyObject *ids, PyObject *d, SlotRef *conn, SlotRef *id_ref)
{
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(d, &pos, &key, &value)) {
        PyObject *c = conn != NULL ? slot_get(conn, value) : Py_NewRef(value), *id;
        int r;
        if (c == NULL)
            return -1;
        id = slot_get(id_ref, c);
        Py_DECREF(c);
        if (id == NULL)
            return -1;
        r = PySet_Add(ids, id);
        Py_DECREF(id);
        if (r < 0)
            return -1;
    }
    return 0;
}

/* sweep_state(pids, listener_conns, live, endpoints, ended_before, idle_before)
 *     -> (connections done, endpoints still live)
 * The scans of ConnectionTracker._sweep (connections.py), which the tracker makes every
 * sweep_every lines over all it knows: pids of connections that ended before `ended_before`
 * or silent since before `idle_before` are deleted from `pids`; connections no pid refers to
 * and silent since before `ended_before` are deleted from `live` and returned, in `live`'s
 * order; the endpoints of connections still in `live` are returned as a new dict. */
PyObject *
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
    if (add_ids(ids, pids, &st_conn, &c_id) < 0 || add_ids(ids, listener_conns, NULL, &c_id) < 0)
        goto fail;
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

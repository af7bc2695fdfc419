/* build_fields: Event.fields' dict (events.py). */
#include "speedups.h"

/* build_fields(groups, named, int_fields): Event.fields' dict, built as events.py builds it
 * ({name: groups[i] for i, name in named}, then int() of the int-typed fields that parse).
 * Grouping asks for the fields of a few lines of every connection. */
PyObject *
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

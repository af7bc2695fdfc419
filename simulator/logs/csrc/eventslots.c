/* EventSlots: the storage of events.Event. */
#include "speedups.h"

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

PyTypeObject EventSlotsType = {
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

/* The member table (names and offsets) and copyreg.__newobj__, before the type is readied. */
int
eventslots_ready(void)
{
    PyObject *copyreg = PyImport_ImportModule("copyreg");
    if (copyreg == NULL)
        return -1;
    NEWOBJ = PyObject_GetAttrString(copyreg, "__newobj__");
    Py_DECREF(copyreg);
    if (NEWOBJ == NULL)
        return -1;
    for (int i = 0; i < E_NSLOTS; i++)
        event_members[i] = (PyMemberDef){(char *)EVENT_SLOTS[i], T_OBJECT_EX,
                                         offsetof(EventSlots, slot) + i * sizeof(PyObject *), 0, NULL};
    return 0;
}

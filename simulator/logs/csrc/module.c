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
 * Event's storage is EventSlots (events.Event subclasses it); the parser fills a new event's
 * slots through their offsets, which is what Event.__init__ does, without the call.
 *
 * One file a part: speedups.h and common.c (Event layout, slot access, interned names),
 * eventslots.c, lines.c (ChunkLines), syslog.c (SyslogEvents), group.c (GroupRun), sweep.c,
 * fields.c (Event.fields), and this file, which puts the module together.
 */
#include "speedups.h"

static PyMethodDef speedups_methods[] = {
    {"build_fields", (PyCFunction)(void (*)(void))build_fields, METH_FASTCALL,
     "Event.fields' dict from the match groups (see events.py)."},
    {"sweep_state", (PyCFunction)(void (*)(void))sweep_state, METH_FASTCALL,
     "The scans of ConnectionTracker._sweep (see connections.py)."},
    {NULL, NULL, 0, NULL},
};

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
    if (names_init() < 0 || eventslots_ready() < 0)
        return NULL;
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

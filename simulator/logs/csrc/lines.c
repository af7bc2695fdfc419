/* ChunkLines: the text lines of a plain log file (reader.LogReader's fast path). */
#include "speedups.h"

/* reader.LogReader's loop for a plain file: bytes read a chunk at a time, split at "\n" ("\r\n"
 * too), each line decoded as UTF-8 with backslash escapes for bytes that are not (a line never
 * splits a UTF-8 sequence, so line by line gives what decoding the whole file would), ASCII
 * lines copied without a decoder. A read error listed in `errors` ends the lines and goes to
 * on_error(exc); the file is closed at the end.
 * With max_chars > 0 (reader.LogReader's bounds): a line longer than max_chars characters is cut
 * to them and on_cut(lineno) told; once 4 * max_chars + 1 bytes of a line are buffered with no
 * line end, its first 4 * max_chars bytes (which hold its first max_chars characters) are kept
 * and the rest read and dropped as it comes; a line of more than max_unended bytes ends the
 * lines with on_unended(lineno), which raises. */
typedef struct {
    PyObject_HEAD
    PyObject *file, *on_error, *errors, *on_cut, *on_unended;
    PyObject *long_text; /* the kept start of the over-long line being dropped, else NULL */
    char *buf;
    Py_ssize_t cap, start, end, chunk;
    Py_ssize_t max_chars, max_unended, lineno, dropped;
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

/* `text` (stolen), told to on_cut(lineno) as cut; NULL on error. */
static PyObject *
told_cut(ChunkLines *self, PyObject *text)
{
    PyObject *r;
    if (text == NULL || self->on_cut == Py_None)
        return text;
    r = PyObject_CallFunction(self->on_cut, "n", self->lineno);
    if (r == NULL) {
        Py_DECREF(text);
        return NULL;
    }
    Py_DECREF(r);
    return text;
}

/* Line `lineno`'s text (stolen; a new reference), cut to max_chars when it is longer. */
static PyObject *
cut_text(ChunkLines *self, PyObject *text)
{
    if (text == NULL || self->max_chars <= 0 || PyUnicode_GET_LENGTH(text) <= self->max_chars)
        return text;
    Py_SETREF(text, PyUnicode_Substring(text, 0, self->max_chars));
    return told_cut(self, text);
}

/* NULL with the error on_unended(lineno) raised (a RuntimeError if it returned). */
static PyObject *
unended(ChunkLines *self)
{
    PyObject *r = PyObject_CallFunction(self->on_unended, "n", self->lineno);
    if (r != NULL) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_RuntimeError, "on_unended must raise");
    }
    return NULL;
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
            Py_CLEAR(self->long_text);
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
    PyObject *text;
    for (;;) {
        const char *s = self->buf + self->start;
        Py_ssize_t have = self->end - self->start;
        const char *nl = have > 0 ? memchr(s, '\n', (size_t)have) : NULL;
        if (self->long_text != NULL) { /* dropping the rest of an over-long line */
            Py_ssize_t n = nl != NULL ? nl - s : have;
            self->dropped += n;
            self->start += nl != NULL ? n + 1 : n;
            if (self->dropped > self->max_unended)
                goto unended;
            if (nl != NULL || self->eof) {
                text = self->long_text;
                self->long_text = NULL;
                return told_cut(self, text);
            }
        } else if (nl != NULL) {
            Py_ssize_t n = nl - s;
            self->start += n + 1;
            self->lineno++;
            if (self->max_chars > 0 && n > self->max_unended)
                goto unended;
            if (n > 0 && s[n - 1] == '\r')
                n--;
            return cut_text(self, line_text(s, n));
        } else if (self->max_chars > 0 && have > 4 * self->max_chars + 1) {
            /* over-long: one byte more than that may be a "\r" whose "\n" is still to come */
            self->lineno++;
            self->dropped = have;
            self->start = self->end;
            if (have > self->max_unended)
                goto unended;
            if ((text = line_text(s, 4 * self->max_chars)) == NULL)
                goto error;
            /* told as cut once it has ended (a line that never does is an error instead) */
            self->long_text = PyUnicode_Substring(text, 0, self->max_chars);
            Py_DECREF(text);
            if (self->long_text == NULL)
                goto error;
            continue;
        } else if (self->eof) {
            if (have > 0) {
                self->start = self->end;
                self->lineno++;
                if (self->max_chars > 0 && have > self->max_unended)
                    goto unended;
                return cut_text(self, line_text(s, have)); /* the last line, with no line end */
            }
            lines_close(self);
            return NULL;
        }
        switch (lines_fill(self)) {
        case -1:
            goto error;
        case 0:
            self->eof = 1;
        }
    }
unended:
    unended(self);
error:
    {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb); /* closing runs Python code */
        Py_CLEAR(self->long_text);
        self->start = self->end;
        self->eof = 1; /* a later next() ends quietly */
        lines_close(self);
        PyErr_Restore(type, value, tb);
    }
    return NULL;
}

static PyObject *
lines_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"file", "chunk", "on_error", "errors", "max_chars", "max_unended",
                             "on_cut", "on_unended", NULL};
    PyObject *file, *on_error = Py_None, *errors = NULL, *on_cut = Py_None, *on_unended = Py_None;
    Py_ssize_t chunk = 1 << 18, max_chars = 0, max_unended = PY_SSIZE_T_MAX;
    ChunkLines *self;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|nOOnnOO", kwlist, &file, &chunk, &on_error, &errors,
                                     &max_chars, &max_unended, &on_cut, &on_unended))
        return NULL;
    if (chunk < 1) {
        PyErr_SetString(PyExc_ValueError, "chunk must be positive");
        return NULL;
    }
    if (max_chars > 0 && (max_chars > PY_SSIZE_T_MAX / 4 - 1 || max_unended < 0 || on_unended == Py_None)) {
        PyErr_SetString(PyExc_ValueError, "max_chars needs max_unended >= 0 and on_unended");
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
    Py_INCREF(on_cut);
    self->on_cut = on_cut;
    Py_INCREF(on_unended);
    self->on_unended = on_unended;
    self->chunk = chunk;
    self->max_chars = max_chars;
    self->max_unended = max_unended;
    return (PyObject *)self;
}

static int
lines_traverse(ChunkLines *self, visitproc visit, void *arg)
{
    Py_VISIT(self->file);
    Py_VISIT(self->on_error);
    Py_VISIT(self->errors);
    Py_VISIT(self->on_cut);
    Py_VISIT(self->on_unended);
    Py_VISIT(self->long_text);
    return 0;
}

static int
lines_clear_refs(ChunkLines *self)
{
    Py_CLEAR(self->file);
    Py_CLEAR(self->on_error);
    Py_CLEAR(self->errors);
    Py_CLEAR(self->on_cut);
    Py_CLEAR(self->on_unended);
    Py_CLEAR(self->long_text);
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

PyTypeObject ChunkLinesType = {
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

/*
 * simulator.generate._emit: the synthetic engine's per-line work in C (optional).
 *
 * The pure-Python emitter (emitter.py) builds every line as a Python string: a `%` per
 * connection to fill its template, then stamps joined to bodies, then one big encode. At a
 * million lines that is most of the run. Here a Corpus object holds the compiled templates
 * (literal byte runs and slot references per template line) and the per-connection columns
 * (numpy int64 arrays shared with Python, not copied), and writes:
 *
 *   write_lines   sorted lines (time, connection, template line) -> stamp + filled body, into a
 *                 1 MiB buffer written to the file descriptor each time it is full; it records
 *                 each line's number for the labels;
 *   write_labels  one JSON label line per finished connection.
 *
 * Both run without the GIL (they touch no Python object once their arguments are read), so the
 * emitter can write one block from a worker thread while it computes the next one; they write
 * to the file descriptor with write(2) for the same reason. Errors met without the GIL are kept
 * in a Fail record and raised once it is held again.
 *
 * Output is byte for byte what the Python path writes (tests compare the two on every format):
 * stamps follow outputs.py's rules (floor division, the time zone's offset per UTC hour, from
 * a table the caller computes with zoneinfo), with the text of the current second cached. Every
 * index read from an array is checked before it is used.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define CHUNK ((Py_ssize_t)1 << 20)     /* bytes per write(2) */
#define WRITEBACK ((Py_ssize_t)1 << 22) /* bytes between two early writebacks */
#define NUM_MAX 24                  /* room for any int64 in decimal or hex, with a sign */

/* ---------------------------------------------------------------------------------------- */
/* Errors met without the GIL.                                                                */

typedef struct {
    PyObject *type; /* NULL: no error; only the first one is kept */
    int errnum;     /* for OSError */
    char msg[200];
} Fail;

static int
fail(Fail *f, PyObject *type, const char *fmt, ...)
{
    if (f->type == NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->msg, sizeof f->msg, fmt, ap);
        va_end(ap);
        f->type = type;
    }
    return -1;
}

/* Raise the kept error (the GIL is held again). */
static void
fail_raise(const Fail *f)
{
    if (f->type == PyExc_OSError && f->errnum) {
        errno = f->errnum;
        PyErr_SetFromErrno(PyExc_OSError);
        return;
    }
    PyErr_SetString(f->type, f->msg);
}

/* ---------------------------------------------------------------------------------------- */
/* Output buffer: CHUNK bytes; a full one goes to the file descriptor.                        */

/*
 * Early writeback: every WRITEBACK bytes, and at the end of a call, the sink asks the kernel to
 * start writing out what it wrote (sync_file_range(SYNC_FILE_RANGE_WRITE): no wait for the
 * disk). Corpora are written to a temporary that is renamed over the previous corpus, and ext4
 * (auto_da_alloc) writes a file out in full when it replaces another by rename: with hundreds
 * of megabytes dirty, that rename waited about as long as writing the lines took. Started
 * early, the disk works while lines are made. Advisory: errors (a pipe, another system) are
 * ignored, the bytes written are the same.
 */
typedef struct {
    int fd;
    char *buf;
    Py_ssize_t len;
    Fail *fail;
    off_t base;           /* file offset where this call's bytes start (-1: not seekable) */
    Py_ssize_t written;   /* bytes written by this call */
    Py_ssize_t handed;    /* bytes of them handed to writeback */
} Sink;

static void
sink_writeback(Sink *s)
{
#if defined(__linux__) && defined(SYNC_FILE_RANGE_WRITE)
    if (s->base >= 0 && s->written > s->handed)
        (void)sync_file_range(s->fd, s->base + s->handed, s->written - s->handed, SYNC_FILE_RANGE_WRITE);
#endif
    s->handed = s->written;
}

static int
sink_open(Sink *s, int fd, Fail *f)
{
    s->fd = fd;
    s->len = 0;
    s->fail = f;
    s->base = lseek(fd, 0, SEEK_CUR);
    s->written = s->handed = 0;
    s->buf = PyMem_RawMalloc((size_t)CHUNK);
    if (s->buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void
sink_close(Sink *s)
{
    PyMem_RawFree(s->buf);
    s->buf = NULL;
}

/* Write out what the buffer holds (write(2) may take less than offered: write the rest). */
static int
sink_flush(Sink *s)
{
    Py_ssize_t done = 0;
    while (done < s->len) {
        ssize_t got = write(s->fd, s->buf + done, (size_t)(s->len - done));
        if (got < 0) {
            if (errno == EINTR)
                continue; /* Python handles the signal when the call returns */
            s->fail->errnum = errno;
            return fail(s->fail, PyExc_OSError, "write failed");
        }
        if (got == 0)
            return fail(s->fail, PyExc_OSError, "write(2) wrote nothing");
        done += got;
    }
    s->written += s->len;
    s->len = 0;
    if (s->written - s->handed >= WRITEBACK)
        sink_writeback(s);
    return 0;
}

/* The end of a call: write out the rest, and hand it to writeback. */
static int
sink_finish(Sink *s)
{
    if (sink_flush(s) < 0)
        return -1;
    sink_writeback(s);
    return 0;
}

/*
 * memcpy for the short pieces lines are made of (most under 32 bytes): fixed-size copies the
 * compiler inlines, overlapping at the end, instead of a call into libc per piece. Reads and
 * writes stay within [src, src + n) and [dst, dst + n).
 */
static inline void
copy_small(char *dst, const char *src, Py_ssize_t n)
{
    typedef struct { uint64_t a, b; } U128;
    if (n > 32) {
        memcpy(dst, src, (size_t)n);
    }
    else if (n >= 16) {
        U128 head, tail;
        memcpy(&head, src, 16);
        memcpy(&tail, src + n - 16, 16);
        memcpy(dst, &head, 16);
        memcpy(dst + n - 16, &tail, 16);
    }
    else if (n >= 8) {
        uint64_t head, tail;
        memcpy(&head, src, 8);
        memcpy(&tail, src + n - 8, 8);
        memcpy(dst, &head, 8);
        memcpy(dst + n - 8, &tail, 8);
    }
    else if (n >= 4) {
        uint32_t head, tail;
        memcpy(&head, src, 4);
        memcpy(&tail, src + n - 4, 4);
        memcpy(dst, &head, 4);
        memcpy(dst + n - 4, &tail, 4);
    }
    else if (n > 0) {
        dst[0] = src[0];
        dst[n / 2] = src[n / 2];
        dst[n - 1] = src[n - 1];
    }
}

/* Append n bytes; whenever the buffer is full it is written out (so pieces are 1 MiB). */
static inline int
sink_put(Sink *s, const char *p, Py_ssize_t n)
{
    while (n > CHUNK - s->len) {
        Py_ssize_t room = CHUNK - s->len;
        memcpy(s->buf + s->len, p, (size_t)room);
        s->len = CHUNK;
        p += room;
        n -= room;
        if (sink_flush(s) < 0)
            return -1;
    }
    copy_small(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

#define SINK_LIT(s, text) sink_put((s), (text), (Py_ssize_t)sizeof(text) - 1)

/* ---------------------------------------------------------------------------------------- */
/* Numbers: what str(int), f"{n:x}", f"{n:016x}" and f"{n:02d}" give.                         */

static const char PAIRS[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                            "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                            "8081828384858687888990919293949596979899";

/* The decimal digits of v, ending at `end` (a buffer of NUM_MAX bytes); returns their start. */
static inline char *
digits(char *end, uint64_t v)
{
    char *p = end;
    while (v >= 100) {
        const char *d = PAIRS + 2 * (v % 100);
        v /= 100;
        p -= 2;
        p[0] = d[0];
        p[1] = d[1];
    }
    if (v >= 10) {
        p -= 2;
        p[0] = PAIRS[2 * v];
        p[1] = PAIRS[2 * v + 1];
    }
    else
        *--p = (char)('0' + v);
    return p;
}

static inline int
put_int(Sink *s, int64_t v)
{
    char buf[NUM_MAX];
    char *end = buf + NUM_MAX;
    char *p = digits(end, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
    if (v < 0)
        *--p = '-';
    return sink_put(s, p, end - p);
}

/* Lower-case hex with a '-' for negative numbers, or 16 zero-padded digits (`pad16`). */
static int
put_hex(Sink *s, int64_t v, int pad16)
{
    static const char hex[] = "0123456789abcdef";
    char buf[NUM_MAX];
    char *end = buf + NUM_MAX, *p = end;
    uint64_t u = (v < 0 && !pad16) ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = hex[u & 15];
        u >>= 4;
    } while (u || (pad16 && end - p < 16));
    if (v < 0 && !pad16)
        *--p = '-';
    return sink_put(s, p, end - p);
}

/* Two digits of 0 <= v < 100. */
static inline void
pad2(char *dst, int64_t v)
{
    dst[0] = PAIRS[2 * v];
    dst[1] = PAIRS[2 * v + 1];
}

/* At least two digits of v >= 0 (f"{v:02d}"); returns how many. */
static int
pad2_or_more(char *dst, int64_t v)
{
    if (v < 100) {
        pad2(dst, v);
        return 2;
    }
    char buf[NUM_MAX];
    char *end = buf + NUM_MAX, *p = digits(end, (uint64_t)v);
    memcpy(dst, p, (size_t)(end - p));
    return (int)(end - p);
}

static inline int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* ---------------------------------------------------------------------------------------- */
/* Calendar and clock.                                                                       */

/* Proleptic Gregorian date of a day number (days since 1970-01-01), as datetime.date has it. */
static void
civil_from_days(int64_t z, int64_t *year, int *month, int *day)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = yoe + era * 400 + (*month <= 2);
}

/* Seconds east of UTC for each UTC hour h0, h0+1, ... (outputs.Clock.offsets, per hour). */
typedef struct {
    int64_t h0;
    const int64_t *off;
    Py_ssize_t n;
} Offsets;

/* The text of one second (local time), kept until a line's second differs. */
typedef struct {
    int valid;
    int64_t sec;    /* UTC seconds since the epoch */
    char text[32];  /* "Mar 11 10:00:00" or "2024-03-11T10:00:00." */
    int len;
    char zone[16];  /* "+01:00" (ISO only) */
    int zone_len;
} Second;

static const char MONTHS[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Local date and time of day of a UTC second, in datetime's range (years 1 to 9999). */
typedef struct {
    int64_t off, year, sod;
    int month, day;
} Local;

static int
local_time(const Offsets *o, int64_t sec, Local *l, Fail *f)
{
    int64_t i = floor_div(sec, 3600) - o->h0;
    if (i < 0 || i >= o->n)
        return fail(f, PyExc_ValueError, "a time lies outside the hours of the offset table");
    l->off = o->off[i];
    if (l->off <= -86400 * 100 || l->off >= 86400 * 100)
        return fail(f, PyExc_ValueError, "time zone offset out of range");
    int64_t local = sec + l->off;
    int64_t days = floor_div(local, 86400);
    l->sod = local - days * 86400;
    civil_from_days(days, &l->year, &l->month, &l->day);
    if (l->year < 1 || l->year > 9999)
        return fail(f, PyExc_OverflowError, "date value out of range");
    return 0;
}

/* "10:00:00" */
static void
hms(char *dst, int64_t sod)
{
    pad2(dst, sod / 3600);
    dst[2] = ':';
    pad2(dst + 3, sod / 60 % 60);
    dst[5] = ':';
    pad2(dst + 6, sod % 60);
}

/* "Mar 11 10:00:00" (outputs.Clock.classic_many: f"{month} {day:2d} " + hh:mm:ss). */
static int
classic_second(Second *c, const Offsets *o, int64_t sec, Fail *f)
{
    Local l;
    if (local_time(o, sec, &l, f) < 0)
        return -1;
    char *t = c->text;
    memcpy(t, MONTHS[l.month - 1], 3);
    t[3] = ' ';
    t[4] = l.day < 10 ? ' ' : (char)('0' + l.day / 10);
    t[5] = (char)('0' + l.day % 10);
    t[6] = ' ';
    hms(t + 7, l.sod);
    c->len = 15;
    c->zone_len = 0;
    c->sec = sec;
    c->valid = 1;
    return 0;
}

/* "2024-03-11T10:00:00." and "+01:00" (outputs.Clock.iso_many and Clock.offset_text). */
static int
iso_second(Second *c, const Offsets *o, int64_t sec, Fail *f)
{
    Local l;
    if (local_time(o, sec, &l, f) < 0)
        return -1;
    char *t = c->text;
    pad2(t, l.year / 100);
    pad2(t + 2, l.year % 100);
    t[4] = '-';
    pad2(t + 5, l.month);
    t[7] = '-';
    pad2(t + 8, l.day);
    t[10] = 'T';
    hms(t + 11, l.sod);
    t[19] = '.';
    c->len = 20;
    int64_t minutes = (l.off < 0 ? -l.off : l.off) / 60;
    char *z = c->zone;
    z[0] = l.off >= 0 ? '+' : '-';
    int k = 1 + pad2_or_more(z + 1, minutes / 60);
    z[k++] = ':';
    pad2(z + k, minutes % 60);
    c->zone_len = k + 2;
    c->sec = sec;
    c->valid = 1;
    return 0;
}

/* "2024-03-11T10:00:00.123456+00:00" of a moment, through the second's cache. */
static int
put_iso(Sink *s, Second *c, const Offsets *o, int64_t t_us)
{
    int64_t sec = floor_div(t_us, 1000000), us = t_us - sec * 1000000;
    if ((!c->valid || c->sec != sec) && iso_second(c, o, sec, s->fail) < 0)
        return -1;
    char text[64];
    memcpy(text, c->text, (size_t)c->len);
    char *p = text + c->len;
    pad2(p, us / 10000);
    pad2(p + 2, us / 100 % 100);
    pad2(p + 4, us % 100);
    memcpy(p + 6, c->zone, (size_t)c->zone_len);
    return sink_put(s, text, c->len + 6 + c->zone_len);
}

/* ---------------------------------------------------------------------------------------- */
/* Corpus: compiled templates and per-connection columns.                                    */

typedef struct {
    const char *p;
    Py_ssize_t n;
} Str;

/* What a segment of a template line is: literal bytes, the stamp, or a slot of the connection. */
enum { S_LIT, S_STAMP, S_ADDR, S_PORT, S_USER, S_UID, S_FPU, S_FPS, S_PID, S_EXTRA };

static const char *const SLOT_NAMES[] = {
    [S_STAMP] = "stamp", [S_ADDR] = "addr", [S_PORT] = "port", [S_USER] = "user", [S_UID] = "uid",
    [S_FPU] = "fpu",     [S_FPS] = "fps",   [S_PID] = "pid",   [S_EXTRA] = "extra",
};

typedef struct {
    int kind;
    int64_t arg; /* S_PID: offset from the connection's first pid; S_EXTRA: index */
    Str lit;     /* S_LIT */
} Seg;

enum { ST_SYSLOG, ST_ISO, ST_JOURNAL };

/* Per-connection int64 columns (numpy arrays shared with Python), in keyword order. */
enum {
    A_TEMPLATE, A_SOURCE, A_USER, A_BURST, A_PORT, A_PID, A_START, A_END, A_REMAINING,
    A_LINE_FIRST, A_LINENO, N_ARRAYS
};
static const char *const ARRAY_NAMES[N_ARRAYS] = {
    "template", "source", "user", "burst", "port", "pid", "start_us", "end_us", "remaining",
    "line_first", "lineno",
};
static const int ARRAY_WRITABLE[N_ARRAYS] = {[A_REMAINING] = 1, [A_LINENO] = 1};

/* Tables of bytes (tuples), indexed by a column's value. */
enum {
    T_ADDRESSES, T_USERS, T_UIDS, T_USER_KEYS, T_SOURCE_KEYS, /* slot values */
    T_HEADS, T_TEMPLATE_USER, T_USER_JSON, T_ADDRESS_JSON, T_BURST_JSON, /* label parts */
    N_TABLES
};
static const char *const TABLE_NAMES[N_TABLES] = {
    "addresses", "users", "uids", "user_keys", "source_keys",
    "heads", "template_user", "user_json", "address_json", "burst_json",
};

typedef struct {
    Str *items; /* p == NULL: None (template_user only) */
    Py_ssize_t n;
} Table;

/* A connection's own values (vol<i>, fpo<i>), copied out of Python once, never moved. */
typedef struct {
    Py_ssize_t n;
    Str items[];
} ExtraRow;

typedef struct {
    PyObject_HEAD
    PyObject *keep;                /* list: every object the pointers below point into */
    Seg *segs;
    Py_ssize_t *line_seg;          /* template line i: segs[line_seg[i]:line_seg[i + 1]] */
    Py_ssize_t nlines;
    int stamp_kind;
    Str stamp_prefix, seqnum, boot_id;
    Table tables[N_TABLES];
    Py_buffer arrays[N_ARRAYS];
    int held[N_ARRAYS];
    ExtraRow **extras;             /* per connection (NULL: none), when a template has extra slots */
    Py_ssize_t nconn;
    int busy;                      /* a writer runs: writers take turns (they share remaining, lineno) */
} Corpus;

#define COL(self, a) ((int64_t *)(self)->arrays[a].buf)

/* A bytes object's bytes; the object must stay referenced (it is in `keep` or a kept tuple). */
static int
as_str(PyObject *obj, Str *out, const char *what)
{
    if (!PyBytes_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: expected bytes, got %.100s", what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    out->p = PyBytes_AS_STRING(obj);
    out->n = PyBytes_GET_SIZE(obj);
    return 0;
}

/* A tuple of bytes (or None where `none_ok`) as a table; the tuple is kept alive. */
static int
load_table(Corpus *self, Table *t, PyObject *tuple, const char *name, int none_ok)
{
    if (!PyTuple_Check(tuple)) {
        PyErr_Format(PyExc_TypeError, "%s: expected a tuple", name);
        return -1;
    }
    if (PyList_Append(self->keep, tuple) < 0)
        return -1;
    t->n = PyTuple_GET_SIZE(tuple);
    t->items = PyMem_Calloc((size_t)(t->n ? t->n : 1), sizeof(Str));
    if (t->items == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < t->n; i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        if (none_ok && item == Py_None)
            continue;
        if (as_str(item, &t->items[i], name) < 0)
            return -1;
    }
    return 0;
}

/* A 1-d C-contiguous int64 buffer (numpy's int64 on every platform it runs on). */
static int
get_int64(PyObject *obj, Py_buffer *view, int writable, const char *name)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0)
        return -1;
    const char *f = view->format ? view->format : "B";
    if (*f == '@' || *f == '=' || *f == '<')
        f++;
    if (view->ndim != 1 || view->itemsize != 8 || (strcmp(f, "l") != 0 && strcmp(f, "q") != 0)) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError, "%s: expected a 1-d int64 array", name);
        return -1;
    }
    return 0;
}

static Py_ssize_t
length(const Py_buffer *view)
{
    return view->len / 8;
}

/* One item of a template line: bytes, or (slot name, argument). */
static int
load_segment(Seg *seg, PyObject *item)
{
    if (PyBytes_Check(item)) {
        seg->kind = S_LIT;
        seg->arg = 0;
        return as_str(item, &seg->lit, "lines");
    }
    const char *name;
    long long arg;
    if (!PyTuple_Check(item)) {
        PyErr_SetString(PyExc_TypeError, "lines: a segment is bytes or (slot, int)");
        return -1;
    }
    if (!PyArg_ParseTuple(item, "sL;lines: a slot is (name, int)", &name, &arg))
        return -1;
    for (int k = S_STAMP; k <= S_EXTRA; k++) {
        if (strcmp(name, SLOT_NAMES[k]) != 0)
            continue;
        if (k == S_EXTRA && arg < 0) {
            PyErr_SetString(PyExc_ValueError, "lines: a negative extra index");
            return -1;
        }
        seg->kind = k;
        seg->arg = arg;
        seg->lit.p = NULL;
        seg->lit.n = 0;
        return 0;
    }
    PyErr_Format(PyExc_ValueError, "lines: unknown slot %.100s", name);
    return -1;
}

/* `lines`: a tuple with, per template line, a tuple of segments. */
static int
load_lines(Corpus *self, PyObject *lines)
{
    if (!PyTuple_Check(lines) || PyList_Append(self->keep, lines) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "lines: expected a tuple of tuples");
        return -1;
    }
    self->nlines = PyTuple_GET_SIZE(lines);
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < self->nlines; i++) {
        PyObject *line = PyTuple_GET_ITEM(lines, i);
        if (!PyTuple_Check(line)) {
            PyErr_SetString(PyExc_TypeError, "lines: expected a tuple of tuples");
            return -1;
        }
        total += PyTuple_GET_SIZE(line);
    }
    self->line_seg = PyMem_Calloc((size_t)self->nlines + 1, sizeof(Py_ssize_t));
    self->segs = PyMem_Calloc((size_t)(total ? total : 1), sizeof(Seg));
    if (self->line_seg == NULL || self->segs == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < self->nlines; i++) {
        PyObject *line = PyTuple_GET_ITEM(lines, i);
        self->line_seg[i] = k;
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(line); j++)
            if (load_segment(&self->segs[k++], PyTuple_GET_ITEM(line, j)) < 0)
                return -1;
    }
    self->line_seg[self->nlines] = k;
    return 0;
}

/* `stamp`: ("syslog" | "iso" | "journal", prefix, seqnum id, boot id). */
static int
load_stamp(Corpus *self, PyObject *stamp)
{
    static const char *const kinds[] = {[ST_SYSLOG] = "syslog", [ST_ISO] = "iso", [ST_JOURNAL] = "journal"};
    const char *kind;
    PyObject *prefix, *seqnum, *boot;
    if (!PyTuple_Check(stamp)) {
        PyErr_SetString(PyExc_TypeError, "stamp: expected a tuple");
        return -1;
    }
    if (!PyArg_ParseTuple(stamp, "sSSS;stamp: (kind, prefix, seqnum, boot)", &kind, &prefix, &seqnum, &boot))
        return -1;
    self->stamp_kind = -1;
    for (int k = ST_SYSLOG; k <= ST_JOURNAL; k++)
        if (strcmp(kind, kinds[k]) == 0)
            self->stamp_kind = k;
    if (self->stamp_kind < 0) {
        PyErr_Format(PyExc_ValueError, "stamp: unknown kind %.100s", kind);
        return -1;
    }
    if (PyList_Append(self->keep, stamp) < 0 || as_str(prefix, &self->stamp_prefix, "stamp") < 0 ||
        as_str(seqnum, &self->seqnum, "stamp") < 0)
        return -1;
    return as_str(boot, &self->boot_id, "stamp");
}

/* The columns' lengths agree, and line_first (n + 1 ascending offsets) fits lineno. */
static int
check_columns(Corpus *self)
{
    Py_ssize_t n = length(&self->arrays[A_TEMPLATE]);
    for (int a = 0; a < N_ARRAYS; a++) {
        Py_ssize_t want = a == A_LINE_FIRST ? n + 1 : n;
        if (a != A_LINENO && length(&self->arrays[a]) != want) {
            PyErr_Format(PyExc_ValueError, "%s: length %zd, expected %zd", ARRAY_NAMES[a],
                         length(&self->arrays[a]), want);
            return -1;
        }
    }
    const int64_t *first = COL(self, A_LINE_FIRST);
    if (first[0] != 0 || first[n] != length(&self->arrays[A_LINENO])) {
        PyErr_SetString(PyExc_ValueError, "line_first must run from 0 to len(lineno)");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (first[i + 1] < first[i]) {
            PyErr_SetString(PyExc_ValueError, "line_first must not go down");
            return -1;
        }
    self->nconn = n;
    return 0;
}

/* Room for each connection's own values, when some template line has an extra slot. */
static int
alloc_extras(Corpus *self)
{
    Py_ssize_t total = self->line_seg[self->nlines];
    for (Py_ssize_t k = 0; k < total; k++)
        if (self->segs[k].kind == S_EXTRA) {
            self->extras = PyMem_RawCalloc((size_t)(self->nconn ? self->nconn : 1), sizeof(ExtraRow *));
            if (self->extras == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            return 0;
        }
    return 0;
}

static void
Corpus_dealloc(Corpus *self)
{
    for (int a = 0; a < N_ARRAYS; a++)
        if (self->held[a])
            PyBuffer_Release(&self->arrays[a]);
    for (int t = 0; t < N_TABLES; t++)
        PyMem_Free(self->tables[t].items);
    if (self->extras != NULL)
        for (Py_ssize_t c = 0; c < self->nconn; c++)
            PyMem_RawFree(self->extras[c]);
    PyMem_RawFree(self->extras);
    PyMem_Free(self->segs);
    PyMem_Free(self->line_seg);
    Py_XDECREF(self->keep);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Corpus_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {
        "lines", "stamp", "addresses", "users", "uids", "user_keys", "source_keys", "heads", "template_user",
        "user_json", "address_json", "burst_json", "template", "source", "user", "burst", "port", "pid",
        "start_us", "end_us", "remaining", "line_first", "lineno", NULL,
    };
    PyObject *lines, *stamp, *tables[N_TABLES], *arrays[N_ARRAYS];
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$OOOOOOOOOOOOOOOOOOOOOOO", kwlist, &lines, &stamp,
                                     &tables[0], &tables[1], &tables[2], &tables[3], &tables[4], &tables[5],
                                     &tables[6], &tables[7], &tables[8], &tables[9], &arrays[0], &arrays[1],
                                     &arrays[2], &arrays[3], &arrays[4], &arrays[5], &arrays[6], &arrays[7],
                                     &arrays[8], &arrays[9], &arrays[10]))
        return NULL;
    Corpus *self = (Corpus *)type->tp_alloc(type, 0); /* zeroed: dealloc copes with a half-built one */
    if (self == NULL)
        return NULL;
    self->keep = PyList_New(0);
    if (self->keep == NULL || load_lines(self, lines) < 0 || load_stamp(self, stamp) < 0)
        goto fail;
    for (int t = 0; t < N_TABLES; t++)
        if (load_table(self, &self->tables[t], tables[t], TABLE_NAMES[t], t == T_TEMPLATE_USER) < 0)
            goto fail;
    for (int a = 0; a < N_ARRAYS; a++) {
        if (get_int64(arrays[a], &self->arrays[a], ARRAY_WRITABLE[a], ARRAY_NAMES[a]) < 0)
            goto fail;
        self->held[a] = 1;
    }
    if (check_columns(self) < 0 || alloc_extras(self) < 0)
        goto fail;
    return (PyObject *)self;
fail:
    Py_DECREF(self);
    return NULL;
}

PyDoc_STRVAR(set_extras_doc,
"set_extras(conn, values)\n--\n\n"
"Give a connection its own slot values (a tuple of bytes, in the order of the extra slots'\n"
"indexes). They are copied: the writers read them without the GIL. Once per connection, so\n"
"that a writer running in another thread never sees them change.");

static PyObject *
Corpus_set_extras(Corpus *self, PyObject *args)
{
    Py_ssize_t conn;
    PyObject *values;
    if (!PyArg_ParseTuple(args, "nO!:set_extras", &conn, &PyTuple_Type, &values))
        return NULL;
    if (self->extras == NULL || conn < 0 || conn >= self->nconn || self->extras[conn] != NULL) {
        PyErr_SetString(PyExc_ValueError, "set_extras: no extra slots, a connection out of range, or set already");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(values), bytes = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyBytes_Check(PyTuple_GET_ITEM(values, i))) {
            PyErr_SetString(PyExc_TypeError, "set_extras: values must be bytes");
            return NULL;
        }
        bytes += PyBytes_GET_SIZE(PyTuple_GET_ITEM(values, i));
    }
    size_t head = sizeof(ExtraRow) + (size_t)n * sizeof(Str);
    ExtraRow *row = PyMem_RawMalloc(head + (size_t)bytes + 1);
    if (row == NULL)
        return PyErr_NoMemory();
    row->n = n;
    char *text = (char *)row + head;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(values, i);
        memcpy(text, PyBytes_AS_STRING(item), (size_t)PyBytes_GET_SIZE(item));
        row->items[i].p = text;
        row->items[i].n = PyBytes_GET_SIZE(item);
        text += PyBytes_GET_SIZE(item);
    }
    self->extras[conn] = row;
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------------------------- */
/* Lines.                                                                                    */

/* table[index] with the index checked (negative counts from the end, as in Python). */
static inline int
table_get(const Table *t, int64_t index, Str *out, Fail *f)
{
    if (index < 0)
        index += t->n;
    if (index < 0 || index >= t->n)
        return fail(f, PyExc_IndexError, "a column's value is out of its table's range");
    *out = t->items[index];
    return 0;
}

/* extras[conn][index]: a value drawn in Python (vol<i>, fpo<i>). */
static int
extra_get(Corpus *self, Py_ssize_t conn, int64_t index, Str *out, Fail *f)
{
    const ExtraRow *row = self->extras != NULL ? self->extras[conn] : NULL;
    if (row == NULL || index >= row->n)
        return fail(f, PyExc_ValueError, "connection %zd lacks its value %lld", conn, (long long)index);
    *out = row->items[index];
    return 0;
}

/* Write the value of a slot for a connection. */
static int
put_slot(Sink *s, Corpus *self, const Seg *seg, Py_ssize_t conn)
{
    const Table *t = self->tables;
    Str v = {NULL, 0};
    int got;
    switch (seg->kind) {
    case S_PORT:
        return put_int(s, COL(self, A_PORT)[conn]);
    case S_PID:
        return put_int(s, COL(self, A_PID)[conn] + seg->arg);
    case S_ADDR:
        got = table_get(&t[T_ADDRESSES], COL(self, A_SOURCE)[conn], &v, s->fail);
        break;
    case S_FPS:
        got = table_get(&t[T_SOURCE_KEYS], COL(self, A_SOURCE)[conn], &v, s->fail);
        break;
    case S_USER:
        got = table_get(&t[T_USERS], COL(self, A_USER)[conn], &v, s->fail);
        break;
    case S_UID:
        got = table_get(&t[T_UIDS], COL(self, A_USER)[conn], &v, s->fail);
        break;
    case S_FPU:
        got = table_get(&t[T_USER_KEYS], COL(self, A_USER)[conn], &v, s->fail);
        break;
    case S_EXTRA:
        got = extra_get(self, conn, seg->arg, &v, s->fail);
        break;
    default:
        return fail(s->fail, PyExc_SystemError, "bad segment kind %d", seg->kind);
    }
    return got < 0 ? -1 : sink_put(s, v.p, v.n);
}

/* What a write_lines call formats stamps with. */
typedef struct {
    Offsets offsets;
    Second second;
    int64_t boot_us;
} StampState;

/* The journal's fields of a line: cursor, realtime and monotonic clocks, boot id. */
static int
put_journal(Sink *s, Corpus *self, int64_t t, int64_t number, int64_t boot_us)
{
    int64_t mono;
    if (__builtin_sub_overflow(t, boot_us, &mono))
        return fail(s->fail, PyExc_OverflowError, "monotonic time out of range");
    if (SINK_LIT(s, "{\"__CURSOR\":\"s=") < 0 || sink_put(s, self->seqnum.p, self->seqnum.n) < 0 ||
        SINK_LIT(s, ";i=") < 0 || put_hex(s, number, 0) < 0 ||
        SINK_LIT(s, ";b=") < 0 || sink_put(s, self->boot_id.p, self->boot_id.n) < 0 ||
        SINK_LIT(s, ";m=") < 0 || put_hex(s, mono, 0) < 0 ||
        SINK_LIT(s, ";t=") < 0 || put_hex(s, t, 0) < 0 ||
        SINK_LIT(s, ";x=") < 0 || put_hex(s, (int64_t)((uint64_t)number * UINT64_C(2654435761)), 1) < 0 ||
        SINK_LIT(s, "\",\"__REALTIME_TIMESTAMP\":\"") < 0 || put_int(s, t) < 0 ||
        SINK_LIT(s, "\",\"__MONOTONIC_TIMESTAMP\":\"") < 0 || put_int(s, mono) < 0 ||
        SINK_LIT(s, "\",\"_BOOT_ID\":\"") < 0 || sink_put(s, self->boot_id.p, self->boot_id.n) < 0)
        return -1;
    return SINK_LIT(s, "\",");
}

static int
put_stamp(Sink *s, Corpus *self, StampState *st, int64_t t, int64_t number)
{
    Second *c = &st->second;
    switch (self->stamp_kind) {
    case ST_SYSLOG: {
        int64_t sec = floor_div(t, 1000000);
        if ((!c->valid || c->sec != sec) && classic_second(c, &st->offsets, sec, s->fail) < 0)
            return -1;
        return sink_put(s, c->text, c->len);
    }
    case ST_ISO:
        if (sink_put(s, self->stamp_prefix.p, self->stamp_prefix.n) < 0)
            return -1;
        return put_iso(s, c, &st->offsets, t);
    default:
        return put_journal(s, self, t, number, st->boot_us);
    }
}

/* One line: its template line's segments, the stamp and the connection's slot values. */
static int
put_line(Sink *s, Corpus *self, StampState *st, int64_t t, Py_ssize_t conn, Py_ssize_t tl, int64_t number)
{
    for (Py_ssize_t k = self->line_seg[tl]; k < self->line_seg[tl + 1]; k++) {
        const Seg *seg = &self->segs[k];
        int got;
        if (seg->kind == S_LIT)
            got = sink_put(s, seg->lit.p, seg->lit.n);
        else if (seg->kind == S_STAMP)
            got = put_stamp(s, self, st, t, number);
        else
            got = put_slot(s, self, seg, conn);
        if (got < 0)
            return -1;
    }
    return 0;
}

/* The line's number goes to its connection's next free place in lineno (written order). */
static int
record_number(Corpus *self, Py_ssize_t conn, int64_t number, Fail *f)
{
    int64_t *remaining = COL(self, A_REMAINING);
    const int64_t *first = COL(self, A_LINE_FIRST);
    int64_t count = first[conn + 1] - first[conn];
    if (remaining[conn] <= 0 || remaining[conn] > count)
        return fail(f, PyExc_ValueError, "connection %zd has no line left to write", conn);
    COL(self, A_LINENO)[first[conn] + count - remaining[conn]] = number;
    remaining[conn] -= 1;
    return 0;
}

/* The lines of a write_lines call: line i is (times[j], conns[j], tlines[j]) with j = order[i]. */
typedef struct {
    const int64_t *times, *conns, *tls, *order;
    Py_ssize_t n, m; /* n: length of times, conns and tlines; m: of order */
} Lines;

static int
write_lines_loop(Corpus *self, Sink *s, StampState *st, const Lines *ls, int64_t first_number)
{
    for (Py_ssize_t i = 0; i < ls->m; i++) {
        int64_t j = ls->order[i];
        if (j < 0 || j >= ls->n)
            return fail(s->fail, PyExc_IndexError, "order out of range");
        int64_t conn = ls->conns[j], tl = ls->tls[j], number = first_number + i;
        if (conn < 0 || conn >= self->nconn || tl < 0 || tl >= self->nlines)
            return fail(s->fail, PyExc_IndexError, "connection or template line out of range");
        if (record_number(self, (Py_ssize_t)conn, number, s->fail) < 0 ||
            put_line(s, self, st, ls->times[j], (Py_ssize_t)conn, (Py_ssize_t)tl, number) < 0)
            return -1;
    }
    return sink_finish(s);
}

/* The int64 arrays of a call (released together) and the offset table among them. */
typedef struct {
    Py_buffer views[5];
    int held;
} Views;

static void
views_release(Views *v)
{
    while (v->held > 0)
        PyBuffer_Release(&v->views[--v->held]);
}

static int
views_add(Views *v, PyObject *obj, const char *name)
{
    if (get_int64(obj, &v->views[v->held], 0, name) < 0)
        return -1;
    v->held++;
    return 0;
}

/* (h0, offsets): the offset table argument of both writers. */
static int
views_offsets(Views *v, PyObject *h0, PyObject *table, Offsets *o)
{
    o->h0 = PyLong_AsLongLong(h0);
    if ((o->h0 == -1 && PyErr_Occurred()) || views_add(v, table, "offsets") < 0)
        return -1;
    o->off = v->views[v->held - 1].buf;
    o->n = length(&v->views[v->held - 1]);
    return 0;
}

/* Writers take turns: both update remaining and lineno. The GIL is held here. */
static int
enter(Corpus *self)
{
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the corpus is being written by another thread");
        return -1;
    }
    self->busy = 1;
    return 0;
}

PyDoc_STRVAR(write_lines_doc,
"write_lines(fd, times, conns, tlines, order, first_number, h0, offsets, boot_us)\n--\n\n"
"Write lines to the file descriptor: line i is template line tlines[j] of connection conns[j]\n"
"at times[j] (microseconds) for j = order[i] (the order sorts them by time), numbered\n"
"first_number + i; its number goes into lineno and the connection's remaining count goes\n"
"down. offsets[k] is the UTC offset in seconds of UTC hour h0 + k; boot_us is the journal's\n"
"boot time. Runs without the GIL.");

static PyObject *
Corpus_write_lines(Corpus *self, PyObject *args)
{
    PyObject *times, *conns, *tls, *order, *h0, *table;
    int fd;
    long long first_number, boot_us;
    if (!PyArg_ParseTuple(args, "iOOOOLOOL:write_lines", &fd, &times, &conns, &tls, &order, &first_number, &h0,
                          &table, &boot_us))
        return NULL;
    Views v = {.held = 0};
    StampState st = {.boot_us = boot_us};
    Fail f = {NULL};
    Sink sink;
    if (views_add(&v, times, "times") < 0 || views_add(&v, conns, "conns") < 0 || views_add(&v, tls, "tlines") < 0 ||
        views_add(&v, order, "order") < 0 || views_offsets(&v, h0, table, &st.offsets) < 0)
        goto error;
    Lines ls = {v.views[0].buf, v.views[1].buf, v.views[2].buf, v.views[3].buf, length(&v.views[0]),
                length(&v.views[3])};
    if (length(&v.views[1]) != ls.n || length(&v.views[2]) != ls.n) {
        PyErr_SetString(PyExc_ValueError, "times, conns and tlines differ in length");
        goto error;
    }
    if (enter(self) < 0)
        goto error;
    if (sink_open(&sink, fd, &f) < 0) {
        self->busy = 0;
        goto error;
    }
    Py_BEGIN_ALLOW_THREADS
    write_lines_loop(self, &sink, &st, &ls, first_number);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    sink_close(&sink);
    views_release(&v);
    if (f.type != NULL) {
        fail_raise(&f);
        return NULL;
    }
    Py_RETURN_NONE;
error:
    views_release(&v);
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Labels.                                                                                   */

typedef struct {
    Offsets offsets;
    Second start, end; /* second caches for the start and end times */
} LabelState;

/* The parts of a label that come from tables. */
static int
label_parts(Corpus *self, Py_ssize_t c, Str parts[4], Fail *f)
{
    const Table *t = self->tables;
    int64_t tpl = COL(self, A_TEMPLATE)[c];
    if (table_get(&t[T_HEADS], tpl, &parts[0], f) < 0 || table_get(&t[T_TEMPLATE_USER], tpl, &parts[1], f) < 0 ||
        (parts[1].p == NULL && table_get(&t[T_USER_JSON], COL(self, A_USER)[c], &parts[1], f) < 0) ||
        table_get(&t[T_ADDRESS_JSON], COL(self, A_SOURCE)[c], &parts[2], f) < 0)
        return -1;
    return table_get(&t[T_BURST_JSON], COL(self, A_BURST)[c], &parts[3], f);
}

/* {"id":N<head><user><source>P<burst>,"start":"..","end":"..","lines":[..]} and a newline. */
static int
put_label(Sink *s, Corpus *self, Py_ssize_t c, LabelState *ls)
{
    const int64_t *first = COL(self, A_LINE_FIRST), *lineno = COL(self, A_LINENO);
    Str parts[4] = {{NULL, 0}};
    if (label_parts(self, c, parts, s->fail) < 0 || SINK_LIT(s, "{\"id\":") < 0 || put_int(s, (int64_t)c + 1) < 0 ||
        sink_put(s, parts[0].p, parts[0].n) < 0 || sink_put(s, parts[1].p, parts[1].n) < 0 ||
        sink_put(s, parts[2].p, parts[2].n) < 0 || put_int(s, COL(self, A_PORT)[c]) < 0 ||
        sink_put(s, parts[3].p, parts[3].n) < 0 || SINK_LIT(s, ",\"start\":\"") < 0 ||
        put_iso(s, &ls->start, &ls->offsets, COL(self, A_START)[c]) < 0 || SINK_LIT(s, "\",\"end\":\"") < 0 ||
        put_iso(s, &ls->end, &ls->offsets, COL(self, A_END)[c]) < 0 || SINK_LIT(s, "\",\"lines\":[") < 0)
        return -1;
    for (int64_t k = first[c]; k < first[c + 1]; k++)
        if ((k > first[c] && SINK_LIT(s, ",") < 0) || put_int(s, lineno[k]) < 0)
            return -1;
    return SINK_LIT(s, "]}\n");
}

static int
write_labels_loop(Corpus *self, Sink *s, LabelState *ls, Py_ssize_t first, Py_ssize_t ready)
{
    for (Py_ssize_t c = first; c < ready; c++)
        if (put_label(s, self, c, ls) < 0)
            return -1;
    return sink_finish(s);
}

PyDoc_STRVAR(write_labels_doc,
"write_labels(fd, first, limit, h0, offsets) -> ready\n--\n\n"
"Write the label lines of connections first, first+1, ... up to the first below `limit` that\n"
"has lines left to write, and return where it stopped (the next label to write). Start and\n"
"end times are in the spec's time zone (offsets as for write_lines). Runs without the GIL.");

static PyObject *
Corpus_write_labels(Corpus *self, PyObject *args)
{
    PyObject *h0, *table;
    int fd;
    Py_ssize_t first, limit;
    if (!PyArg_ParseTuple(args, "innOO:write_labels", &fd, &first, &limit, &h0, &table))
        return NULL;
    if (first < 0 || limit > self->nconn || first > limit) {
        PyErr_SetString(PyExc_IndexError, "connections out of range");
        return NULL;
    }
    Views v = {.held = 0};
    LabelState ls = {{0}};
    Fail f = {NULL};
    Sink sink;
    if (views_offsets(&v, h0, table, &ls.offsets) < 0 || enter(self) < 0)
        goto error;
    if (sink_open(&sink, fd, &f) < 0) {
        self->busy = 0;
        goto error;
    }
    const int64_t *remaining = COL(self, A_REMAINING);
    Py_ssize_t ready = first;
    while (ready < limit && remaining[ready] == 0)
        ready++;
    Py_BEGIN_ALLOW_THREADS
    write_labels_loop(self, &sink, &ls, first, ready);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    sink_close(&sink);
    views_release(&v);
    if (f.type != NULL) {
        fail_raise(&f);
        return NULL;
    }
    return PyLong_FromSsize_t(ready);
error:
    views_release(&v);
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */

static PyMethodDef Corpus_methods[] = {
    {"write_lines", (PyCFunction)Corpus_write_lines, METH_VARARGS, write_lines_doc},
    {"write_labels", (PyCFunction)Corpus_write_labels, METH_VARARGS, write_labels_doc},
    {"set_extras", (PyCFunction)Corpus_set_extras, METH_VARARGS, set_extras_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(Corpus_doc,
"Corpus(*, lines, stamp, <tables>, <columns>)\n--\n\n"
"Compiled templates and per-connection columns of one generated corpus (see emitter.py).\n\n"
"lines: per template line, a tuple of bytes (literal) and (slot, arg) pairs, slot one of\n"
"  stamp, addr, port, user, uid, fpu, fps, pid (arg: offset) and extra (arg: index);\n"
"stamp: (\"syslog\" | \"iso\" | \"journal\", prefix, seqnum id, boot id);\n"
"tables (tuples of bytes): addresses, users, uids, user_keys, source_keys, and for labels\n"
"  heads and template_user (per template; None: the user's own), user_json, address_json,\n"
"  burst_json (per burst, the last for none);\n"
"columns (int64 arrays, kept and read at each call, so that Python can fill them block by\n"
"  block): template, source, user, burst, port, pid, start_us, end_us, remaining (written\n"
"  to), line_first (n + 1), lineno (written to).\n\n"
"The writers may run in another thread while Python fills columns of later connections or\n"
"calls set_extras for them; two writers never run at once.");

static PyTypeObject CorpusType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "simulator.generate._emit.Corpus",
    .tp_basicsize = sizeof(Corpus),
    .tp_dealloc = (destructor)Corpus_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = Corpus_doc,
    .tp_methods = Corpus_methods,
    .tp_new = Corpus_new,
};

static struct PyModuleDef emit_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "simulator.generate._emit",
    .m_doc = "The synthetic engine's line and label writing in C (twin of emitter.py's Python path).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__emit(void)
{
    if (PyType_Ready(&CorpusType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&emit_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "CHUNK", CHUNK) < 0 ||
        PyModule_AddObjectRef(m, "Corpus", (PyObject *)&CorpusType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/*
 * Taking the numpy arrays (any C-contiguous buffer) that damo's C extensions
 * are called with, and giving them back: one implementation for every
 * extension (damo/core/_adjust.c, damo/records/_ages.c).  A function's
 * buffers are described by a table of struct buffer_arg, taken in table order
 * by get_buffers() and released by release_buffers(), on success or not.
 * Include after <Python.h> (with PY_SSIZE_T_CLEAN).
 */
#ifndef DAMO_BUFFERS_H
#define DAMO_BUFFERS_H

#include <Python.h>

/* A buffer's length, in items. */
enum {
	BUF_ANY = -1,		/* any: it sets n, which the buffers after it are checked against */
	BUF_N = -2,		/* n */
	BUF_N_LESS_1 = -3,	/* n - 1, at least 0 (what lies between n regions) */
};

struct buffer_arg {
	const char *name;	/* the argument, for the error message */
	int itemsize;		/* in bytes */
	int writable;
	int len;		/* BUF_ANY, BUF_N or BUF_N_LESS_1 */
	int nullable;		/* None is taken too, as a NULL buf */
};

/*
 * A C-contiguous buffer of `n` items of `itemsize` bytes (any number when
 * n < 0); else -1 with an exception set and nothing to release.
 */
static inline int get_buffer(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t itemsize,
			     Py_ssize_t n, const char *what)
{
	if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)))
		return -1;
	if (view->itemsize != itemsize || view->len % itemsize ||
	    (n >= 0 && view->len != n * itemsize)) {
		PyErr_Format(PyExc_ValueError, "%s has the wrong item size or length", what);
		PyBuffer_Release(view);
		return -1;
	}
	return 0;
}

/*
 * The buffers of objs[0..count) as args[] describes them, into v[] (a None
 * taken where nullable has v[i].buf NULL); n is the length of the last
 * BUF_ANY one before each.  got[0..*nr_got) lists those to release, on
 * success or not; -1 with an exception set at the first that does not fit.
 */
static inline int get_buffers(PyObject *const *objs, Py_buffer *v, const struct buffer_arg *args,
			      int count, Py_ssize_t *n, int *got, int *nr_got)
{
	int i;

	*nr_got = 0;
	for (i = 0; i < count; i++) {
		const struct buffer_arg *a = &args[i];
		Py_ssize_t want = a->len == BUF_N ? *n :
				  a->len == BUF_N_LESS_1 ? (*n > 0 ? *n - 1 : 0) : -1;

		if (a->nullable && objs[i] == Py_None) {
			v[i].buf = NULL;
			continue;
		}
		if (get_buffer(objs[i], &v[i], a->writable, a->itemsize, want, a->name))
			return -1;
		got[(*nr_got)++] = i;
		if (a->len == BUF_ANY)
			*n = v[i].len / a->itemsize;
	}
	return 0;
}

/* Release what get_buffers() took. */
static inline void release_buffers(Py_buffer *v, const int *got, int nr_got)
{
	int i;

	for (i = 0; i < nr_got; i++)
		PyBuffer_Release(&v[got[i]]);
}

#endif /* DAMO_BUFFERS_H */

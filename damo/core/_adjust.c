/*
 * The region adjustment's per-region loops in C: the seed's merge loop
 * (damo/core/adjust.py, merge_regions()) and narrow's even split
 * (damo/core/narrow.py, split_evenly()).  Both run every aggregation; in
 * Python the merge loop was most of the engine's per-aggregation time and the
 * split a dozen numpy calls on small arrays (bench/engine).  The rules stay in
 * Python, which keeps the same loops for when this extension is not built;
 * tests compare the two on random regions (tests/test_core.py,
 * tests/test_narrow.py).
 *
 * merge(start, end, nr, age, may, thres, sz_limit, keep, out_end, out_nr, out_age) -> k
 *   Each region joins the survivor before it while the two touch, may merge
 *   (narrow's rules), their counts differ by at most the threshold and their
 *   sizes fit the limit; the survivor's count is size-weighted pair by pair,
 *   rounded down at each join, as the seed computes it (so the loop is
 *   sequential).
 *   start, end, nr, age: int64, n regions in address order;
 *   may: uint8 (numpy bool), n, or None (every region may join);
 *   keep, out_end, out_nr, out_age: int64, n, writable: the k survivors'
 *   first region, end, merged count and size-weighted age (rounded to the nearest, once).
 *   Counts, ages and sizes are non-negative; the products are taken in 128 bits.
 *
 * split_evenly(start, end, pieces, phase, min_region, out_start, out_end, out_parent) -> ok
 *   Region i of P = size / min_region pages cut into k = pieces[i] pieces at
 *   floor((j - 1/2 + u) P / k) pages, j = 1..k-1, u = phase[i] (1/2 when
 *   P / k < 2), in the same double arithmetic as numpy's; the pieces in
 *   address order with the index of their region.  False (and the caller
 *   computes it with numpy) unless every piece is non-empty and in order,
 *   which is when the two give the same answer.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>

/* A merged region's size-weighted age, rounded to the nearest as damo.core.age does. */
static int64_t mean_age(__int128 wage, int64_t size)
{
	if (size < 1)
		size = 1;
	return (int64_t)((wage + size / 2) / size);
}

static Py_ssize_t merge_loop(const int64_t *start, const int64_t *end, const int64_t *nr,
			     const int64_t *age, const uint8_t *may, int64_t thres,
			     int64_t sz_limit, Py_ssize_t n, int64_t *keep, int64_t *out_end,
			     int64_t *out_nr, int64_t *out_age)
{
	Py_ssize_t i, k = 0;
	int64_t p_start = 0, p_end = 0, p_nr = 0;
	__int128 p_wage = 0;

	for (i = 0; i < n; i++) {
		int64_t sz_r = end[i] - start[i];

		if (i > 0) {
			int64_t sz_p = p_end - p_start;
			int64_t d = p_nr > nr[i] ? p_nr - nr[i] : nr[i] - p_nr;

			if (p_end == start[i] && (!may || may[i]) && d <= thres &&
			    sz_p + sz_r <= sz_limit) {
				__int128 sum = (__int128)p_nr * sz_p + (__int128)nr[i] * sz_r;

				p_nr = (int64_t)(sum / (sz_p + sz_r));
				p_wage += (__int128)age[i] * sz_r;
				p_end = end[i];
				continue;
			}
			out_end[k - 1] = p_end;
			out_nr[k - 1] = p_nr;
			out_age[k - 1] = mean_age(p_wage, sz_p);
		}
		keep[k++] = i;
		p_start = start[i];
		p_end = end[i];
		p_nr = nr[i];
		p_wage = (__int128)age[i] * sz_r;
	}
	if (k) {
		int64_t sz_p = p_end - p_start;

		out_end[k - 1] = p_end;
		out_nr[k - 1] = p_nr;
		out_age[k - 1] = mean_age(p_wage, sz_p);
	}
	return k;
}

/* Pieces written, or -1 when they would not be non-empty and in address order. */
static Py_ssize_t split_loop(const int64_t *start, const int64_t *end, const int64_t *pieces,
			     const double *phase, int64_t min_region, Py_ssize_t n,
			     Py_ssize_t total, int64_t *out_start, int64_t *out_end,
			     int64_t *out_parent)
{
	Py_ssize_t i, pos = 0;
	int64_t j, prev_end = INT64_MIN;

	for (i = 0; i < n; i++) {
		int64_t k = pieces[i], s = start[i];
		double step, u;

		if (k < 1 || pos + k > total || s < prev_end)
			return -1;
		step = (double)((end[i] - s) / min_region) / (double)k;
		u = step < 2 ? 0.5 : phase[i];
		out_start[pos] = s;
		out_parent[pos] = i;
		for (j = 1; j < k; j++) {
			/* numpy's order: (j - 0.5) + u, times step, floored */
			int64_t cut = s + (int64_t)floor(step * (((double)j - 0.5) + u)) * min_region;

			if (cut <= out_start[pos])
				return -1;
			out_end[pos++] = cut;
			out_start[pos] = cut;
			out_parent[pos] = i;
		}
		if (end[i] <= out_start[pos])
			return -1;
		out_end[pos++] = end[i];
		prev_end = end[i];
	}
	return pos;
}

/* A C-contiguous buffer of `n` items of `itemsize` bytes (any number when n < 0). */
static int get(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t itemsize,
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

static PyObject *merge(PyObject *self, PyObject *args)
{
	static const char *names[] = {"start", "end", "nr", "age", "keep", "out_end", "out_nr",
				      "out_age", "may"};
	PyObject *objs[9];
	Py_buffer v[9];
	int64_t thres, sz_limit;
	Py_ssize_t n, k;
	int got = 0, i, nbuf = 8;
	PyObject *ret = NULL;

	(void)self;
	if (!PyArg_ParseTuple(args, "OOOOOLLOOOO", &objs[0], &objs[1], &objs[2], &objs[3],
			      &objs[8], &thres, &sz_limit, &objs[4], &objs[5], &objs[6],
			      &objs[7]))
		return NULL;
	if (get(objs[0], &v[0], 0, 8, -1, names[0]))
		return NULL;
	got = 1;
	n = v[0].len / 8;
	for (; got < 8; got++)
		if (get(objs[got], &v[got], got >= 4, 8, n, names[got]))
			goto out;
	if (objs[8] != Py_None) {
		if (get(objs[8], &v[8], 0, 1, n, names[8]))
			goto out;
		nbuf = 9;
		got = 9;
	}
	Py_BEGIN_ALLOW_THREADS
	k = merge_loop(v[0].buf, v[1].buf, v[2].buf, v[3].buf, nbuf == 9 ? v[8].buf : NULL,
		       thres, sz_limit, n, v[4].buf, v[5].buf, v[6].buf, v[7].buf);
	Py_END_ALLOW_THREADS
	ret = PyLong_FromSsize_t(k);
out:
	for (i = 0; i < got; i++)
		PyBuffer_Release(&v[i]);
	return ret;
}

static PyObject *split_evenly(PyObject *self, PyObject *args)
{
	static const char *names[] = {"start", "end", "pieces", "phase", "out_start", "out_end",
				      "out_parent"};
	PyObject *objs[7];
	Py_buffer v[7];
	int64_t min_region;
	Py_ssize_t n, total, got_n;
	int got = 0, i;
	PyObject *ret = NULL;

	(void)self;
	if (!PyArg_ParseTuple(args, "OOOOLOOO", &objs[0], &objs[1], &objs[2], &objs[3],
			      &min_region, &objs[4], &objs[5], &objs[6]))
		return NULL;
	if (min_region < 1) {
		PyErr_SetString(PyExc_ValueError, "split_evenly: min_region < 1");
		return NULL;
	}
	if (get(objs[0], &v[0], 0, 8, -1, names[0]))
		return NULL;
	got = 1;
	n = v[0].len / 8;
	for (; got < 4; got++)
		if (get(objs[got], &v[got], 0, 8, n, names[got]))
			goto out;
	if (get(objs[4], &v[4], 1, 8, -1, names[4]))
		goto out;
	got = 5;
	total = v[4].len / 8;
	for (; got < 7; got++)
		if (get(objs[got], &v[got], 1, 8, total, names[got]))
			goto out;
	Py_BEGIN_ALLOW_THREADS
	got_n = split_loop(v[0].buf, v[1].buf, v[2].buf, v[3].buf, min_region, n, total,
			   v[4].buf, v[5].buf, v[6].buf);
	Py_END_ALLOW_THREADS
	ret = PyBool_FromLong(got_n == total);
out:
	for (i = 0; i < got; i++)
		PyBuffer_Release(&v[i]);
	return ret;
}

static PyMethodDef methods[] = {
	{"merge", merge, METH_VARARGS, "The seed's merge loop (see the source)."},
	{"split_evenly", split_evenly, METH_VARARGS, "narrow's even split (see the source)."},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
	PyModuleDef_HEAD_INIT, "_adjust", "The region adjustment's per-region loops.", -1,
	methods,
	NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__adjust(void)
{
	return PyModule_Create(&module);
}

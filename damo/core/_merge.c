/*
 * The seed's merge loop (damo/core/adjust.py, merge_regions()) in C.
 *
 * Each region joins the survivor before it while the two touch, may merge
 * (narrow's rules), their counts differ by at most the threshold and their
 * sizes fit the limit; the survivor's count is size-weighted pair by pair,
 * rounded down at each join, as the seed computes it, so the loop is
 * sequential: in Python it was most of the engine's per-aggregation time
 * (bench/engine).  The rule itself is documented in adjust.py, which keeps
 * the same loop in Python for when this extension is not built; the two are
 * compared on random regions by tests/test_adjust.py.
 *
 * merge(start, end, nr, age, may, thres, sz_limit, keep, out_end, out_nr, out_age) -> k
 *   start, end, nr, age: int64, n regions in address order;
 *   may: uint8 (numpy bool), n, or None (every region may join);
 *   keep, out_end, out_nr, out_age: int64, n, writable: the k survivors'
 *   first region, end, merged count and size-weighted age (rounded down once).
 * Counts, ages and sizes are non-negative; the products are taken in 128 bits.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

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
			out_age[k - 1] = (int64_t)(p_wage / (sz_p > 1 ? sz_p : 1));
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
		out_age[k - 1] = (int64_t)(p_wage / (sz_p > 1 ? sz_p : 1));
	}
	return k;
}

static int get(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t itemsize,
	       Py_ssize_t n, const char *what)
{
	if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)))
		return -1;
	if (view->itemsize != itemsize || view->len != n * itemsize) {
		PyErr_Format(PyExc_ValueError, "merge: %s has the wrong item size or length", what);
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
	if (PyObject_GetBuffer(objs[0], &v[0], PyBUF_C_CONTIGUOUS))
		return NULL;
	got = 1;
	n = v[0].len / 8;
	if (v[0].itemsize != 8) {
		PyErr_SetString(PyExc_ValueError, "merge: start is not int64");
		goto out;
	}
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

static PyMethodDef methods[] = {
	{"merge", merge, METH_VARARGS, "The seed's merge loop (see the source)."},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
	PyModuleDef_HEAD_INIT, "_merge", "The region merge loop.", -1, methods,
	NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__merge(void)
{
	return PyModule_Create(&module);
}

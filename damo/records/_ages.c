/*
 * Region ages derived from consecutive snapshots (damo/records/ages.py, derive()).
 *
 * The rule is the one derive() documents; this is its inner loop in C, because
 * in numpy it costs one pass of several array operations per snapshot and an
 * overlap table per chunk: most of `damo report access` on a record without
 * ages in its sidecar (bench/reports).  One sweep per snapshot walks its regions
 * and the previous snapshot's together, both sorted by address.
 *
 * derive(start, end, nr, cstart, thres, known, last_start, last_end, last_nr,
 *        last_age, ages)
 *   start, end, nr: int64, the snapshots' regions, flat;
 *   cstart: int64, nr_snapshots + 1 offsets into them;
 *   thres: int64 per snapshot; known: uint8 per snapshot (its ages are already
 *   in `ages`, from the sidecar);
 *   last_*: int64, the snapshot before the first;
 *   ages: int64, writable, len(start): the result.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "buffers.h"

static int alike(int64_t a, int64_t b, int64_t thres)
{
	int64_t d = a > b ? a - b : b - a;

	return d <= thres && ((a == 0) == (b == 0));
}

/* The ages of one snapshot's regions from the previous snapshot's. */
static void sweep(const int64_t *cs, const int64_t *ce, const int64_t *cn, int64_t *ca,
		  Py_ssize_t n, const int64_t *ps, const int64_t *pe, const int64_t *pn,
		  const int64_t *pa, Py_ssize_t m, int64_t thres)
{
	Py_ssize_t i, j = 0, k;

	for (i = 0; i < n; i++) {
		__int128 sum = 0;
		int64_t size = ce[i] - cs[i];

		while (j < m && pe[j] <= cs[i])
			j++;
		for (k = j; k < m && ps[k] < ce[i]; k++) {
			int64_t lo = ps[k] > cs[i] ? ps[k] : cs[i];
			int64_t hi = pe[k] < ce[i] ? pe[k] : ce[i];

			if (hi > lo && alike(cn[i], pn[k], thres))
				sum += (__int128)(pa[k] + 1) * (hi - lo);
		}
		/* The size-weighted age, to the nearest (damo/core/age.py says why). */
		if (size <= 0)
			ca[i] = 0;
		else if (sum <= INT64_MAX - size)  /* the usual case: a 64-bit division is cheaper */
			ca[i] = ((int64_t)sum + size / 2) / size;
		else
			ca[i] = (int64_t)((sum + size / 2) / size);
	}
}

static PyObject *derive(PyObject *self, PyObject *args)
{
	/* any lengths: they are checked against each other below */
	static const struct buffer_arg bufs[] = {
		{"start", 8, 0, BUF_ANY, 0}, {"end", 8, 0, BUF_ANY, 0}, {"nr", 8, 0, BUF_ANY, 0},
		{"cstart", 8, 0, BUF_ANY, 0}, {"thres", 8, 0, BUF_ANY, 0},
		{"known", 1, 0, BUF_ANY, 0}, {"last_start", 8, 0, BUF_ANY, 0},
		{"last_end", 8, 0, BUF_ANY, 0}, {"last_nr", 8, 0, BUF_ANY, 0},
		{"last_age", 8, 0, BUF_ANY, 0}, {"ages", 8, 1, BUF_ANY, 0},
	};
	PyObject *objs[11];
	Py_buffer v[11];
	int got[11], nr_got;
	PyObject *ret = NULL;
	Py_ssize_t nsnap, k, n = 0, m;
	const int64_t *start, *end, *nr, *cstart, *thres;
	const uint8_t *known;
	int64_t *ages;

	(void)self;
	if (!PyArg_ParseTuple(args, "OOOOOOOOOOO", &objs[0], &objs[1], &objs[2], &objs[3],
			      &objs[4], &objs[5], &objs[6], &objs[7], &objs[8], &objs[9],
			      &objs[10]))
		return NULL;
	if (get_buffers(objs, v, bufs, 11, &n, got, &nr_got))
		goto out;
	n = v[0].len / 8;
	m = v[6].len / 8;
	nsnap = v[4].len / 8;
	if (v[1].len / 8 != n || v[2].len / 8 != n || v[10].len / 8 != n ||
	    v[3].len / 8 != nsnap + 1 || v[5].len != nsnap || v[7].len / 8 != m ||
	    v[8].len / 8 != m || v[9].len / 8 != m) {
		PyErr_SetString(PyExc_ValueError, "derive: array lengths do not match");
		goto out;
	}
	start = v[0].buf, end = v[1].buf, nr = v[2].buf, cstart = v[3].buf, thres = v[4].buf;
	known = v[5].buf, ages = v[10].buf;
	for (k = 0; k < nsnap; k++)
		if (cstart[k] < 0 || cstart[k] > cstart[k + 1] || cstart[k + 1] > n) {
			PyErr_SetString(PyExc_ValueError, "derive: bad snapshot offsets");
			goto out;
		}
	Py_BEGIN_ALLOW_THREADS
	for (k = 0; k < nsnap; k++) {
		Py_ssize_t c0 = cstart[k], c1 = cstart[k + 1];

		if (known[k])
			continue;
		if (k == 0)
			sweep(start + c0, end + c0, nr + c0, ages + c0, c1 - c0, v[6].buf, v[7].buf,
			      v[8].buf, v[9].buf, m, thres[k]);
		else
			sweep(start + c0, end + c0, nr + c0, ages + c0, c1 - c0,
			      start + cstart[k - 1], end + cstart[k - 1], nr + cstart[k - 1],
			      ages + cstart[k - 1], c0 - cstart[k - 1], thres[k]);
	}
	Py_END_ALLOW_THREADS
	ret = Py_NewRef(Py_None);
out:
	release_buffers(v, got, nr_got);
	return ret;
}

static PyMethodDef methods[] = {
	{"derive", derive, METH_VARARGS, "Ages of consecutive snapshots (see the source)."},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
	PyModuleDef_HEAD_INIT, "_ages", "Region ages derived from snapshots.", -1, methods,
	NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__ages(void)
{
	return PyModule_Create(&module);
}

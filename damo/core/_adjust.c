/*
 * The region adjustment's per-region loops in C: the seed's merge loop
 * (damo/core/adjust.py, merge_regions()), and narrow's rules and even split
 * (damo/core/narrow.py).  All run every aggregation; in Python the merge loop
 * was most of the engine's per-aggregation time, and narrow's rules some fifty
 * numpy calls of 1-3 us each on ~100-element arrays (bench/engine, figure 4).
 * narrow.py keeps the rules' description and their settings; the rules
 * themselves are here only.  Tests: tests/test_core.py, tests/test_narrow.py.
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
 *
 * narrow_may_merge(start, end, nr, hold, last, thres, cool, unaccessed_apart, may) -> None
 *   narrow's merge rules: first the diffuse searches end (hold set to -cool
 *   in place; cool < 0: not), then may[i] says whether region i may join
 *   the region before it: neither waits for its hit (held, no access), both
 *   or neither were accessed (unaccessed_apart 1; 2: unless either cools
 *   off), and their last counts were not far apart (last: int64 n, or None
 *   for no such rule).
 *   hold: int32, n, writable; may: bool, n, writable.
 *
 * narrow_merged_holds(hold, keep, out) -> None
 *   The hold of each merge survivor (keep: its first part, int64): the
 *   lowest of its parts' when that is negative (a cooling-off), else the
 *   highest.  hold, out: int32.
 *
 * narrow_split_plan(nr, hold, pages, adjacent, nr_subs, sparse_max, max_nr_regions,
 *                   full, evidence_pieces, cold_share, update_room, straddle_pieces,
 *                   hold_aggregations, hold_found, pieces, evidence, new_hold) -> None
 *   narrow's split rules: the pieces of each region (int64, >= 1), which
 *   regions are evidence (bool), and every region's hold for the next
 *   aggregation (int32).  nr, pages: int64; hold: int32; adjacent: bool,
 *   n - 1; full < 0: no straddle cut.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>

#include "buffers.h"

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

/* End the searches hit in two or more separate places (narrow.py, release_diffuse). */
static void release_diffuse(const int64_t *start, const int64_t *end, const int64_t *nr,
			    int32_t *hold, int32_t cool, Py_ssize_t n)
{
	Py_ssize_t i, j, family = 0;
	int32_t prev = 0;
	int runs = 0, prev_hit = 0;

	for (i = 0; i <= n; i++) {
		/* hold[i] is read before anything at or after i is written */
		int32_t h = i < n ? hold[i] : 0;
		int hit = i < n && nr[i] > 0;
		int same = i > 0 && i < n && h > 0 && prev > 0 && h == prev &&
			   end[i - 1] == start[i];

		if (!same) {
			if (runs >= 2)
				for (j = family; j < i; j++)
					if (hold[j] > 0)
						hold[j] = -cool;
			family = i;
			runs = 0;
		}
		if (hit && h > 0 && !(same && prev_hit))
			runs++;
		prev = h;
		prev_hit = hit;
	}
}

static void may_merge(const int64_t *start, const int64_t *end, const int64_t *nr,
		      int32_t *hold, const int64_t *last, int64_t thres, int32_t cool,
		      int unaccessed_apart, Py_ssize_t n, uint8_t *may)
{
	/* far: last counts more than half the highest count apart (thres is a tenth) */
	int64_t far = 5 * thres > 1 ? 5 * thres : 1;
	Py_ssize_t i;

	if (cool >= 0)
		release_diffuse(start, end, nr, hold, cool, n);
	for (i = 0; i < n; i++) {
		int ok;

		if (i == 0) {
			may[0] = 0;
			continue;
		}
		ok = !(hold[i - 1] > 0 && nr[i - 1] == 0) && !(hold[i] > 0 && nr[i] == 0);
		/* 2: not where either cools off (a diffuse search: they merge as the seed's) */
		if (unaccessed_apart == 1 ||
		    (unaccessed_apart == 2 && hold[i - 1] >= 0 && hold[i] >= 0))
			ok = ok && (nr[i - 1] == 0) == (nr[i] == 0);
		if (last) {
			int64_t d = last[i] - last[i - 1];

			ok = ok && (d < 0 ? -d : d) <= far;
		}
		may[i] = (uint8_t)ok;
	}
}

static void merged_holds(const int32_t *hold, Py_ssize_t n, const int64_t *keep,
			 Py_ssize_t k, int32_t *out)
{
	Py_ssize_t s, i;

	for (s = 0; s < k; s++) {
		Py_ssize_t to = s + 1 < k ? keep[s + 1] : n;
		int32_t lo = hold[keep[s]], hi = lo;

		for (i = keep[s] + 1; i < to; i++) {
			if (hold[i] < lo)
				lo = hold[i];
			if (hold[i] > hi)
				hi = hold[i];
		}
		out[s] = lo < 0 ? lo : hi;
	}
}

struct plan_args {
	int64_t nr_subs, sparse_max, max_nr_regions, full, evidence_pieces, cold_share,
		update_room, straddle_pieces, hold_aggregations, hold_found;
};

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/*
 * Keep want[i] while the running sum of want[0..i] is within budget, else
 * 0 (narrow.py's rule: from the first region the budget runs out at);
 * adds what is kept to extra and returns its sum.
 */
static int64_t within(const int64_t *want, int64_t budget, Py_ssize_t n, int64_t *extra)
{
	int64_t sum = 0, kept = 0;
	Py_ssize_t i;

	for (i = 0; i < n; i++) {
		sum += want[i];
		if (sum > budget)
			break;
		extra[i] += want[i];
		kept += want[i];
	}
	return kept;
}

static void split_plan(const int64_t *nr, const int32_t *hold, const int64_t *pages,
		       const uint8_t *adjacent, const struct plan_args *a, Py_ssize_t n,
		       int64_t *pieces, uint8_t *evidence, int32_t *new_hold, int64_t *want)
{
	/* room for the update's three ranges before the next merge */
	int64_t budget = a->max_nr_regions - a->update_room - n;
	int64_t nr_cold = 0, cold_pages = 0;
	int any_accessed = 0;
	Py_ssize_t i;

	/* evidence: a sparse hit with no accessed neighbour touching it */
	for (i = 0; i < n; i++) {
		int quiet = (i == 0 || !adjacent[i - 1] || nr[i - 1] == 0) &&
			    (i == n - 1 || !adjacent[i] || nr[i + 1] == 0);

		evidence[i] = nr[i] > 0 && nr[i] <= a->sparse_max && quiet && pages[i] > 1 &&
			      hold[i] >= 0;
		want[i] = evidence[i] ? min64(pages[i], a->evidence_pieces) - 1 : 0;
		pieces[i] = 0;
	}
	budget -= within(want, budget, n, pieces);
	/* accessed regions: the seed's nr_subs pieces, finer where they straddle a step */
	for (i = 0; i < n; i++) {
		int accessed = nr[i] > 0 && !evidence[i] && pages[i] > 2;

		want[i] = 0;
		if (accessed) {
			int64_t k = a->nr_subs;

			any_accessed = 1;
			if (a->straddle_pieces && a->full >= 0 && nr[i] < a->full &&
			    nr[i] > a->sparse_max) {
				int step = 0;

				if (i > 0 && adjacent[i - 1]) {
					int64_t d = nr[i] - nr[i - 1];

					step = (d < 0 ? -d : d) > a->sparse_max;
				}
				if (!step && i < n - 1 && adjacent[i]) {
					int64_t d = nr[i + 1] - nr[i];

					step = (d < 0 ? -d : d) > a->sparse_max;
				}
				if (step)
					k = min64(pages[i], a->straddle_pieces);
			}
			want[i] = k - 1;
		}
		if (nr[i] == 0 && hold[i] == 0 && pages[i] > 2) {
			nr_cold++;
			cold_pages += pages[i];
		}
	}
	for (i = 0; i < n; i++)  /* an evidence the budget cut off is no evidence */
		evidence[i] = evidence[i] && pieces[i] > 0;
	if (any_accessed)
		budget -= within(want, max64(budget, 0), n, pieces);
	/* cold regions: pieces of about one size, up to max_nr_regions / cold_share in all */
	if (nr_cold && budget > 0) {
		int64_t nr_pieces = min64(budget + nr_cold,
					  max64(a->max_nr_regions / a->cold_share, 2 * nr_cold));
		int64_t piece = max64(cold_pages / nr_pieces, 1);

		for (i = 0; i < n; i++)
			want[i] = nr[i] == 0 && hold[i] == 0 && pages[i] > 2 ?
				  min64(max64(pages[i] / piece, 2), pages[i]) - 1 : 0;
		within(want, budget, n, pieces);
	}
	for (i = 0; i < n; i++) {
		/* holds and cooling-offs run out; a small object found is held too */
		int32_t h = hold[i] - (hold[i] > 0) + (hold[i] < 0);

		pieces[i] += 1;
		if (evidence[i] || (a->hold_found && nr[i] > 0 &&
				    pages[i] <= a->evidence_pieces && h >= 0))
			h = (int32_t)a->hold_aggregations;
		new_hold[i] = h;
	}
}

static PyObject *merge(PyObject *self, PyObject *args)
{
	/* in objs' order; `may` is the fifth argument */
	static const struct buffer_arg bufs[] = {
		{"start", 8, 0, BUF_ANY, 0}, {"end", 8, 0, BUF_N, 0}, {"nr", 8, 0, BUF_N, 0},
		{"age", 8, 0, BUF_N, 0}, {"keep", 8, 1, BUF_N, 0}, {"out_end", 8, 1, BUF_N, 0},
		{"out_nr", 8, 1, BUF_N, 0}, {"out_age", 8, 1, BUF_N, 0}, {"may", 1, 0, BUF_N, 1},
	};
	PyObject *objs[9];
	Py_buffer v[9];
	int64_t thres, sz_limit;
	Py_ssize_t n = 0, k;
	int got[9], nr_got;
	PyObject *ret = NULL;

	(void)self;
	if (!PyArg_ParseTuple(args, "OOOOOLLOOOO", &objs[0], &objs[1], &objs[2], &objs[3],
			      &objs[8], &thres, &sz_limit, &objs[4], &objs[5], &objs[6],
			      &objs[7]))
		return NULL;
	if (!get_buffers(objs, v, bufs, 9, &n, got, &nr_got)) {
		Py_BEGIN_ALLOW_THREADS
		k = merge_loop(v[0].buf, v[1].buf, v[2].buf, v[3].buf, v[8].buf, thres, sz_limit,
			       n, v[4].buf, v[5].buf, v[6].buf, v[7].buf);
		Py_END_ALLOW_THREADS
		ret = PyLong_FromSsize_t(k);
	}
	release_buffers(v, got, nr_got);
	return ret;
}

static PyObject *split_evenly(PyObject *self, PyObject *args)
{
	/* n regions in, total pieces out (out_start's length) */
	static const struct buffer_arg bufs[] = {
		{"start", 8, 0, BUF_ANY, 0}, {"end", 8, 0, BUF_N, 0}, {"pieces", 8, 0, BUF_N, 0},
		{"phase", 8, 0, BUF_N, 0}, {"out_start", 8, 1, BUF_ANY, 0},
		{"out_end", 8, 1, BUF_N, 0}, {"out_parent", 8, 1, BUF_N, 0},
	};
	PyObject *objs[7];
	Py_buffer v[7];
	int64_t min_region;
	Py_ssize_t n, total = 0, got_n;
	int got[7], nr_got;
	PyObject *ret = NULL;

	(void)self;
	if (!PyArg_ParseTuple(args, "OOOOLOOO", &objs[0], &objs[1], &objs[2], &objs[3],
			      &min_region, &objs[4], &objs[5], &objs[6]))
		return NULL;
	if (min_region < 1) {
		PyErr_SetString(PyExc_ValueError, "split_evenly: min_region < 1");
		return NULL;
	}
	if (!get_buffers(objs, v, bufs, 7, &total, got, &nr_got)) {
		n = v[0].len / 8;
		Py_BEGIN_ALLOW_THREADS
		got_n = split_loop(v[0].buf, v[1].buf, v[2].buf, v[3].buf, min_region, n, total,
				   v[4].buf, v[5].buf, v[6].buf);
		Py_END_ALLOW_THREADS
		ret = PyBool_FromLong(got_n == total);
	}
	release_buffers(v, got, nr_got);
	return ret;
}

static PyObject *narrow_may_merge(PyObject *self, PyObject *args)
{
	static const struct buffer_arg bufs[] = {
		{"start", 8, 0, BUF_ANY, 0}, {"end", 8, 0, BUF_N, 0}, {"nr", 8, 0, BUF_N, 0},
		{"hold", 4, 1, BUF_N, 0}, {"last", 8, 0, BUF_N, 1}, {"may", 1, 1, BUF_N, 0},
	};
	PyObject *o[6];
	Py_buffer v[6];
	int got[6], nr_got, cool, apart;
	int64_t thres;
	Py_ssize_t n = 0;
	PyObject *ret = NULL;

	(void)self;
	if (!PyArg_ParseTuple(args, "OOOOOLiiO", &o[0], &o[1], &o[2], &o[3], &o[4], &thres,
			      &cool, &apart, &o[5]))
		return NULL;
	if (!get_buffers(o, v, bufs, 6, &n, got, &nr_got)) {
		may_merge(v[0].buf, v[1].buf, v[2].buf, v[3].buf, v[4].buf, thres, cool, apart,
			  n, v[5].buf);
		ret = Py_NewRef(Py_None);
	}
	release_buffers(v, got, nr_got);
	return ret;
}

static PyObject *narrow_merged_holds(PyObject *self, PyObject *args)
{
	static const struct buffer_arg bufs[] = {
		{"hold", 4, 0, BUF_ANY, 0}, {"keep", 8, 0, BUF_ANY, 0}, {"out", 4, 1, BUF_N, 0},
	};
	PyObject *o[3];
	Py_buffer v[3];
	int got[3], nr_got;
	Py_ssize_t n = 0, k, i;
	PyObject *ret = NULL;

	(void)self;
	if (!PyArg_ParseTuple(args, "OOO", &o[0], &o[1], &o[2]))
		return NULL;
	if (!get_buffers(o, v, bufs, 3, &n, got, &nr_got)) {
		const int64_t *keep = v[1].buf;

		/* keep: the survivors' first parts, rising from 0, within hold */
		k = n;
		for (i = 0; i < k; i++)
			if (keep[i] >= (Py_ssize_t)(v[0].len / 4) || (i ? keep[i] <= keep[i - 1] :
								     keep[i] != 0))
				break;
		if (i < k || (v[0].len / 4 && !k)) {
			PyErr_SetString(PyExc_ValueError, "narrow_merged_holds: keep out of order");
		} else {
			merged_holds(v[0].buf, v[0].len / 4, keep, k, v[2].buf);
			ret = Py_NewRef(Py_None);
		}
	}
	release_buffers(v, got, nr_got);
	return ret;
}

static PyObject *narrow_split_plan(PyObject *self, PyObject *args)
{
	static const struct buffer_arg bufs[] = {
		{"nr", 8, 0, BUF_ANY, 0}, {"hold", 4, 0, BUF_N, 0}, {"pages", 8, 0, BUF_N, 0},
		{"adjacent", 1, 0, BUF_N_LESS_1, 0}, {"pieces", 8, 1, BUF_N, 0},
		{"evidence", 1, 1, BUF_N, 0}, {"new_hold", 4, 1, BUF_N, 0},
	};
	PyObject *o[7];
	Py_buffer v[7];
	struct plan_args a;
	int got[7], nr_got;
	Py_ssize_t n = 0;
	int64_t *want;
	PyObject *ret = NULL;

	(void)self;
	if (!PyArg_ParseTuple(args, "OOOOLLLLLLLLLLOOO", &o[0], &o[1], &o[2], &o[3], &a.nr_subs,
			      &a.sparse_max, &a.max_nr_regions, &a.full, &a.evidence_pieces,
			      &a.cold_share, &a.update_room, &a.straddle_pieces,
			      &a.hold_aggregations, &a.hold_found, &o[4], &o[5], &o[6]))
		return NULL;
	if (a.cold_share < 1) {
		PyErr_SetString(PyExc_ValueError, "narrow_split_plan: cold_share < 1");
		return NULL;
	}
	if (!get_buffers(o, v, bufs, 7, &n, got, &nr_got)) {
		want = PyMem_Malloc((n ? n : 1) * sizeof(*want));
		if (!want) {
			PyErr_NoMemory();
		} else {
			split_plan(v[0].buf, v[1].buf, v[2].buf, v[3].buf, &a, n, v[4].buf,
				   v[5].buf, v[6].buf, want);
			PyMem_Free(want);
			ret = Py_NewRef(Py_None);
		}
	}
	release_buffers(v, got, nr_got);
	return ret;
}

static PyMethodDef methods[] = {
	{"merge", merge, METH_VARARGS, "The seed's merge loop (see the source)."},
	{"split_evenly", split_evenly, METH_VARARGS, "narrow's even split (see the source)."},
	{"narrow_may_merge", narrow_may_merge, METH_VARARGS, "narrow's merge rules (see the source)."},
	{"narrow_merged_holds", narrow_merged_holds, METH_VARARGS,
	 "A merge survivor's hold (see the source)."},
	{"narrow_split_plan", narrow_split_plan, METH_VARARGS, "narrow's split rules (see the source)."},
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

/*
 * The sampling loop of the vaddr operations, natively: every sampling
 * interval until a deadline, one pass of the sample program per target
 * (bpf/page_walk.bpf.c: check, count, draw, stage), one process_madvise of
 * what it staged, the verify pass when a staged page may be shared, and the
 * exit check, all with the GIL released.  Python (damo/ops/vaddr/sampling.py) runs
 * once per aggregation: this file holds no logic it has.  Whatever is not the
 * common path (an advice the kernel stopped short, a failed walk, an exited
 * target) returns to Python, which finishes that step with the per-sample code.
 *
 * The config slots are bpf/sampler_config.h's, which the BPF program includes
 * too (a test compares them with damo/sampler/walker.py's CFG_* for Python).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "sampler_config.h"

/* Why run() returned: the deadline's check is done, or target `index` needs Python. */
enum { R_DONE = 0, R_INTR = 1, R_GONE = 2, R_FAIL = 3, R_ADVISE = 4 };

#define BPF_PROG_TEST_RUN_CMD 10
#define SYS_PROCESS_MADVISE_NR 440
#define MADV_COLD_ADVICE 20
#define IOV_MAX_CALL 1024
#define MAX_TARGETS 64

/* The test-run part of union bpf_attr, as damo/linux/bpf_syscall.py builds it. */
struct test_run_attr {
	uint32_t prog_fd, retval, data_size_in, data_size_out;
	uint64_t data_in, data_out;
	uint32_t repeat, duration, ctx_size_in, ctx_size_out;
	uint64_t ctx_in, ctx_out;
	uint32_t flags, cpu, batch_size;
};

struct target {
	long long mem_fd, pidfd, base, nr, gen;
};

struct loop {
	volatile uint64_t *cfg;
	uint64_t iovecs;
	struct test_run_attr attr;
	struct target t[MAX_TARGETS];
	int nr_targets;
	long long advised; /* bytes the last advice did, -1 when it failed or was not made */
	uint64_t walked; /* regions of the target handed back whose pass is done */
};

static int test_run(struct loop *l)
{
	l->attr.retval = 0;
	return syscall(SYS_bpf, BPF_PROG_TEST_RUN_CMD, &l->attr, sizeof(l->attr)) < 0 ? -1 : 0;
}

/* One chained run of the sample program over items [first, n); 0, or -1 on a failed walk. */
static int run_chained(struct loop *l, const struct target *t, uint64_t first, uint64_t n)
{
	volatile uint64_t *cfg = l->cfg;

	cfg[CFG_MEM_FD] = t->mem_fd;
	cfg[CFG_NEXT] = first;
	for (;;) {
		cfg[CFG_STATUS] = ST_NO_FILE;
		if (test_run(l) || cfg[CFG_STATUS] != ST_OK)
			return -1;
		if (cfg[CFG_NEXT] >= n)
			return 0;
	}
}

static int exited(const struct target *t)
{
	struct pollfd p = {.fd = (int)t->pidfd, .events = POLLIN};

	return poll(&p, 1, 0) > 0;
}

/*
 * Regions a pass covers before its advice.  A region's check and the clear of
 * its next page are a pass and an advice apart: an access in between is seen
 * by neither (see walk_phase).  Over 500 hot regions that was ~0.5 ms of a
 * 5 ms interval; in chunks of this many it is a chunk's pass and advice, for
 * two or three more system calls a chunk (docs/sampler.md has the figures).
 */
#define CHUNK_REGIONS 128

/* Regions [first, end) of a target's step: the reason to return to Python, or -1 to go on. */
static int step_chunk(struct loop *l, const struct target *t, uint64_t mode, uint64_t step,
		      uint64_t first, uint64_t end)
{
	volatile uint64_t *cfg = l->cfg;
	uint64_t staged, bytes;
	long done;

	cfg[CFG_MODE] = mode;
	cfg[CFG_BASE] = t->base;
	cfg[CFG_NR] = end;
	cfg[CFG_NR_IOV] = 0;
	cfg[CFG_IOV_BYTES] = 0;
	cfg[CFG_NR_VERIFY] = 0;
	cfg[CFG_SHARED_GEN] = t->gen;
	cfg[CFG_STEP] = step;
	l->walked = first;
	if (run_chained(l, t, first, end))
		return exited(t) ? R_GONE : R_FAIL;
	/* Every live thread holds a user of the mm: only at 0 can it have exited. */
	if (cfg[CFG_MM_USERS] == 0 && exited(t))
		return R_GONE;
	l->walked = end;
	staged = cfg[CFG_NR_IOV];
	if (!staged)
		return -1;
	bytes = cfg[CFG_IOV_BYTES];
	l->advised = -1;
	if (staged > IOV_MAX_CALL)
		return R_ADVISE;
	done = syscall(SYS_PROCESS_MADVISE_NR, (int)t->pidfd, (void *)(uintptr_t)l->iovecs,
		       (size_t)staged, MADV_COLD_ADVICE, 0U);
	if (done < 0 || (uint64_t)done != bytes) {
		/* Python goes on after what was advised (never advising a page twice). */
		l->advised = done;
		return R_ADVISE;
	}
	if (!cfg[CFG_NR_VERIFY])
		return -1;
	/*
	 * Pages still young after the advice are marked uncleared by the verify
	 * pass: not counted at the next check.  Nearly all are shared (their bit
	 * is no evidence); one touched again within these microseconds loses one
	 * sample.  Python's path looks each up in pagemap and remembers the
	 * shared ones; here that would hand back about every other step of a
	 * target whose regions span library text, for new pages each time.
	 */
	cfg[CFG_MODE] = SAMPLE_VERIFY;
	cfg[CFG_NR_STILL] = 0;
	if (run_chained(l, t, 0, staged))
		return exited(t) ? R_GONE : R_FAIL;
	return -1;
}

/* One target's part of a step, a chunk of regions at a time. */
static int step_target(struct loop *l, const struct target *t, uint64_t mode, uint64_t step)
{
	uint64_t first, end;
	int reason;

	l->cfg[CFG_MAX] = 0;
	for (first = 0; first < (uint64_t)t->nr; first = end) {
		end = first + CHUNK_REGIONS < (uint64_t)t->nr ? first + CHUNK_REGIONS : (uint64_t)t->nr;
		reason = step_chunk(l, t, mode, step, first, end);
		if (reason >= 0)
			return reason;
	}
	return -1;
}

/* Parse the targets: a sequence of (mem_fd, pidfd, base, nr, gen). */
static int parse_targets(struct loop *l, PyObject *seq)
{
	PyObject *fast = PySequence_Fast(seq, "targets must be a sequence");
	Py_ssize_t n;

	if (!fast)
		return -1;
	n = PySequence_Fast_GET_SIZE(fast);
	if (n > MAX_TARGETS) {
		Py_DECREF(fast);
		PyErr_Format(PyExc_ValueError, "at most %d targets", MAX_TARGETS);
		return -1;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		struct target *t = &l->t[i];

		if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, i), "LLLLL;a target is "
				      "(mem_fd, pidfd, base, nr, gen)", &t->mem_fd, &t->pidfd,
				      &t->base, &t->nr, &t->gen)) {
			Py_DECREF(fast);
			return -1;
		}
	}
	l->nr_targets = (int)n;
	Py_DECREF(fast);
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * Where the steps lie after their grid (deadline less whole intervals): a
 * random walk, moved by up to a tenth of its span each step, reflected at 0
 * and at the span, min(interval, PHASE_SPAN_NS).  A step checks a region's
 * page and only then clears the next one (one pass, then one advice): an
 * access between the two is seen by neither.  On a fixed grid a workload
 * waking on the same clock every sampling interval could fall in that gap at
 * every step and read cold for good (tests/test_e2e_accuracy.py's many
 * workload did, 1 run in 10); the walk moves the gap over any periodic access
 * within an aggregation.  A window changes by at most a tenth of an interval,
 * and an aggregation ends at most the span after its deadline.
 */
#define PHASE_SPAN_NS 5000000ULL
static uint64_t phase_ns, rand_state;

static void walk_phase(uint64_t interval)
{
	uint64_t span = interval < PHASE_SPAN_NS ? interval : PHASE_SPAN_NS, move;
	int64_t p;

	if (!rand_state)
		rand_state = now_ns() | 1;
	/* xorshift64: cheap, and any spread will do */
	rand_state ^= rand_state << 13;
	rand_state ^= rand_state >> 7;
	rand_state ^= rand_state << 17;
	move = span / 5 ? rand_state % (span / 5 + 1) : 0; /* 0 .. span / 5 */
	p = (int64_t)phase_ns + (int64_t)move - (int64_t)(span / 10);
	if (p < 0)
		p = -p;
	if ((uint64_t)p >= span)
		p = span ? (int64_t)(2 * span - 1) - p : 0;
	phase_ns = p < 0 ? 0 : (uint64_t)p;
}


PyDoc_STRVAR(run_doc,
"run(config_addr, prog_fd, iovecs_addr, targets, ahead, step, next_ns, interval_ns, deadline_ns)\n"
"\n"
"Sample every interval_ns (CLOCK_MONOTONIC, absolute) from next_ns until the\n"
"first step at or after deadline_ns, whose check is done alone; each step\n"
"wakes the phase walk's few milliseconds at most after its time.  Unless `ahead`, first draw\n"
"and clear the samples of step `step` (an AHEAD pass).  Returns (reason,\n"
"index, mode, step, next_ns, ahead, staged, staged_bytes, steps, advised, walked):\n"
"reason 0\n"
"the deadline's check is done; 1 a signal interrupted the sleep; otherwise\n"
"target `index` needs Python in the step of `mode` (2 exited, 3 its walk\n"
"failed, 4 its advice fell short), the\n"
"targets after it not yet sampled; `staged` iovecs of `staged_bytes` are\n"
"its, of which the call advised `advised` bytes (-1: none, an error); the\n"
"target's regions before `walked` had their pass (those after, none).\n"
"`step` and `next_ns` are those of the next step, `steps` how many\n"
"steps this call slept for.");

static PyObject *run(PyObject *self, PyObject *args)
{
	unsigned long long cfg_addr, iovecs, step, next, interval, deadline;
	int prog_fd, ahead, reason = R_DONE, index = 0, steps = 0;
	uint64_t mode = SAMPLE_AHEAD, staged = 0, bytes = 0;
	long long advised = -1;
	unsigned long long walked = 0;
	PyObject *targets;
	struct loop l;

	(void)self;
	if (!PyArg_ParseTuple(args, "KiKOpKKKK", &cfg_addr, &prog_fd, &iovecs, &targets, &ahead,
			      &step, &next, &interval, &deadline))
		return NULL;
	if (!cfg_addr || !interval) {
		PyErr_SetString(PyExc_ValueError, "no config array, or a zero interval");
		return NULL;
	}
	memset(&l, 0, sizeof(l));
	l.cfg = (volatile uint64_t *)(uintptr_t)cfg_addr;
	l.iovecs = iovecs;
	l.attr.prog_fd = (uint32_t)prog_fd;
	if (parse_targets(&l, targets))
		return NULL;

	Py_BEGIN_ALLOW_THREADS
	if (!ahead) {
		/* Draw for step `step` on the regions as they are now: step - 1's AHEAD. */
		for (index = 0; index < l.nr_targets; index++) {
			reason = step_target(&l, &l.t[index], mode, step - 1);
			if (reason >= 0)
				break;
		}
		if (index == l.nr_targets) {
			reason = R_DONE;
			ahead = 1;
		}
	}
	while (ahead) {
		struct timespec ts;
		uint64_t when = next, now, at;
		int err;

		walk_phase(interval);
		at = when + phase_ns;
		ts.tv_sec = (time_t)(at / 1000000000ULL);
		ts.tv_nsec = (long)(at % 1000000000ULL);
		err = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		if (err == EINTR) {
			reason = R_INTR;
			break;
		}
		steps++;
		mode = when >= deadline ? SAMPLE_CHECK : SAMPLE_CHECK | SAMPLE_AHEAD;
		for (index = 0; index < l.nr_targets; index++) {
			reason = step_target(&l, &l.t[index], mode, step);
			if (reason >= 0)
				break;
		}
		step++;
		/*
		 * After a late wake-up (a stalled monitor, a busy CPU) the next
		 * step still comes a whole interval after this one: run at once,
		 * its check would see only the moments since this step's clears
		 * and read cold.  The steps lost are not made up here: counts
		 * are of the checks made, and Python lets the aggregation wait
		 * for a region checked fewer times than the floor.  The step
		 * that reaches the deadline is the last: the aggregation ends at
		 * most one interval late, never with a short last window.
		 */
		now = now_ns();
		next = when + interval;
		if (next + phase_ns < now)
			next = now + interval;
		ahead = mode & SAMPLE_AHEAD ? 1 : 0;
		if (index < l.nr_targets)
			break;
		reason = R_DONE;
		if (!ahead)
			break;
	}
	if (reason == R_DONE || reason == R_INTR)
		index = 0;
	if (reason == R_ADVISE) {
		staged = l.cfg[CFG_NR_IOV];
		bytes = l.cfg[CFG_IOV_BYTES];
		advised = l.advised;
	}
	if (reason == R_ADVISE || reason == R_FAIL)
		walked = l.walked;
	Py_END_ALLOW_THREADS

	return Py_BuildValue("iiKKKiKKiLK", reason, index, (unsigned long long)mode, step, next,
			     ahead, (unsigned long long)staged, (unsigned long long)bytes, steps,
			     advised, walked);
}

static PyObject *phase(PyObject *self, PyObject *noargs)
{
	(void)self;
	(void)noargs;
	return PyLong_FromUnsignedLongLong(phase_ns);
}

static PyMethodDef methods[] = {
	{"run", run, METH_VARARGS, run_doc},
	{"phase", phase, METH_NOARGS, "The steps' phase now: ns after their grid points."},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
	PyModuleDef_HEAD_INIT, "damo.sampler._loop",
	"The vaddr sampling loop in C, the GIL released (see damo/ops/vaddr/sampling.py).", -1, methods,
	NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__loop(void)
{
	static const struct { const char *name; int slot; } slots[] = {
		{"CFG_MEM_FD", CFG_MEM_FD}, {"CFG_NR", CFG_NR}, {"CFG_STATUS", CFG_STATUS},
		{"CFG_NEXT", CFG_NEXT}, {"CFG_BASE", CFG_BASE}, {"CFG_MODE", CFG_MODE},
		{"CFG_NR_IOV", CFG_NR_IOV}, {"CFG_MAX", CFG_MAX}, {"CFG_NR_STILL", CFG_NR_STILL},
		{"CFG_SHARED_GEN", CFG_SHARED_GEN}, {"CFG_IOV_BYTES", CFG_IOV_BYTES},
		{"CFG_NR_VERIFY", CFG_NR_VERIFY}, {"CFG_MM_USERS", CFG_MM_USERS},
		{"CFG_STEP", CFG_STEP}, {"SAMPLE_CHECK", SAMPLE_CHECK},
		{"SAMPLE_AHEAD", SAMPLE_AHEAD}, {"SAMPLE_VERIFY", SAMPLE_VERIFY}, {"ST_OK", ST_OK},
		{"ST_NO_FILE", ST_NO_FILE}, {"REGION_MAY_SHARE", REGION_MAY_SHARE},
		{"REGION_PERIOD_SHIFT", REGION_PERIOD_SHIFT},
		{"REGION_PHASE_SHIFT", REGION_PHASE_SHIFT},
		{"CHECKS_NO_EVIDENCE_SHIFT", CHECKS_NO_EVIDENCE_SHIFT},
	};
	PyObject *m = PyModule_Create(&module), *d;

	if (!m)
		return NULL;
	/* The header's numbers this file uses, for a test to compare with walker.py's. */
	d = PyDict_New();
	if (!d || PyModule_AddObject(m, "SLOTS", d)) {
		Py_XDECREF(d);
		Py_DECREF(m);
		return NULL;
	}
	for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
		PyObject *v = PyLong_FromLong(slots[i].slot);

		if (!v || PyDict_SetItemString(d, slots[i].name, v)) {
			Py_XDECREF(v);
			Py_DECREF(m);
			return NULL;
		}
		Py_DECREF(v);
	}
	return m;
}

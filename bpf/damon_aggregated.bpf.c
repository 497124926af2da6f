// SPDX-License-Identifier: GPL-2.0-only
/*
 * Forwards kernel DAMON's damon:damon_aggregated events to damo.
 *
 * Events go into a ring of NR_SLOTS slots in a BPF_F_MMAPABLE array that damo
 * reads as a numpy array, so userspace does no work per event: `head` counts
 * the events ever written (the writer of event i owns slot i % NR_SLOTS), and
 * each slot's `seq` is set to i + 1 only after the slot is filled, so a reader
 * can tell a finished slot from one being written or already overwritten.
 * Several kdamonds may fire at once; the atomic add gives each event its own
 * slot.  NR_SLOTS is a power of two, passed with -D; HAS_AGE is defined when
 * the kernel's event has the `age` field (newer than the seed's 9 fields).
 */

struct damo_event {
	u64 seq;
	u64 time_ns;		/* CLOCK_MONOTONIC, as record files use */
	u64 target_id;
	u64 start;
	u64 end;
	u32 nr_regions;
	u32 nr_accesses;
	u32 age;
	u32 kdamond_pid;
};

BPF_F_TABLE("array", u32, struct damo_event, events, NR_SLOTS, BPF_F_MMAPABLE);
BPF_F_TABLE("array", u32, u64, head, 1, BPF_F_MMAPABLE);

TRACEPOINT_PROBE(damon, damon_aggregated)
{
	u32 zero = 0;
	u64 *h = head.lookup(&zero);
	if (!h)
		return 0;
	u64 idx = __sync_fetch_and_add(h, 1);
	u32 slot = idx & (NR_SLOTS - 1);
	struct damo_event *e = events.lookup(&slot);
	if (!e)
		return 0;
	e->seq = 0;
	e->time_ns = bpf_ktime_get_ns();
	e->target_id = args->target_id;
	e->start = args->start;
	e->end = args->end;
	e->nr_regions = args->nr_regions;
	e->nr_accesses = args->nr_accesses;
#ifdef HAS_AGE
	e->age = args->age;
#else
	e->age = 0;
#endif
	e->kdamond_pid = bpf_get_current_pid_tgid();
	/* Publish: the fields above must be visible before seq says so. */
	asm volatile("" ::: "memory");
	*(volatile u64 *)&e->seq = idx + 1;
	return 0;
}

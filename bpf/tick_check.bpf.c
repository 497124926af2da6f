// SPDX-License-Identifier: GPL-2.0-only
/*
 * Per-sample checks in the kernel: damo's process does not wake per sample.
 *
 * `damo_tick` runs on a periodic software perf event (cpu-clock, the sampling
 * interval as its period, one CPU), in interrupt context, whatever task is
 * current there.  Per armed region it reads the Accessed bit of the region's
 * sample page.  Reading clears nothing, so an old page is checked again at the
 * next tick; a young one counts a hit and its region is done until damo clears
 * a new sample page (it stays young until cleared).
 *
 * `damo_arm` runs through BPF_PROG_TEST_RUN in damo's own task, which is how it
 * finds the target's mm (the /proc/PID/mem fd, as bpf/page_walk.bpf.c does):
 * per region it draws a sample page (uniform, whatever its state), walks it,
 * caches where the walk ended, and stages the young ones for damo's
 * process_madvise; a second run (ARM_COMMIT) arms what the clear made old.
 *
 * The cache: the kernel address of the leaf entry and of the entry above it
 * (and that entry's value), with mm->mm_lock_seq at the walk.  A page table is
 * freed only under the mmap write lock (which bumps mm_lock_seq) or, for a
 * PTE table retracted by a file THP collapse, after its PMD entry was cleared
 * and an RCU grace period: so while the sequence and the upper entry read the
 * same, in that order, the leaf entry's table is still a page table of this
 * mm for the rest of this run (interrupt context holds off the grace period).
 * Otherwise the tick walks afresh from mm->pgd.  damo holds the mm (its open
 * /proc/PID/mem) while the program is attached, so mm and pgd stay allocated.
 *
 * Offsets come from BTF as -D macros; every read is bpf_probe_read_kernel.
 */

#define DAMO_MMAPABLE 1024 /* BPF_F_MMAPABLE */

/* Slots of `tcfg`. */
#define TC_MEM_FD 0      /* arm: fd of /proc/PID/mem in damo */
#define TC_PAGE_OFFSET 1 /* base of the kernel's direct map */
#define TC_LEVELS 2      /* 4 or 5 page-table levels */
#define TC_TARGET 3      /* arm: the target's slot */
#define TC_MODE 4        /* arm: ARM_* */
#define TC_STATUS 5      /* arm: ST_* */
#define TC_NR_IOV 6      /* arm: iovecs staged (userspace zeroes it) */
#define TC_IOV_BYTES 7   /* arm: their bytes (userspace zeroes it) */
#define TC_MM_USERS 8    /* arm: mm_users after the walks */
#define TC_NR_TARGETS 9  /* tick: target slots in use */
#define TC_PERIOD_NS 10  /* tick: the sampling interval */
#define TC_TICKS 11      /* tick: runs */
#define TC_LATE 12       /* tick: runs more than 1.5 periods after the previous one */
#define TC_LAST_NS 13    /* tick: time of the last run (or of a restart: arm) */
#define TC_CHECKS 14     /* tick: checks made, all regions */
#define TC_WALKS 15      /* tick: checks that needed a walk from the top */
#define TC_SELF_NS 16    /* tick: time spent in itself, by its own clock */
#define TC_NR_STILL 17   /* arm commit: staged pages still young after the clear */
#define TC_CPU 18        /* tick: the CPU it last ran on */
#define TC_IN_TICK 19    /* tick: 1 while it runs (atomic: see hold()) */
#define TC_REDRAW 20     /* tick: draw a new page after every check (else check one until young) */
#define TC_DRAWS 21      /* tick: pages drawn */
#define TC_VMEMMAP 22    /* arm: the struct page array's base (0: unknown, large folios not looked up) */

#define ST_OK 0
#define ST_NO_FILE 1
#define ST_NO_MM 2
#define ST_BUSY 3        /* the tick was running on the target: try again */

/* arm's modes */
#define ARM_DRAW 1   /* a new uniform random sample page per region */
#define ARM_GIVEN 2  /* the sample address userspace wrote */
#define ARM_COMMIT 4 /* after the clear: arm staged pages, or mark them uncleared */
#define ARM_PENDING 8 /* stage the pages the tick drew young (R_PENDING), redraw uncleared ones */
#define ARM_HOLD 16   /* only take the slot (generation odd) for userspace to rewrite */
#define ARM_RELEASE 32 /* only give it back */

/* Region states */
#define R_OFF 0       /* not checked */
#define R_ARMED 1     /* checked at every tick until found young */
#define R_YOUNG 2     /* found young: done until the next arm */
#define R_PENDING 3   /* young when drawn: waits for damo's clear (then checked) */
#define R_UNCLEARED 4 /* the clear did not take (shared page, refused range): no evidence */
#define R_LATE 5      /* young at a late tick: the window was too long to count */

/* The page-table walk, mm_of_fd and the number iterator, shared with page_walk.bpf.c. */
#include "page_table.h"

BPF_F_TABLE("array", u32, u64, tcfg, 32, DAMO_MMAPABLE);
/* Per target slot: its mm, first region, number of regions, generation (odd while arm writes). */
BPF_F_TABLE("array", u32, u64, t_mm, MAX_TARGETS, DAMO_MMAPABLE);
BPF_F_TABLE("array", u32, u64, t_base, MAX_TARGETS, DAMO_MMAPABLE);
BPF_F_TABLE("array", u32, u64, t_nr, MAX_TARGETS, DAMO_MMAPABLE);
BPF_F_TABLE("array", u32, u64, t_gen, MAX_TARGETS, DAMO_MMAPABLE);
/* Per region. */
BPF_F_TABLE("array", u32, u64, r_start, MAX_REGIONS, DAMO_MMAPABLE);
BPF_F_TABLE("array", u32, u64, r_end, MAX_REGIONS, DAMO_MMAPABLE);
BPF_F_TABLE("array", u32, u64, r_addr, MAX_REGIONS, DAMO_MMAPABLE);
BPF_F_TABLE("array", u32, u64, r_state, MAX_REGIONS, DAMO_MMAPABLE);
BPF_F_TABLE("array", u32, u64, r_hits, MAX_REGIONS, DAMO_MMAPABLE);
BPF_F_TABLE("array", u32, u64, r_checks, MAX_REGIONS, DAMO_MMAPABLE);
/* 1: the region overlaps a file mapping (a young page's large folio is advised whole). */
BPF_F_TABLE("array", u32, u64, r_file, MAX_REGIONS, DAMO_MMAPABLE);
/* The walk's cache: leaf entry address, upper entry address and value, mm_lock_seq. */
BPF_F_TABLE("array", u32, u64, r_leafp, MAX_REGIONS, DAMO_MMAPABLE);
BPF_F_TABLE("array", u32, u64, r_upp, MAX_REGIONS, DAMO_MMAPABLE);
BPF_F_TABLE("array", u32, u64, r_upv, MAX_REGIONS, DAMO_MMAPABLE);
BPF_F_TABLE("array", u32, u64, r_seq, MAX_REGIONS, DAMO_MMAPABLE);
/* arm: the iovecs for process_madvise are page_table.h's (iovecs, iov_region, iov_verify). */

static inline __attribute__((always_inline)) u64 *cfg(u32 slot)
{
	return tcfg.lookup(&slot);
}

/*
 * Take target slot `genp` for rewriting, or fail when the tick is running.  The
 * slot's generation goes odd and then the tick's flag is read; the tick raises
 * its flag and then reads the generation.  Both are locked instructions (full
 * barriers), so at least one of the two sees the other: the tick skips the slot,
 * or this waits for the tick to finish.
 */
static inline __attribute__((always_inline)) int hold(u64 *genp, u64 *in_tick)
{
	__sync_fetch_and_add(genp, 1);
	if (*in_tick) {  /* a plain read: the locked add above is a full barrier (x86) */
		__sync_fetch_and_add(genp, 1);  /* even again: not taken */
		return 0;
	}
	return 1;
}

/*
 * One arm run over the regions of target slot TC_TARGET.  ARM_DRAW / ARM_GIVEN:
 * choose each region's sample page, walk it, cache the walk, zero the counts;
 * old -> armed, young -> staged for the clear (pending).  ARM_COMMIT, after
 * the clear: each staged page's region is armed, or marked uncleared when its
 * page may be shared (read-only entry or a MAP_SHARED region: iov_verify) and
 * is still young: its bit is no evidence then.
 */
int damo_arm(void *ctx)
{
	u64 *fdp = cfg(TC_MEM_FD), *po = cfg(TC_PAGE_OFFSET), *levels = cfg(TC_LEVELS);
	u64 *tp = cfg(TC_TARGET), *modep = cfg(TC_MODE), *st = cfg(TC_STATUS);
	u64 *nr_iov = cfg(TC_NR_IOV), *bytes = cfg(TC_IOV_BYTES), *users = cfg(TC_MM_USERS);
	u64 *still = cfg(TC_NR_STILL), *in_tick = cfg(TC_IN_TICK), *vmemmap = cfg(TC_VMEMMAP);
	u64 *mmp, *basep, *nrp, *genp, status, mm, pgd, base, n;
	u32 t;

	if (!fdp || !po || !levels || !tp || !modep || !st || !nr_iov || !bytes || !users ||
	    !still || !in_tick || !vmemmap)
		return 0;
	t = *tp;
	mmp = t_mm.lookup(&t);
	basep = t_base.lookup(&t);
	nrp = t_nr.lookup(&t);
	genp = t_gen.lookup(&t);
	if (!mmp || !basep || !nrp || !genp)
		return 0;
	if (*modep & ARM_RELEASE) {
		__sync_fetch_and_add(genp, 1);
		*st = ST_OK;
		return 0;
	}
	if (!hold(genp, in_tick)) {
		*st = ST_BUSY;
		return 0;
	}
	if (*modep & ARM_HOLD) {
		*st = ST_OK;
		return 0;
	}
	mm = mm_of_fd(*fdp, &status);
	if (!mm) {
		__sync_fetch_and_add(genp, 1);
		*st = status;
		return 0;
	}
	pgd = read_u64(mm + OFF_MM_PGD);
	base = *basep;
	n = *modep & ARM_COMMIT ? *nr_iov : *nrp;
	*mmp = mm;

	{
		struct bpf_iter_num it;
		int *ip;

		bpf_iter_num_new(&it, 0, n);
		while ((ip = bpf_iter_num_next(&it))) {
			u32 k = *ip, r;
			u64 mode = *modep;
			int five = *levels == 5;
			u64 *sa, *state, *hits, *checks, *leafp, *upp, *upv, *seqp, *lo, *hi, *file;
			u64 leaf, shift, addr, size, first, seq, again = 0, lp = 0, up = 0, uv = 0;
			int redo;

			if (mode & ARM_COMMIT) {
				if (!staged_region(k, &r, &again))
					break;
			} else {
				r = base + k;
			}
			sa = r_addr.lookup(&r);
			state = r_state.lookup(&r);
			hits = r_hits.lookup(&r);
			checks = r_checks.lookup(&r);
			leafp = r_leafp.lookup(&r);
			upp = r_upp.lookup(&r);
			upv = r_upv.lookup(&r);
			seqp = r_seq.lookup(&r);
			lo = r_start.lookup(&r);
			hi = r_end.lookup(&r);
			file = r_file.lookup(&r);
			if (!sa || !state || !hits || !checks || !leafp || !upp || !upv || !seqp ||
			    !lo || !hi || !file)
				break;
			if (mode & ARM_COMMIT) {
				if (*state != R_PENDING)
					continue;  /* userspace marked it: the clear was refused */
				if (again) {
					leaf = walk_leaf(pgd, *po, five, *sa, &shift, &lp, &up, &uv);
					if (leaf & PAGE_ACCESSED) {
						*state = R_UNCLEARED;
						*still += 1;
						continue;
					}
				}
				*state = R_ARMED;
				continue;
			}
			if ((mode & ARM_PENDING) && *state != R_PENDING && *state != R_UNCLEARED)
				continue;  /* armed by the tick, or found young: the tick goes on */
			/* an uncleared page (shared) gives no evidence: a fresh one instead */
			redo = (mode & ARM_PENDING) && *state == R_UNCLEARED;
			*state = R_OFF;
			if ((mode & ARM_DRAW) || redo) {
				size = *hi > *lo ? *hi - *lo : 1;
				addr = *lo + ((((u64)bpf_get_prandom_u32()) << 32) |
					      bpf_get_prandom_u32()) % size;
				*sa = addr;
			} else {
				addr = *sa;
			}
			seq = read_u32(mm + OFF_MM_LOCK_SEQ);  /* before the walk it vouches for */
			leaf = walk_leaf(pgd, *po, five, addr, &shift, &lp, &up, &uv);
			*leafp = lp;
			*upp = up;
			*upv = uv;
			*seqp = seq;
			if (!(mode & ARM_PENDING)) {
				*hits = 0;
				*checks = 0;
			}
			if (!(leaf & PAGE_ACCESSED)) {
				*state = R_ARMED;
				continue;
			}
			size = 1ULL << (shift & 63);
			first = addr & ~(size - 1);
			/* The whole leaf, or the whole large page-cache folio a 4 KiB leaf
			 * maps (advising a part of either splits it); userspace adds
			 * MAP_SHARED regions to those to look at again. */
			if (shift == 12 && *vmemmap && OFF_FOLIO_PAGE_1 > 0 && *file)
				folio_range(*vmemmap, leaf, addr, &first, &size, pgd, *po, five);
			if (!stage_iovec(nr_iov, bytes, first, size, r, !(leaf & PAGE_RW)))
				break;
			*state = R_PENDING;
		}
		bpf_iter_num_destroy(&it);
	}
	__sync_fetch_and_add(genp, 1);
	*users = read_u32(mm + OFF_MM_USERS);
	*st = ST_OK;
	return 0;
}

/* The leaf entry of region r's sample page now: from the cache when it still holds. */
static inline __attribute__((always_inline)) u64 check_entry(u32 r, u64 mm, u32 seq,
							     u64 page_offset, int five, u64 *walks)
{
	u64 *sa = r_addr.lookup(&r), *leafp = r_leafp.lookup(&r), *upp = r_upp.lookup(&r);
	u64 *upv = r_upv.lookup(&r), *seqp = r_seq.lookup(&r);
	u64 lp = 0, up = 0, uv = 0, shift, leaf;

	if (!sa || !leafp || !upp || !upv || !seqp)
		return 0;
	/* Sequence first, then the upper entry, then the leaf: see the top of the file. */
	if (*leafp && !(seq & 1) && *seqp == seq && (!*upp || read_u64(*upp) == *upv))
		return read_u64(*leafp);
	*walks += 1;
	leaf = walk_leaf(read_u64(mm + OFF_MM_PGD), page_offset, five, *sa, &shift, &lp, &up, &uv);
	*leafp = lp;
	*upp = up;
	*upv = uv;
	*seqp = seq & 1 ? ~0ULL : seq;  /* taken while the tables changed: walk again next time */
	return leaf;
}

/*
 * Draw region r's next sample page (uniform in the region, whatever its state),
 * walk it and cache the walk: old -> armed (checked at the next tick), young ->
 * pending (damo clears it, then it is checked).
 */
static inline __attribute__((always_inline)) void draw(u32 r, u64 mm, u32 seq, u64 page_offset,
						       int five, u64 *state)
{
	u64 *sa = r_addr.lookup(&r), *leafp = r_leafp.lookup(&r), *upp = r_upp.lookup(&r);
	u64 *upv = r_upv.lookup(&r), *seqp = r_seq.lookup(&r), *lo = r_start.lookup(&r);
	u64 *hi = r_end.lookup(&r);
	u64 lp = 0, up = 0, uv = 0, shift, leaf, size, addr;

	if (!sa || !leafp || !upp || !upv || !seqp || !lo || !hi)
		return;
	size = *hi > *lo ? *hi - *lo : 1;
	addr = *lo + ((((u64)bpf_get_prandom_u32()) << 32) | bpf_get_prandom_u32()) % size;
	*sa = addr;
	leaf = walk_leaf(read_u64(mm + OFF_MM_PGD), page_offset, five, addr, &shift, &lp, &up,
			  &uv);
	*leafp = lp;
	*upp = up;
	*upv = uv;
	*seqp = seq & 1 ? ~0ULL : seq;
	*state = leaf & PAGE_ACCESSED ? R_PENDING : R_ARMED;
}

int damo_tick(void *ctx)
{
	u64 *po = cfg(TC_PAGE_OFFSET), *levels = cfg(TC_LEVELS), *ntp = cfg(TC_NR_TARGETS);
	u64 *periodp = cfg(TC_PERIOD_NS), *ticks = cfg(TC_TICKS), *latep = cfg(TC_LATE);
	u64 *lastp = cfg(TC_LAST_NS), *total = cfg(TC_CHECKS), *walksp = cfg(TC_WALKS);
	u64 *selfp = cfg(TC_SELF_NS), *cpup = cfg(TC_CPU), *in_tick = cfg(TC_IN_TICK);
	u64 *redrawp = cfg(TC_REDRAW), *drawsp = cfg(TC_DRAWS);
	u64 now = bpf_ktime_get_ns(), checks = 0, walks = 0, draws = 0;
	int late, redraw;

	if (!po || !levels || !ntp || !periodp || !ticks || !latep || !lastp || !total ||
	    !walksp || !selfp || !cpup || !in_tick || !redrawp || !drawsp)
		return 0;
	__sync_fetch_and_add(in_tick, 1);  /* before any generation is read: see hold() */
	redraw = *redrawp;
	/*
	 * A check's window runs from the previous tick, or from the restart of
	 * the ticks by an arm that cleared (damo writes TC_LAST_NS then): after
	 * a late tick (the event did not fire for a while) a young bit may stand
	 * for an access long before the last interval, so it counts neither hit
	 * nor check.
	 */
	late = *lastp && now - *lastp > *periodp + *periodp / 2;
	*lastp = now;
	*ticks += 1;
	*cpup = bpf_get_smp_processor_id();
	if (late)
		*latep += 1;

	{
		struct bpf_iter_num ti;
		int *tip;

		bpf_iter_num_new(&ti, 0, *ntp < MAX_TARGETS ? *ntp : MAX_TARGETS);
		while ((tip = bpf_iter_num_next(&ti))) {
			u32 t = *tip;
			u64 *mmp = t_mm.lookup(&t), *basep = t_base.lookup(&t);
			u64 *nrp = t_nr.lookup(&t), *genp = t_gen.lookup(&t);
			u64 mm, base, n;
			u32 seq;

			if (!mmp || !basep || !nrp || !genp)
				break;
			mm = *mmp;
			if (!mm || (*genp & 1))
				continue;
			if (!read_u32(mm + OFF_MM_USERS))
				continue;  /* exited: its tables are going */
			base = *basep;
			n = *nrp;
			seq = read_u32(mm + OFF_MM_LOCK_SEQ);
			{
				struct bpf_iter_num ri;
				int *rip;

				bpf_iter_num_new(&ri, 0, n);
				while ((rip = bpf_iter_num_next(&ri))) {
					u32 r = base + *rip;
					u64 *state = r_state.lookup(&r), *hits = r_hits.lookup(&r);
					u64 *rc = r_checks.lookup(&r);
					u64 leaf;

					if (!state || !hits || !rc)
						break;
					if (*state != R_ARMED)
						continue;
					leaf = check_entry(r, mm, seq, *po, *levels == 5, &walks);
					if (late) {
						/* old: its next window is whole; young: no evidence */
						if (!(leaf & PAGE_ACCESSED))
							continue;
						*state = R_LATE;
					} else {
						checks += 1;
						*rc += 1;
						if (leaf & PAGE_ACCESSED) {
							*hits += 1;
							*state = R_YOUNG;
						}
					}
					if (redraw) {
						draw(r, mm, seq, *po, *levels == 5, state);
						draws += 1;
					}
				}
				bpf_iter_num_destroy(&ri);
			}
		}
		bpf_iter_num_destroy(&ti);
	}
	*total += checks;
	*walksp += walks;
	*drawsp += draws;
	*selfp += bpf_ktime_get_ns() - now;
	__sync_fetch_and_add(in_tick, -1);
	return 0;
}

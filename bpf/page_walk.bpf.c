// SPDX-License-Identifier: GPL-2.0-only
/*
 * Page-table walks for damo's page sampler, run through BPF_PROG_TEST_RUN.
 *
 * No kernel headers: struct member offsets come from the running kernel's BTF
 * and arrive as -D macros (OFF_*). The target's mm_struct is found through a
 * file descriptor of the monitor itself, an open /proc/PID/mem, whose
 * file->private_data is the mm it holds a reference on: no task-list walk, and
 * a recycled pid can never redirect the walk to another process.
 *
 * Everything Python exchanges with these programs lives in BPF_F_MMAPABLE
 * arrays that userspace maps as numpy views.
 */

#define DAMO_MMAPABLE 1024 /* BPF_F_MMAPABLE */

/*
 * The config slots, SAMPLE_* modes, ST_* statuses and region_flags bits: one
 * header, shared with the native loop (damo/sampler/_loop.c); damo inlines it
 * here before compiling (damo/sampler/walker.py).
 */
#include "sampler_config.h"
/* The page-table walk, mm_of_fd and the number iterator, shared with tick_check.bpf.c. */
#include "page_table.h"

#define PHYS_MASK_1G 0x000fffffc0000000ULL
#define PHYS_MASK_2M 0x000fffffffe00000ULL

#define PEEK_MAX 256

/*
 * The loops over addresses and regions.  The verifier checks a bounded loop
 * once per iteration, each with every path through its body: the sample
 * program's 16 regions took 0.15 s of every start.  With the open-coded
 * number iterator (kfuncs bpf_iter_num_*, Linux 6.4) it checks the body until
 * its state converges, a few passes, so one invocation covers every item.
 * (bpf/page_table.h declares them.)  Without them (older kernels) each
 * invocation covers CHUNK items and tail-calls itself for the next ones.
 *
 * FOR_ITEMS(k, start, n, CHUNK) ... END_ITEMS(next, start, n, CHUNK)
 * runs the body for k in [start, n) (or its first CHUNK) and leaves in `next`
 * where the following invocation starts (n when done).
 */
#ifdef KFUNC_ITER_NUM_NEW
#define FOR_ITEMS(k, start, n, chunk)                                   \
	struct bpf_iter_num it_;                                        \
	int *ip_;                                                       \
	bpf_iter_num_new(&it_, (start), (n));                           \
	while ((ip_ = bpf_iter_num_next(&it_))) {                       \
		u32 k = *ip_;
#define END_ITEMS(next, start, n, chunk)                                \
	}                                                               \
	bpf_iter_num_destroy(&it_);                                     \
	next = (n);
#else
#define FOR_ITEMS(k, start, n, chunk)                                   \
	for (u32 i_ = 0; i_ < (chunk); i_++) {                          \
		u32 k = (start) + i_;                                   \
		if ((start) + i_ >= (n))                                \
			break;
#define END_ITEMS(next, start, n, chunk)                                \
	}                                                               \
	next = (start) + (chunk) < (n) ? (start) + (chunk) : (n);
#endif

BPF_F_TABLE("array", u32, u64, config, NR_CFG, DAMO_MMAPABLE);
/*
 * The walk handles WALK_CHUNK addresses per invocation and tail-calls itself
 * for the next chunk: the verifier's cost grows faster than linearly with a
 * loop's iteration count, so a short loop chained by tail calls (up to 33 per
 * run; userspace runs again when addresses remain) loads in milliseconds.
 */
BPF_PROG_ARRAY(walk_chain, 1);
BPF_F_TABLE("array", u32, u64, addrs, MAX_BATCH, DAMO_MMAPABLE);
/* Per address: the leaf entry (0 when not present) and its page shift (12, 21, 30). */
BPF_F_TABLE("array", u32, u64, leaves, MAX_BATCH, DAMO_MMAPABLE);
BPF_F_TABLE("array", u32, u64, shifts, MAX_BATCH, DAMO_MMAPABLE);
/*
 * Per region of every target (each target owns a slice, from CFG_BASE): its
 * bounds, sampling address, count, and whether the sampled page's bit could
 * not be cleared.  Userspace sees them as the targets' numpy arrays.
 */
BPF_PROG_ARRAY(sample_chain, 1);
BPF_F_TABLE("array", u32, u64, region_start, MAX_REGIONS, DAMO_MMAPABLE);
BPF_F_TABLE("array", u32, u64, region_end, MAX_REGIONS, DAMO_MMAPABLE);
BPF_F_TABLE("array", u32, u64, sampling_addr, MAX_REGIONS, DAMO_MMAPABLE);
BPF_F_TABLE("array", u32, u64, nr_accesses, MAX_REGIONS, DAMO_MMAPABLE);
BPF_F_TABLE("array", u32, u64, uncleared, MAX_REGIONS, DAMO_MMAPABLE);
/*
 * The checks made of each region since userspace zeroed it: the low 32 bits
 * count checks with evidence (the page's bit was cleared when drawn), the
 * high 32 bits checks without (a shared page kept its bit).  nr_accesses
 * counts the young ones among the former; userspace turns the two into a
 * count in units of the aggregation's samples (damo/ops/vaddr), so a region
 * checked fewer times than planned (a late step, the CPU budget) reads what
 * its checks found, not less.
 */
BPF_F_TABLE("array", u32, u64, nr_checks, MAX_REGIONS, DAMO_MMAPABLE);
#define NO_EVIDENCE_CHECK (1ULL << CHECKS_NO_EVIDENCE_SHIFT)
/*
 * REGION_MAY_SHARE: the region overlaps a MAP_SHARED mapping (set by userspace).
 * Bits 8-15: the CPU budget's period p (0 or 1: every step), bits 16-23 its
 * phase: the region is checked on the steps s with (s + phase) % p == 0, its
 * sample drawn one step before.
 */
BPF_F_TABLE("array", u32, u64, region_flags, MAX_REGIONS, DAMO_MMAPABLE);
/* The step's iovecs for process_madvise: page_table.h's (iovecs, iov_region, iov_verify). */
/* Pages found shared (MADV_COLD leaves their bit): not advised again. */
struct shared_key {
	u64 page;
	u64 gen;                    /* bumped when the target's mappings change */
};
BPF_TABLE("lru_hash", struct shared_key, u64, shared, 65536);
struct peek_buf {
	u8 data[PEEK_MAX];
};
BPF_F_TABLE("array", u32, struct peek_buf, peekbuf, 1, DAMO_MMAPABLE);

static inline __attribute__((always_inline)) u64 *cfg(u32 slot)
{
	return config.lookup(&slot);
}

static inline __attribute__((always_inline)) int set_status(u64 status)
{
	u64 *st = cfg(CFG_STATUS);

	if (st)
		*st = status;
	return 0;
}

/* The target's top-level page table, or 0 with the reason in CFG_STATUS. */
static inline __attribute__((always_inline)) u64 target_pgd(u64 *mm_out)
{
	u64 *fd = cfg(CFG_MEM_FD);
	u64 status, mm, pgd;

	if (!fd)
		return 0;
	mm = mm_of_fd(*fd, &status);
	*mm_out = mm;
	if (!mm) {
		set_status(status);
		return 0;
	}
	pgd = read_u64(mm + OFF_MM_PGD);
	if (!pgd)
		set_status(ST_NO_PGD);
	return pgd;
}

/*
 * CFG_MM_USERS := mm->mm_users, read after the walks: while any thread of the
 * process lives it holds a user of the mm, so a non-zero count means the
 * answers are about a live address space (0: exited, or exec'ed away).
 */
static inline __attribute__((always_inline)) void note_mm_users(u64 mm)
{
	u64 *users = cfg(CFG_MM_USERS);
	u32 u = 0;

	bpf_probe_read_kernel(&u, sizeof(u), (void *)(mm + OFF_MM_USERS));
	if (users)
		*users = u;
}

int walk(void *ctx)
{
	u64 *nr = cfg(CFG_NR), *po = cfg(CFG_PAGE_OFFSET);
	u64 *levels = cfg(CFG_LEVELS), *mm_out = cfg(CFG_MM), *next = cfg(CFG_NEXT);
	u64 pgd, page_offset, n, start;
	int five;

	if (!nr || !po || !levels || !mm_out || !next)
		return 0;
	pgd = target_pgd(mm_out);
	if (!pgd)
		return 0;
	page_offset = *po;
	five = *levels == 5;
	n = *nr;
	start = *next;

	FOR_ITEMS(k, start, n, WALK_CHUNK)
		u64 *addrp, *leafp, *shiftp;

		addrp = addrs.lookup(&k);
		leafp = leaves.lookup(&k);
		shiftp = shifts.lookup(&k);
		if (!addrp || !leafp || !shiftp)
			break;
		*leafp = walk_addr(pgd, page_offset, five, *addrp, shiftp);
	END_ITEMS(start, start, n, WALK_CHUNK)
	note_mm_users(*mm_out);
	*next = start;
	set_status(ST_OK);
	if (start < n)
		walk_chain.call(ctx, 0);
	return 0;
}

/*
 * One sampling step of the regions [CFG_BASE, CFG_BASE + CFG_NR) of one target,
 * the seed's check and prepare of the vaddr primitives in one pass:
 *
 * - SAMPLE_CHECK: of the regions due a check this step (their period), one
 *   whose sampling page's bit was cleared when it was chosen counts a check,
 *   and an access when the page is young again; one whose bit could not be
 *   cleared counts a check without evidence.  CFG_MAX gets the highest count.
 * - SAMPLE_AHEAD: draw the region's next sampling address, uniform in the
 *   region (damon_rand), and walk it.  Old pages need nothing.  A young page
 *   known to be shared cannot be cleared: it is marked uncleared (no
 *   evidence).  Any other young page gets an iovec for process_madvise, the
 *   whole leaf (a 2 MiB huge page advised in part would be split), and of a
 *   4 KiB leaf of a large folio the whole folio (folio_range; looked up in
 *   regions over file mappings only, docs/sampler.md).  A region
 *   marked REGION_NO_CLEAR (memory pressure) has nothing cleared: its check
 *   reads whether the page was accessed since anything last cleared it.
 * - SAMPLE_VERIFY (alone): after userspace advised the iovecs, walk again the
 *   pages that may have kept their bit, and mark those still young
 *   uncleared; CFG_NR_STILL counts them.  MADV_COLD leaves the bit of a page
 *   mapped more than once: possible for a read-only entry (copy on write
 *   after fork, KSM, the zero page, file pages) or in a MAP_SHARED mapping.
 *   A writable entry of a private mapping maps a page of this process alone.
 */
int sample(void *ctx)
{
	u64 *nr = cfg(CFG_NR), *po = cfg(CFG_PAGE_OFFSET), *levels = cfg(CFG_LEVELS);
	u64 *mm_out = cfg(CFG_MM), *next = cfg(CFG_NEXT), *basep = cfg(CFG_BASE);
	u64 *modep = cfg(CFG_MODE), *nr_iov = cfg(CFG_NR_IOV), *maxp = cfg(CFG_MAX);
	u64 *still = cfg(CFG_NR_STILL), *gen = cfg(CFG_SHARED_GEN), *bytes = cfg(CFG_IOV_BYTES);
	u64 *nr_verify = cfg(CFG_NR_VERIFY), *stepp = cfg(CFG_STEP), *vmemmap = cfg(CFG_VMEMMAP);
	u64 pgd, page_offset, n, start, base, step;

	if (!nr || !po || !levels || !mm_out || !next || !basep || !modep || !nr_iov || !maxp ||
	    !still || !gen || !bytes || !nr_verify || !stepp || !vmemmap)
		return 0;
	step = *stepp;
	pgd = target_pgd(mm_out);
	if (!pgd)
		return 0;
	if (*next == 0) {
		u64 *cpu = cfg(CFG_OWNER_CPU);
		u32 c = ~0U;
		u64 owner = OFF_MM_OWNER >= 0 ? read_u64(*mm_out + OFF_MM_OWNER) : 0;

		if (owner)
			bpf_probe_read_kernel(&c, sizeof(c), (void *)(owner + OFF_TASK_CPU));
		if (cpu)
			*cpu = c;
	}
	page_offset = *po;
	base = *basep;
	n = *modep & SAMPLE_VERIFY ? *nr_iov : *nr;
	start = *next;

	FOR_ITEMS(k, start, n, SAMPLE_CHUNK)
		/*
		 * The mode and the depth are read afresh each time: kept in
		 * registers, what each branch taught the verifier about them
		 * would travel around the loop as separate states (3x its work).
		 */
		u64 mode = *modep;
		int five = *levels == 5;
		u64 *sa, *acc, *chk, *unc, *lo, *hi, *flags;
		u64 leaf, shift, addr, size, first, again = 0, period = 1, phase = 0;
		u32 r;

		if (mode & SAMPLE_VERIFY) {
			if (!staged_region(k, &r, &again))
				break;
			if (!again)
				continue;
		} else {
			r = base + k;
		}
		sa = sampling_addr.lookup(&r);
		unc = uncleared.lookup(&r);
		flags = region_flags.lookup(&r);
		if (!sa || !unc || !flags)
			break;
		if (REGION_PERIOD(*flags) > 1) {
			period = REGION_PERIOD(*flags);
			phase = REGION_PHASE(*flags);
		}
		if (mode & SAMPLE_VERIFY) {
			leaf = walk_addr(pgd, page_offset, five, *sa, &shift);
			if (leaf & PAGE_ACCESSED) {
				*unc = 1;
				*still += 1;
			}
			continue;
		}
		if ((mode & SAMPLE_CHECK) && (step + phase) % period == 0) {
			acc = nr_accesses.lookup(&r);
			chk = nr_checks.lookup(&r);
			if (!acc || !chk)
				break;
			if (*unc) {
				*chk += NO_EVIDENCE_CHECK;
			} else {
				leaf = walk_addr(pgd, page_offset, five, *sa, &shift);
				*chk += 1;
				if (leaf & PAGE_ACCESSED)
					*acc += 1;
			}
			if (*acc > *maxp)
				*maxp = *acc;
		}
		if (!(mode & SAMPLE_AHEAD) || (step + 1 + phase) % period != 0)
			continue;
		lo = region_start.lookup(&r);
		hi = region_end.lookup(&r);
		if (!lo || !hi)
			break;
		size = *hi > *lo ? *hi - *lo : 1;
		addr = *lo + ((((u64)bpf_get_prandom_u32()) << 32) | bpf_get_prandom_u32()) % size;
		*sa = addr;
		*unc = 0;
		leaf = walk_addr(pgd, page_offset, five, addr, &shift);
		if (!(leaf & PAGE_ACCESSED) || (*flags & REGION_NO_CLEAR))
			continue;
		{
			struct shared_key key = {addr >> 12, *gen};

			if (shared.lookup(&key)) {
				*unc = 1;
				continue;
			}
		}
		size = 1ULL << (shift & 63);
		first = addr & ~(size - 1);
		if (shift == 12 && *vmemmap && OFF_FOLIO_PAGE_1 > 0 && (*flags & REGION_FILE))
			folio_range(*vmemmap, leaf, addr, &first, &size, pgd, page_offset, five);
		again = !(leaf & PAGE_RW) || (*flags & REGION_MAY_SHARE);
		if (!stage_iovec(nr_iov, bytes, first, size, r, again))
			break;
		*nr_verify += again;
	END_ITEMS(start, start, n, SAMPLE_CHUNK)
	note_mm_users(*mm_out);
	*next = start;
	set_status(ST_OK);
	if (start < n)
		sample_chain.call(ctx, 0);
	return 0;
}

/* Copy kernel memory into peekbuf and report the current task: direct-map discovery. */
int peek(void *ctx)
{
	u64 *addr = cfg(CFG_PEEK_ADDR), *len = cfg(CFG_PEEK_LEN), *cur = cfg(CFG_CURRENT);
	u32 zero = 0;
	struct peek_buf *buf = peekbuf.lookup(&zero);
	u64 n;

	if (!addr || !len || !cur || !buf)
		return 0;
	*cur = (u64)bpf_get_current_task();
	n = *len;
	if (n > PEEK_MAX)
		n = PEEK_MAX;
	if (bpf_probe_read_kernel(buf->data, n, (void *)*addr))
		return set_status(ST_FAULT);
	return set_status(ST_OK);
}

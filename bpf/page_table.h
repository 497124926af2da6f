/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What damo's BPF programs share to read a process's page tables: the x86-64
 * entry bits, a read that cannot fault, the mm_struct behind an open
 * /proc/PID/mem, the walk of one address down to its leaf entry and a young
 * page's whole large folio.  And the iovecs of the young pages to clear, staged.
 * Included by bpf/page_walk.bpf.c and bpf/tick_check.bpf.c, after they define
 * ST_NO_FILE and ST_NO_MM (mm_of_fd's statuses) and DAMO_MMAPABLE; MAX_REGIONS,
 * struct member offsets (OFF_*)
 * and kfunc placeholders (KFUNC_*) arrive as -D macros.  bcc compiles one text:
 * damo inlines this header into it before compiling (damo.sampler.program.
 * program_text), so the compiled-program cache's key covers it too.
 */
#ifndef DAMO_PAGE_TABLE_H
#define DAMO_PAGE_TABLE_H

#define PTRS_PER_TABLE 512
#define PHYS_MASK 0x000ffffffffff000ULL
#define PAGE_PRESENT 0x1ULL
#define PAGE_RW 0x2ULL
#define PAGE_ACCESSED 0x20ULL
#define PAGE_PSE 0x80ULL      /* a leaf at PUD (1 GiB) or PMD (2 MiB) level */

/*
 * The kernel's open-coded number iterator (kfuncs bpf_iter_num_*, Linux 6.4).
 * bcc cannot emit a kfunc call: these are calls of placeholder helper numbers
 * (KFUNC_*, given by damo) that damo's loader turns into kfunc calls by BTF id
 * (damo/linux/bpf_syscall.py).
 */
#ifdef KFUNC_ITER_NUM_NEW
struct bpf_iter_num {
	u64 opaque;
} __attribute__((aligned(8)));
static int (*bpf_iter_num_new)(struct bpf_iter_num *it, int start, int end) =
	(void *)KFUNC_ITER_NUM_NEW;
static int *(*bpf_iter_num_next)(struct bpf_iter_num *it) = (void *)KFUNC_ITER_NUM_NEXT;
static void (*bpf_iter_num_destroy)(struct bpf_iter_num *it) = (void *)KFUNC_ITER_NUM_DESTROY;
#endif

static inline __attribute__((always_inline)) u64 read_u64(u64 kaddr)
{
	u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), (void *)kaddr);  /* zeroes v on a fault */
	return v;
}

static inline __attribute__((always_inline)) u32 read_u32(u64 kaddr)
{
	u32 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), (void *)kaddr);
	return v;
}

/* The kernel address of the entry for `addr` at `shift` in the table `entry` points at. */
static inline __attribute__((always_inline)) u64 entry_addr(u64 page_offset, u64 entry, u64 addr,
							    u32 shift)
{
	return page_offset + (entry & PHYS_MASK) + ((addr >> shift) & (PTRS_PER_TABLE - 1)) * 8;
}

/*
 * Walk `addr` from `pgd` (with 5 levels the PGD points at a P4D table, with 4
 * the P4D is folded): the leaf entry, 0 when not present, and its page shift
 * (12, 21, 30; 0 when not present) in *shift.  Also where the leaf entry
 * lives (*leafp, 0 when not present) and the entry above it (*upp, its value
 * *upv; 0 for a PGD leaf of 4 levels): what a later check revalidates
 * (tick_check.bpf.c); the page walk leaves them unused.
 */
static inline __attribute__((always_inline)) u64 walk_leaf(u64 pgd, u64 page_offset, int five,
							   u64 addr, u64 *shift, u64 *leafp,
							   u64 *upp, u64 *upv)
{
	u64 e, p, up, uv;

	*leafp = 0;
	*shift = 0;
	if (five) {
		up = pgd + ((addr >> 48) & (PTRS_PER_TABLE - 1)) * 8;
		uv = read_u64(up);
		if (!(uv & PAGE_PRESENT))
			return 0;
		p = entry_addr(page_offset, uv, addr, 39);
	} else {
		p = pgd + ((addr >> 39) & (PTRS_PER_TABLE - 1)) * 8;
		up = 0;
		uv = 0;
	}
	e = read_u64(p);                                  /* PGD (or P4D) */
	if (!(e & PAGE_PRESENT))
		return 0;
	up = p;
	uv = e;
	p = entry_addr(page_offset, e, addr, 30);
	e = read_u64(p);                                  /* PUD */
	if (!(e & PAGE_PRESENT))
		return 0;
	if (!(e & PAGE_PSE)) {
		up = p;
		uv = e;
		p = entry_addr(page_offset, e, addr, 21);
		e = read_u64(p);                          /* PMD */
		if (!(e & PAGE_PRESENT))
			return 0;
		if (!(e & PAGE_PSE)) {
			up = p;
			uv = e;
			p = entry_addr(page_offset, e, addr, 12);
			e = read_u64(p);                  /* PTE */
			if (!(e & PAGE_PRESENT))
				return 0;
			*shift = 12;
		} else {
			*shift = 21;
		}
	} else {
		*shift = 30;
	}
	*leafp = p;
	*upp = up;
	*upv = uv;
	return e;
}

/* The leaf entry mapping `addr` (0 when not present); its page shift in *shift. */
static inline __attribute__((always_inline)) u64 walk_addr(u64 pgd, u64 page_offset, int five,
							   u64 addr, u64 *shift)
{
	u64 leafp, upp, upv;

	return walk_leaf(pgd, page_offset, five, addr, shift, &leafp, &upp, &upv);
}

/*
 * The whole folio of the young 4 KiB page at `addr` mapped by PTE `leaf`:
 * *start and *size become its range in the target when it is a large folio
 * (left as they are for a small one).  MADV_COLD of a part of a large folio
 * splits it, and a split page-cache folio is unmapped whole: its pages,
 * unmapped, are reclaimed first (docs/sampler.md).  struct page of a frame
 * at vmemmap + pfn * size; a tail page's compound_head is its head + 1; a
 * head is followed by a tail pointing at it; the order is the low byte of
 * the folio's _flags_1.  Only a folio mapped whole and in order around addr:
 * its first and last pages' entries are walked (a file mapped at an offset
 * within a folio, or ending within one, maps a part of it, as library text
 * does: the folio's range would reach past the mapping).
 */
static inline __attribute__((always_inline)) void folio_range(u64 vmemmap, u64 leaf, u64 addr,
							      u64 *start, u64 *size, u64 pgd,
							      u64 page_offset, int five)
{
	u64 pfn = (leaf & PHYS_MASK) >> 12, page = vmemmap + pfn * OFF_FOLIO_PAGE_1;
	u64 ch = read_u64(page + OFF_PAGE_COMPOUND_HEAD), head = page, order, idx, first, e, sh;

	if (ch & 1)
		head = ch - 1;
	else if (read_u64(page + OFF_FOLIO_PAGE_1 + OFF_PAGE_COMPOUND_HEAD) != page + 1)
		return;  /* a small folio */
	order = read_u64(head + OFF_FOLIO_FLAGS_1) & 0xff;
	if (order < 1 || order > 9 || head > page)  /* at most PMD size mapped by PTEs */
		return;
	idx = (page - head) / OFF_FOLIO_PAGE_1;
	if (idx >= (1ULL << order))
		return;
	first = (addr & ~4095ULL) - idx * 4096;
	e = walk_addr(pgd, page_offset, five, first, &sh);
	if (!(e & 1) || sh != 12 || (e & PHYS_MASK) >> 12 != pfn - idx)
		return;
	e = walk_addr(pgd, page_offset, five, first + (4096ULL << order) - 4096, &sh);
	if (!(e & 1) || sh != 12 || (e & PHYS_MASK) >> 12 != pfn - idx + (1ULL << order) - 1)
		return;
	*start = first;
	*size = 4096ULL << order;
}

/*
 * The mm_struct of the /proc/PID/mem file open as `fd` in the current task
 * (its file->private_data, on which the file holds a reference): no task-list
 * walk, and a recycled pid cannot redirect it.  0 with the reason in *status.
 */
static inline __attribute__((always_inline)) u64 mm_of_fd(u64 fd, u64 *status)
{
	u64 task = (u64)bpf_get_current_task();
	u64 files = read_u64(task + OFF_TASK_FILES);
	u64 fdt, fd_array, file;
	u32 max_fds = 0;

	*status = ST_NO_FILE;
	if (!files)
		return 0;
	fdt = read_u64(files + OFF_FILES_FDT);
	if (!fdt)
		return 0;
	bpf_probe_read_kernel(&max_fds, sizeof(max_fds), (void *)(fdt + OFF_FDT_MAX_FDS));
	if (fd >= max_fds)
		return 0;
	fd_array = read_u64(fdt + OFF_FDT_FD);
	if (!fd_array)
		return 0;
	file = read_u64(fd_array + fd * 8);
	if (!file)
		return 0;
	*status = ST_NO_MM;
	return read_u64(file + OFF_FILE_PRIVATE_DATA);
}

/*
 * The struct iovec[] of young pages a program stages for process_madvise
 * (MADV_COLD clears their Accessed bit), the region of each, and whether
 * userspace must look at it again after the advice (a page that may be
 * shared keeps its bit).  Declared once here for both programs.
 */
BPF_F_TABLE("array", u32, u64, iovecs, 2 * MAX_REGIONS, DAMO_MMAPABLE);
BPF_F_TABLE("array", u32, u64, iov_region, MAX_REGIONS, DAMO_MMAPABLE);
BPF_F_TABLE("array", u32, u64, iov_verify, MAX_REGIONS, DAMO_MMAPABLE);

/*
 * Stage [start, start + size) of region r as iovec *nr_iov, counting it in
 * *nr_iov and its bytes in *bytes.  0 when the arrays are full.
 */
static inline __attribute__((always_inline)) int stage_iovec(u64 *nr_iov, u64 *bytes, u64 start,
							     u64 size, u32 r, u64 verify)
{
	u32 k = *nr_iov, k0 = 2 * k, k1 = k0 + 1;
	u64 *iov = iovecs.lookup(&k0), *len = iovecs.lookup(&k1);
	u64 *owner = iov_region.lookup(&k), *again = iov_verify.lookup(&k);

	if (!iov || !len || !owner || !again)
		return 0;
	*iov = start;
	*len = size;
	*owner = r;
	*again = verify;
	*nr_iov = k + 1;
	*bytes += size;
	return 1;
}

/* Staged iovec k's region and whether to look at it again; 0 when k is past the arrays. */
static inline __attribute__((always_inline)) int staged_region(u32 k, u32 *r, u64 *again)
{
	u64 *owner = iov_region.lookup(&k), *verify = iov_verify.lookup(&k);

	if (!owner || !verify)
		return 0;
	*r = *owner;
	*again = *verify;
	return 1;
}

#endif /* DAMO_PAGE_TABLE_H */

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

/* Slots of `config`, written by userspace before each run. */
#define CFG_MEM_FD 0          /* fd of /proc/PID/mem in the monitor */
#define CFG_NR 1              /* number of valid entries of addrs */
#define CFG_PAGE_OFFSET 2     /* base of the kernel's direct map */
#define CFG_LEVELS 3          /* 4 or 5 page-table levels */
#define CFG_PEEK_ADDR 4       /* peek: kernel address to copy from */
#define CFG_PEEK_LEN 5        /* peek: bytes to copy, at most PEEK_MAX */
/* Slots written by the programs. */
#define CFG_STATUS 6          /* 0 = ok, else one of ST_* */
#define CFG_MM 7              /* the mm_struct pointer that was walked */
#define CFG_CURRENT 8         /* peek: the current task_struct (a direct-map address) */
#define CFG_NEXT 9            /* walk: index of the next address; userspace sets it to 0 */
#define NR_CFG 16

#define ST_OK 0
#define ST_NO_FILE 1          /* the fd does not resolve to an open file */
#define ST_NO_MM 2            /* the file holds no mm (kernel thread, exited before open) */
#define ST_NO_PGD 3
#define ST_FAULT 4            /* peek: the address is not readable */

#define PTRS_PER_TABLE 512
#define PHYS_MASK 0x000ffffffffff000ULL
#define PHYS_MASK_1G 0x000fffffc0000000ULL
#define PHYS_MASK_2M 0x000fffffffe00000ULL
#define PAGE_PRESENT 0x1ULL
#define PAGE_PSE 0x80ULL      /* a leaf at PUD (1 GiB) or PMD (2 MiB) level */

#define PEEK_MAX 256

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
struct peek_buf {
	u8 data[PEEK_MAX];
};
BPF_F_TABLE("array", u32, struct peek_buf, peekbuf, 1, DAMO_MMAPABLE);

static inline __attribute__((always_inline)) u64 *cfg(u32 slot)
{
	return config.lookup(&slot);
}

static inline __attribute__((always_inline)) u64 read_u64(u64 kaddr)
{
	u64 v = 0;

	if (bpf_probe_read_kernel(&v, sizeof(v), (void *)kaddr))
		return 0;
	return v;
}

/* The table entry for `addr` at `shift` in the table whose entry points at it. */
static inline __attribute__((always_inline)) u64 next_entry(u64 page_offset, u64 entry, u64 addr, u32 shift)
{
	u64 table = page_offset + (entry & PHYS_MASK);

	return read_u64(table + ((addr >> shift) & (PTRS_PER_TABLE - 1)) * 8);
}

static inline __attribute__((always_inline)) int set_status(u64 status)
{
	u64 *st = cfg(CFG_STATUS);

	if (st)
		*st = status;
	return 0;
}

/* mm_struct of the /proc/PID/mem file open as `fd` in the current task. */
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

int walk(void *ctx)
{
	u64 *fd = cfg(CFG_MEM_FD), *nr = cfg(CFG_NR), *po = cfg(CFG_PAGE_OFFSET);
	u64 *levels = cfg(CFG_LEVELS), *mm_out = cfg(CFG_MM), *next = cfg(CFG_NEXT);
	u64 status, mm, pgd, page_offset, n, start;
	int five;

	if (!fd || !nr || !po || !levels || !mm_out || !next)
		return 0;
	mm = mm_of_fd(*fd, &status);
	*mm_out = mm;
	if (!mm)
		return set_status(status);
	pgd = read_u64(mm + OFF_MM_PGD);
	if (!pgd)
		return set_status(ST_NO_PGD);
	page_offset = *po;
	five = *levels == 5;
	n = *nr;
	start = *next;

	for (u32 i = 0; i < WALK_CHUNK; i++) {
		u64 *addrp, *leafp, *shiftp, addr, e, leaf = 0, shift = 0;
		u32 k = start + i;

		if (start + i >= n)
			break;
		addrp = addrs.lookup(&k);
		leafp = leaves.lookup(&k);
		shiftp = shifts.lookup(&k);
		if (!addrp || !leafp || !shiftp)
			break;
		addr = *addrp;

		/* PGD; with 5 levels it points at a P4D table, with 4 the P4D is folded. */
		if (five) {
			e = read_u64(pgd + ((addr >> 48) & (PTRS_PER_TABLE - 1)) * 8);
			if (e & PAGE_PRESENT)
				e = next_entry(page_offset, e, addr, 39);
		} else {
			e = read_u64(pgd + ((addr >> 39) & (PTRS_PER_TABLE - 1)) * 8);
		}
		if (!(e & PAGE_PRESENT))
			goto out;
		e = next_entry(page_offset, e, addr, 30);               /* PUD */
		if (!(e & PAGE_PRESENT))
			goto out;
		if (e & PAGE_PSE) {
			leaf = e;
			shift = 30;
			goto out;
		}
		e = next_entry(page_offset, e, addr, 21);               /* PMD */
		if (!(e & PAGE_PRESENT))
			goto out;
		if (e & PAGE_PSE) {
			leaf = e;
			shift = 21;
			goto out;
		}
		e = next_entry(page_offset, e, addr, 12);               /* PTE */
		if (e & PAGE_PRESENT) {
			leaf = e;
			shift = 12;
		}
out:
		*leafp = leaf;
		*shiftp = shift;
	}
	start += WALK_CHUNK;
	*next = start < n ? start : n;
	set_status(ST_OK);
	if (start < n)
		walk_chain.call(ctx, 0);
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

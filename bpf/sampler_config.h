/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What damo's page sampler and its users share: the slots of the `config`
 * array (bpf/page_walk.bpf.c), the sample program's modes and statuses, and
 * the bits of `region_flags` and `nr_checks`.  Included by the BPF program
 * and by the native loop (damo/sampler/_loop.c); damo/sampler/walker.py
 * mirrors the numbers for Python and a test compares them.
 */
#ifndef DAMO_SAMPLER_CONFIG_H
#define DAMO_SAMPLER_CONFIG_H

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
#define CFG_NEXT 9            /* walk, sample: index of the next item; userspace sets it to 0 */
#define CFG_BASE 10           /* sample: the target's first region in the region arrays */
#define CFG_MODE 11           /* sample: SAMPLE_* bits */
#define CFG_NR_IOV 12         /* sample: iovecs staged so far; userspace zeroes it per step */
#define CFG_MAX 13            /* sample: highest nr_accesses seen by the check */
#define CFG_NR_STILL 14       /* sample: pages found still young by the verify pass */
#define CFG_SHARED_GEN 15     /* sample: the target's generation of known-shared pages */
#define CFG_IOV_BYTES 16      /* sample: bytes of the staged iovecs; userspace zeroes it */
#define CFG_OWNER_CPU 17      /* sample: the CPU the mm's owner task last ran on (or ~0) */
#define CFG_NR_VERIFY 18      /* sample: staged iovecs the verify pass must walk */
#define CFG_MM_USERS 19       /* sample: mm_struct.mm_users after the walks (0: exited or exec'ed) */
#define CFG_STEP 20           /* sample: index of the step being checked (the CPU budget's clock) */
#define CFG_VMEMMAP 21        /* sample: base of the struct page array (0: unknown, advise pages) */
#define NR_CFG 32

#define ST_OK 0
#define ST_NO_FILE 1          /* the fd does not resolve to an open file */
#define ST_NO_MM 2            /* the file holds no mm (kernel thread, exited before open) */
#define ST_NO_PGD 3
#define ST_FAULT 4            /* peek: the address is not readable */

/* What one run of the sample program does (CFG_MODE). */
#define SAMPLE_CHECK 1
#define SAMPLE_AHEAD 2
#define SAMPLE_VERIFY 4

/*
 * region_flags: REGION_MAY_SHARE (the region overlaps a MAP_SHARED mapping),
 * REGION_NO_CLEAR (memory pressure: its young pages are read, never cleared),
 * REGION_FILE (it overlaps a file mapping, whose page cache comes in large folios),
 * the CPU budget's period (bits 8-15) and phase (bits 16-23).
 */
#define REGION_MAY_SHARE 1
#define REGION_NO_CLEAR 2
#define REGION_FILE 4         /* overlaps a file mapping: a young page's large folio is advised whole */
#define REGION_PERIOD_SHIFT 8
#define REGION_PHASE_SHIFT 16
#define REGION_PERIOD(f) ((f) >> REGION_PERIOD_SHIFT & 0xff)
#define REGION_PHASE(f) ((f) >> REGION_PHASE_SHIFT & 0xff)

/* nr_checks: checks without evidence (a page that kept its bit) count from this bit. */
#define CHECKS_NO_EVIDENCE_SHIFT 32

#endif

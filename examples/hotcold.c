/*
 * hotcold: a small program whose memory layout and access pattern are known,
 * for damo's user guide (docs/guide.md) and its annotation tests.
 *
 *   cc -O1 -o hotcold examples/hotcold.c && ./hotcold 30
 *
 * Runs for the given seconds (default 30), writing one byte per page:
 *   hot_array    (.bss, 64 MiB)  all the time
 *   cold_array   (.bss, 64 MiB)  once, at the start
 *   phase_array  (.bss, 32 MiB)  in the middle third of the run
 *   heap_buffer  ([heap], 16 MiB) in the last third
 *   init_table   (.data, 256 KiB) all the time
 * and prints the addresses once, on one line starting with "ready".
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MiB (1UL << 20)
#define PAGE 4096

char hot_array[64 * MiB];
char cold_array[64 * MiB];
char phase_array[32 * MiB];
char init_table[256 * 1024] = {1};

static void touch(volatile char *p, size_t size)
{
	for (size_t i = 0; i < size; i += PAGE)
		p[i]++;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 30;
	double start, elapsed;
	char *heap_buffer;

	/* Below the mmap threshold, malloc takes the buffer from the heap (brk). */
	mallopt(M_MMAP_THRESHOLD, 32 * MiB);
	heap_buffer = malloc(16 * MiB);
	if (!heap_buffer)
		return 1;
	touch(cold_array, sizeof(cold_array));
	printf("ready hot_array=%lu cold_array=%lu phase_array=%lu init_table=%lu "
	       "heap_buffer=%lu main=%lu\n",
	       (unsigned long)hot_array, (unsigned long)cold_array,
	       (unsigned long)phase_array, (unsigned long)init_table,
	       (unsigned long)heap_buffer, (unsigned long)main);
	fflush(stdout);
	start = now();
	while ((elapsed = now() - start) < seconds) {
		touch(hot_array, sizeof(hot_array));
		touch(init_table, sizeof(init_table));
		if (elapsed >= seconds / 3 && elapsed < 2 * seconds / 3)
			touch(phase_array, sizeof(phase_array));
		if (elapsed >= 2 * seconds / 3)
			touch(heap_buffer, 16 * MiB);
		usleep(2000);
	}
	return 0;
}
